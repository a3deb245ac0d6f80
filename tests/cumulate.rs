//! Cumulating windows (Flink's `CUMULATE`) equal a brute-force computation on random inputs
//! with fixed seeds, on every backend: each row is put in every window `[start, end)` of its
//! `size`-aligned start that ends after it, and each window aggregated directly, with no slices.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMillisecondType};
use sluice_engine::prelude::*;

use crate::common::{
    Events, KeyKind, StreamShape, all_aggregates, backends, key_names, run_window, schema,
    string_key,
};

/// One aggregate value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Int(Option<i64>),
    Float(Option<f64>),
}

/// (key text, window start, window end) → aggregates in [`aggregates`] order.
type Table = BTreeMap<(String, i64, i64), Vec<Value>>;

/// Every aggregate but `count_distinct`, which slices cannot merge (refused, tested below).
fn aggregates() -> Vec<AggregateSpec> {
    all_aggregates()
        .into_iter()
        .filter(|a| a.function != AggregateFunction::CountDistinct)
        .collect()
}

fn key_text(events: &Events, kind: KeyKind, row: usize) -> String {
    match kind {
        KeyKind::Int => events.key[row].to_string(),
        KeyKind::Str => string_key(events.key[row]).unwrap_or_else(|| "<null>".into()),
        KeyKind::Multi => format!("{}|{}", events.key[row] % 50, events.region[row]),
    }
}

/// The windows by brute force: rows listed per window, then each list aggregated.
fn expected(events: &Events, kind: KeyKind, step: i64, size: i64, offset: i64) -> Table {
    let mut members: BTreeMap<(String, i64, i64), Vec<usize>> = BTreeMap::new();
    for row in 0..events.len() {
        let ts = events.ts[row];
        let start = ts - (ts - offset).rem_euclid(size);
        let mut end = start + step;
        while end <= start + size {
            if end > ts {
                members
                    .entry((key_text(events, kind, row), start, end))
                    .or_default()
                    .push(row);
            }
            end += step;
        }
    }
    members
        .into_iter()
        .map(|(window, rows)| {
            let mut values = vec![Value::Int(Some(rows.len() as i64))];
            let ints: Vec<i64> = rows.iter().filter_map(|&r| events.v_int[r]).collect();
            let floats: Vec<f64> = rows.iter().filter_map(|&r| events.v_float[r]).collect();
            let nonempty = |n: usize| n > 0;
            values.extend([
                Value::Int(Some(ints.len() as i64)),
                Value::Int(nonempty(ints.len()).then(|| ints.iter().sum())),
                Value::Int(ints.iter().copied().min()),
                Value::Int(ints.iter().copied().max()),
                Value::Float(
                    nonempty(ints.len())
                        .then(|| ints.iter().sum::<i64>() as f64 / ints.len() as f64),
                ),
                Value::Int(Some(floats.len() as i64)),
                Value::Float(nonempty(floats.len()).then(|| floats.iter().sum())),
                Value::Float(floats.iter().copied().reduce(f64::min)),
                Value::Float(floats.iter().copied().reduce(f64::max)),
                Value::Float(
                    nonempty(floats.len())
                        .then(|| floats.iter().sum::<f64>() / floats.len() as f64),
                ),
            ]);
            (window, values)
        })
        .collect()
}

/// The engine's output in the shape of [`expected`].
fn actual(output: &RecordBatch, kind: KeyKind) -> Table {
    let column = |name: &str| {
        let index = output.schema().index_of(name).expect(name);
        output.column(index).clone()
    };
    let text = |row: usize| -> String {
        let k = column("k");
        let first = match k.data_type() {
            DataType::Utf8 if k.is_null(row) => "<null>".to_string(),
            DataType::Utf8 => k.as_string::<i32>().value(row).to_string(),
            _ => k.as_primitive::<Int64Type>().value(row).to_string(),
        };
        match kind {
            KeyKind::Multi => format!("{first}|{}", column("region").as_string::<i32>().value(row)),
            _ => first,
        }
    };
    let time = |name: &str, row: usize| {
        column(name)
            .as_primitive::<TimestampMillisecondType>()
            .value(row)
    };
    let mut table = Table::new();
    for row in 0..output.num_rows() {
        let values = aggregates()
            .iter()
            .map(|a| {
                let c = column(&a.alias);
                let valid = c.is_valid(row);
                match c.data_type() {
                    DataType::Float64 => {
                        Value::Float(valid.then(|| c.as_primitive::<Float64Type>().value(row)))
                    }
                    _ => Value::Int(valid.then(|| c.as_primitive::<Int64Type>().value(row))),
                }
            })
            .collect();
        let window = (
            text(row),
            time("window_start", row),
            time("window_end", row),
        );
        let previous = table.insert(window.clone(), values);
        assert!(previous.is_none(), "window {window:?} emitted twice");
    }
    table
}

