//! Batching cannot change results: the same events through every combination of source batch
//! size, micro-batch rows, micro-batch delay, partition count and backend give the windows of
//! the polars oracle and no late row, in order and disordered within the watermark delay.
//! (Stream joins have the same test in `stream_joins.rs`.)
//!
//! Issue 12: a source batch larger than a micro-batch was cut into several micro-batches, and
//! the whole source batch's event-time progress was applied after the first of them, so its
//! later, on-time rows were judged late and left out of their windows.

use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use sluice_engine::prelude::*;

use crate::common::oracle::{actual, assert_same, expected};
use crate::common::{
    Events, KeyKind, StreamShape, all_aggregates, backends, key_names, run_window_batched, schema,
    ts_int_batch,
};

/// Rows per source batch: one row, a few, more than some micro-batches, the whole input.
const SOURCE_ROWS: [usize; 4] = [1, 7, 50, 100_000];
/// Rows per micro-batch: one row, fewer than a source batch, more, the whole input.
const MAX_ROWS: [usize; 4] = [1, 6, 64, 100_000];
/// Micro-batch delay: cut after every source batch, soon, never before the end.
const MAX_DELAY: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(5),
    Duration::from_secs(60),
];

/// Runs `window` over the same events, in order and disordered, through every batching and
/// backend, and demands the oracle's windows and no late row from each.
fn invariant_under_batching(window: WindowSpec, seed: u64) {
    for (disorder, partitions) in [(0, 1), (0, 3), (300, 1), (300, 3)] {
        let shape = StreamShape {
            rows: 360,
            keys: 12,
            skew: false,
            disorder,
            step: 5,
            partitions,
            seed,
        };
        let events = Events::generate(shape);
        let all: Vec<usize> = (0..events.len()).collect();
        let want = expected(&events, KeyKind::Int, window, &all);
        let spec = WindowAggregateSpec {
            keys: key_names(KeyKind::Int),
            window,
            aggregates: all_aggregates(),
        };
        // One more than the disorder: an on-time row can then never reach a session that
        // already closed (sessions merge rows exactly `gap` apart).
        let delay = disorder + 1;
        for backend in backends() {
            for source_rows in SOURCE_ROWS {
                let input = events.partitioned(KeyKind::Int, partitions, source_rows);
                for max_rows in MAX_ROWS {
                    for max_delay in MAX_DELAY {
                        let context = format!(
                            "{window:?}, disorder {disorder}, {partitions} partitions, source \
                             batches of {source_rows}, micro-batches of {max_rows} rows or \
                             {max_delay:?}, on {}",
                            backend.name()
                        );
                        let batching = BatchingSpec {
                            max_rows,
                            max_delay,
                        };
                        let outcome = run_window_batched(
                            backend.clone(),
                            schema(KeyKind::Int),
                            input.clone(),
                            spec.clone(),
                            delay,
                            batching,
                        );
                        assert_eq!(outcome.summary.counts.late, 0, "{context}: late rows");
                        assert_same(&actual(&outcome.output, KeyKind::Int), &want, &context);
                    }
                }
            }
        }
    }
}

#[test]
fn tumbling_windows_do_not_depend_on_batching() {
    let window = WindowSpec::Tumbling {
        size: 100,
        offset: 0,
    };
    invariant_under_batching(window, 31);
}

#[test]
fn hopping_windows_do_not_depend_on_batching() {
    let window = WindowSpec::Hopping {
        size: 150,
        slide: 50,
        offset: 0,
    };
    invariant_under_batching(window, 32);
}

#[test]
fn session_windows_do_not_depend_on_batching() {
    invariant_under_batching(WindowSpec::Session { gap: 40 }, 33);
}

/// The case of the issue, checked by hand: one source batch of 8 rows, `ts` 0..7, one key, no
/// delay, 2 ms tumbling windows, micro-batches of 2 rows: 4 windows of 2 rows, none late.
#[test]
fn a_source_batch_cut_into_micro_batches_loses_no_row() {
    let batch = ts_int_batch("k", (0..8).collect(), vec![1; 8]);
    let spec = WindowAggregateSpec {
        keys: vec!["k".into()],
        window: WindowSpec::Tumbling { size: 2, offset: 0 },
        aggregates: vec![AggregateSpec::count("n")],
    };
    for backend in backends() {
        let batching = BatchingSpec {
            max_rows: 2,
            max_delay: Duration::from_secs(60),
        };
        let outcome = run_window_batched(
            backend.clone(),
            batch.schema(),
            vec![vec![batch.clone()]],
            spec.clone(),
            0,
            batching,
        );
        let out: &RecordBatch = &outcome.output;
        let starts: Vec<i64> = out
            .column(1)
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec();
        let counts: Vec<i64> = out.column(3).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(starts, vec![0, 2, 4, 6], "on {}", backend.name());
        assert_eq!(counts, vec![2, 2, 2, 2], "on {}", backend.name());
        assert_eq!(outcome.summary.counts.late, 0, "on {}", backend.name());
    }
}
