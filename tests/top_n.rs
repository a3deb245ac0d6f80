//! Window Top-N equals ranking by hand, on random inputs with fixed seeds, on every backend:
//! the polars oracle's window aggregation rows per window ordered by `sum_v_int` descending
//! (nulls last), then by key, the first three kept and numbered; and raw rows in tumbling,
//! hopping and cumulating windows, ranked by their values.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Float64Type;
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use sluice_engine::prelude::*;

use crate::common::oracle::{Value, expected};
use crate::common::{Events, KeyKind, StreamShape, all_aggregates, backends, run_operators};

const LIMIT: usize = 3;

/// (window start, rownum) → (key, sum_v_int), from the oracle's windows.
fn ranked_by_hand(events: &Events, window: WindowSpec) -> BTreeMap<(i64, i64), (i64, Option<i64>)> {
    let all: Vec<usize> = (0..events.len()).collect();
    // `sum_v_int` is the fourth value: n, count_v_int, sum_v_int, ...
    let position = all_aggregates()
        .iter()
        .position(|a| a.alias == "sum_v_int")
        .expect("sum_v_int");
    let mut by_window: BTreeMap<i64, Vec<(i64, Option<i64>)>> = BTreeMap::new();
    for ((key, start), (_, values)) in expected(events, KeyKind::Int, window, &all) {
        let Value::Int(sum) = values[position] else {
            panic!("sum_v_int is an integer");
        };
        by_window
            .entry(start)
            .or_default()
            .push((key.parse().expect("integer key"), sum));
    }
    let mut ranked = BTreeMap::new();
    for (start, mut rows) in by_window {
        // Descending sums, nulls last, then ascending keys.
        rows.sort_by(|a, b| match (a.1, b.1) {
            (Some(x), Some(y)) => y.cmp(&x).then(a.0.cmp(&b.0)),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.0.cmp(&b.0),
        });
        for (i, row) in rows.into_iter().take(LIMIT).enumerate() {
            ranked.insert((start, i as i64 + 1), row);
        }
    }
    ranked
}

fn run(events: &Events, window: WindowSpec, backend: std::sync::Arc<dyn Backend>) -> RecordBatch {
    let window = OperatorSpec::Window(WindowAggregateSpec {
        keys: vec!["k".into()],
        window,
        aggregates: vec![AggregateSpec::new(
            AggregateFunction::Sum,
            "v_int",
            "sum_v_int",
        )],
    });
    let top = OperatorSpec::WindowTopN(WindowTopNSpec {
        partition_by: Vec::new(),
        order_by: vec![
            TopNOrder {
                column: "sum_v_int".into(),
                descending: true,
                nulls_first: false,
            },
            TopNOrder {
                column: "k".into(),
                descending: false,
                nulls_first: false,
            },
        ],
        limit: Some(LIMIT),
        rownum: Some("rownum".into()),
        window: None,
    });
    run_operators(events, vec![window, top], backend)
}

#[test]
fn window_top_n_equals_ranking_the_oracles_windows_on_every_backend() {
    for (window, seed) in [
        (
            WindowSpec::Tumbling {
                size: 1_000,
                offset: 0,
            },
            11,
        ),
        (
            WindowSpec::Hopping {
                size: 1_500,
                slide: 500,
                offset: 0,
            },
            12,
        ),
    ] {
        let events = Events::generate(StreamShape {
            rows: 5_000,
            keys: 30,
            skew: true,
            disorder: 400,
            step: 3,
            partitions: 2,
            seed,
        });
        let want = ranked_by_hand(&events, window);
        assert!(want.len() > 30, "windows to rank");
        for backend in backends() {
            let context = format!("{window:?} on {}", backend.name());
            let output = run(&events, window, backend);
            let column = |name: &str| {
                output
                    .column(output.schema().index_of(name).expect(name))
                    .clone()
            };
            let (k, sums, numbers) = (column("k"), column("sum_v_int"), column("rownum"));
            let starts = column("window_start");
            let starts = starts.as_primitive::<TimestampMillisecondType>();
            let mut got = BTreeMap::new();
            for row in 0..output.num_rows() {
                let sums = sums.as_primitive::<Int64Type>();
                let previous = got.insert(
                    (
                        starts.value(row),
                        numbers.as_primitive::<Int64Type>().value(row),
                    ),
                    (
                        k.as_primitive::<Int64Type>().value(row),
                        sums.is_valid(row).then(|| sums.value(row)),
                    ),
                );
                assert!(
                    previous.is_none(),
                    "{context}: a number given twice in a window"
                );
            }
            assert_eq!(got, want, "{context}");
        }
    }
}

/// The windows of `window` (tumbling, hopping or cumulating) holding time `t`, as (start, end):
/// computed from the definitions, not the engine's assigner.
pub(crate) fn windows_of(window: WindowSpec, t: i64) -> Vec<(i64, i64)> {
    match window {
        WindowSpec::Tumbling { size, .. } => {
            let start = t.div_euclid(size) * size;
            vec![(start, start + size)]
        }
        WindowSpec::Hopping { size, slide, .. } => {
            let mut out = Vec::new();
            let mut start = t.div_euclid(slide) * slide;
            while start > t - size {
                out.push((start, start + size));
                start -= slide;
            }
            out
        }
        WindowSpec::Cumulate { step, size, .. } => {
            let start = t.div_euclid(size) * size;
            (1..=size / step)
                .map(|k| (start, start + k * step))
                .filter(|&(_, end)| end > t)
                .collect()
        }
        WindowSpec::Session { .. } => unreachable!("not ranked over raw rows"),
    }
}