fn assert_same(got: &Table, want: &Table, context: &str) {
    assert_eq!(got.len(), want.len(), "{context}: number of windows");
    for (window, want) in want {
        let got = got
            .get(window)
            .unwrap_or_else(|| panic!("{context}: missing window {window:?}"));
        for ((g, w), a) in got.iter().zip(want).zip(aggregates()) {
            let same = match (g, w) {
                (Value::Float(Some(g)), Value::Float(Some(w))) => {
                    (g - w).abs() <= 1e-9 * w.abs().max(1.0)
                }
                _ => g == w,
            };
            assert!(
                same,
                "{context}: {} of {window:?}: got {g:?}, want {w:?}",
                a.alias
            );
        }
    }
}

fn check(kind: KeyKind, window: WindowSpec, max_rows: usize, seed: u64) {
    let WindowSpec::Cumulate { step, size, offset } = window else {
        panic!("a cumulating window");
    };
    let shape = StreamShape {
        rows: 6_000,
        keys: 40,
        skew: true,
        disorder: 400,
        step: 3,
        partitions: 2,
        seed,
    };
    let events = Events::generate(shape);
    let want = expected(&events, kind, step, size, offset);
    assert!(want.len() > 100, "the brute force found windows");
    let spec = WindowAggregateSpec {
        keys: key_names(kind),
        window,
        aggregates: aggregates(),
    };
    for backend in backends() {
        let context = format!("{kind:?} {window:?} on {}", backend.name());
        let outcome = run_window(
            backend,
            schema(kind),
            events.partitioned(kind, shape.partitions, 97),
            spec.clone(),
            shape.disorder + 1,
            max_rows,
        );
        assert_eq!(outcome.summary.counts.late, 0, "{context}: nothing is late");
        assert_same(&actual(&outcome.output, kind), &want, &context);
    }
}

#[test]
fn cumulating_windows_equal_a_brute_force_computation_on_every_backend() {
    check(
        KeyKind::Int,
        WindowSpec::Cumulate {
            step: 250,
            size: 1_000,
            offset: 0,
        },
        500,
        1,
    );
    check(
        KeyKind::Str,
        WindowSpec::Cumulate {
            step: 300,
            size: 1_500,
            offset: 100,
        },
        64,
        2,
    );
    // One step per window: the windows are tumbling ones.
    check(
        KeyKind::Multi,
        WindowSpec::Cumulate {
            step: 700,
            size: 700,
            offset: 0,
        },
        4_096,
        3,
    );
}

#[test]
fn count_distinct_and_uneven_steps_are_refused_before_data_moves() {
    let build = |window: WindowSpec, aggregates: Vec<AggregateSpec>| {
        let events = Events::generate(StreamShape {
            rows: 10,
            keys: 2,
            skew: false,
            disorder: 0,
            step: 1,
            partitions: 1,
            seed: 4,
        });
        Pipeline::builder(
            Box::new(sluice_engine::memory::MemorySource::new(
                schema(KeyKind::Int),
                events.partitioned(KeyKind::Int, 1, 10),
            )),
            EventTimeSpec::new("ts", 0),
        )
        .window(WindowAggregateSpec {
            keys: key_names(KeyKind::Int),
            window,
            aggregates,
        })
        .sink(Box::new(sluice_engine::memory::CollectSink::new()))
        .build()
        .map(drop)
        .expect_err("refused")
        .to_string()
    };
    let cumulate = WindowSpec::Cumulate {
        step: 100,
        size: 1_000,
        offset: 0,
    };
    let distinct = build(
        cumulate,
        vec![AggregateSpec::new(
            AggregateFunction::CountDistinct,
            "v_int",
            "d",
        )],
    );
    assert!(
        distinct.contains("count_distinct cannot be merged"),
        "{distinct}"
    );
    let uneven = build(
        WindowSpec::Cumulate {
            step: 300,
            size: 1_000,
            offset: 0,
        },
        vec![AggregateSpec::count("n")],
    );
    assert!(uneven.contains("whole number of steps"), "{uneven}");
}
