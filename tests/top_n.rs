//! Window Top-N equals ranking the polars oracle's windows by hand, on random inputs with fixed
//! seeds, on every backend: the window aggregation's rows per window ordered by `sum_v_int`
//! descending (nulls last), then by key, the first three kept and numbered.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use sluice_engine::memory::{CollectSink, MemorySource};
use sluice_engine::prelude::*;

use crate::common::oracle::{Value, expected};
use crate::common::{Events, KeyKind, StreamShape, all_aggregates, backends, schema};

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
    let sink = CollectSink::new();
    let builder = Pipeline::builder(
        Box::new(MemorySource::new(
            schema(KeyKind::Int),
            events.partitioned(KeyKind::Int, 2, 101),
        )),
        EventTimeSpec::new("ts", 401),
    )
    .batching(BatchingSpec {
        max_rows: 700,
        max_delay: Duration::from_millis(50),
    })
    .backend(backend)
    .window(WindowAggregateSpec {
        keys: vec!["k".into()],
        window,
        aggregates: vec![AggregateSpec::new(
            AggregateFunction::Sum,
            "v_int",
            "sum_v_int",
        )],
    })
    .operator(OperatorSpec::WindowTopN(WindowTopNSpec {
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
    }));
    let output = builder.schemas().expect("schemas").output;
    builder
        .sink(Box::new(sink.clone()))
        .build()
        .expect("pipeline")
        .run_blocking()
        .expect("run");
    sink.concat(&output).expect("output")
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