/// What identifies a ranked row's place: (window start, window end, key or -1, rownum).
type Place = (i64, i64, i64, i64);
/// What a row ranks by: (v_int, v_float bits, ts); ties keep the same answer whichever row wins.
type Ranks = (Option<i64>, Option<u64>, i64);

/// Per window (and key when `by_key`), rows by `v_int` descending, then `v_float` descending
/// (nulls last in both), then `ts`, the first `limit`.
fn raw_by_hand(
    events: &Events,
    window: WindowSpec,
    by_key: bool,
    limit: usize,
) -> BTreeMap<Place, Ranks> {
    let mut groups: BTreeMap<(i64, i64, i64), Vec<usize>> = BTreeMap::new();
    for i in 0..events.len() {
        let key = if by_key { events.key[i] } else { -1 };
        for (start, end) in windows_of(window, events.ts[i]) {
            groups.entry((start, end, key)).or_default().push(i);
        }
    }
    let descending_nulls_last = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    };
    let mut ranked = BTreeMap::new();
    for ((start, end, key), mut rows) in groups {
        rows.sort_by(|&a, &b| {
            descending_nulls_last(
                events.v_int[a].map(|v| v as f64),
                events.v_int[b].map(|v| v as f64),
            )
            .then(descending_nulls_last(events.v_float[a], events.v_float[b]))
            .then(events.ts[a].cmp(&events.ts[b]))
        });
        for (n, &row) in rows.iter().take(limit).enumerate() {
            ranked.insert(
                (start, end, key, n as i64 + 1),
                (
                    events.v_int[row],
                    events.v_float[row].map(f64::to_bits),
                    events.ts[row],
                ),
            );
        }
    }
    ranked
}

#[test]
fn window_top_n_over_raw_rows_equals_ranking_them_by_hand_on_every_backend() {
    let descending = |column: &str| TopNOrder {
        column: column.into(),
        descending: true,
        nulls_first: false,
    };
    let cases = [
        (
            WindowSpec::Tumbling {
                size: 1_000,
                offset: 0,
            },
            true,
            2,
            21,
        ),
        (
            WindowSpec::Hopping {
                size: 1_500,
                slide: 500,
                offset: 0,
            },
            false,
            3,
            22,
        ),
        (
            WindowSpec::Cumulate {
                step: 500,
                size: 1_500,
                offset: 0,
            },
            true,
            1,
            23,
        ),
    ];
    for (window, by_key, limit, seed) in cases {
        let events = Events::generate(StreamShape {
            rows: 5_000,
            keys: 30,
            skew: true,
            disorder: 400,
            step: 3,
            partitions: 2,
            seed,
        });
        let want = raw_by_hand(&events, window, by_key, limit);
        assert!(want.len() > 30, "windows to rank");
        let top = WindowTopNSpec {
            partition_by: if by_key { vec!["k".into()] } else { Vec::new() },
            order_by: vec![
                descending("v_int"),
                descending("v_float"),
                TopNOrder {
                    column: "ts".into(),
                    descending: false,
                    nulls_first: false,
                },
            ],
            limit: Some(limit),
            rownum: Some("rownum".into()),
            window: Some(window),
        };
        for backend in backends() {
            let context = format!("{window:?} on {}", backend.name());
            let output = run_operators(
                &events,
                vec![OperatorSpec::WindowTopN(top.clone())],
                backend,
            );
            let column = |name: &str| {
                output
                    .column(output.schema().index_of(name).expect(name))
                    .clone()
            };
            let (k, ints, floats, ts) = (
                column("k"),
                column("v_int"),
                column("v_float"),
                column("ts"),
            );
            let (starts, ends, numbers) = (
                column("window_start"),
                column("window_end"),
                column("rownum"),
            );
            let ints = ints.as_primitive::<Int64Type>();
            let floats = floats.as_primitive::<Float64Type>();
            let mut got = BTreeMap::new();
            for row in 0..output.num_rows() {
                let place = (
                    starts.as_primitive::<TimestampMillisecondType>().value(row),
                    ends.as_primitive::<TimestampMillisecondType>().value(row),
                    if by_key {
                        k.as_primitive::<Int64Type>().value(row)
                    } else {
                        -1
                    },
                    numbers.as_primitive::<Int64Type>().value(row),
                );
                let ranks = (
                    ints.is_valid(row).then(|| ints.value(row)),
                    floats.is_valid(row).then(|| floats.value(row).to_bits()),
                    ts.as_primitive::<TimestampMillisecondType>().value(row),
                );
                assert!(
                    got.insert(place, ranks).is_none(),
                    "{context}: a place given twice"
                );
            }
            assert_eq!(got.len(), want.len(), "{context}: rows ranked");
            assert_eq!(got, want, "{context}");
        }
    }
}
