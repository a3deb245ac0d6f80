//! Late events: counted, written to the late sink, and never change an emitted window.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, TimestampMillisecondType};
use sluice_engine::prelude::*;

use crate::common::oracle::{actual, assert_same, expected};
use crate::common::{
    Events, KeyKind, StreamShape, all_aggregates, backends, key_names, run_window, schema,
    ts_int_batch,
};

fn batch(ts: &[i64], keys: &[i64]) -> RecordBatch {
    ts_int_batch("k", ts.to_vec(), keys.to_vec())
}

#[test]
fn a_hand_checked_late_event_is_counted_and_routed() {
    // Tumbling 1 s, no delay. Batch 1 moves the watermark to 1500 and closes [0, 1000) with two
    // rows; the 300 in batch 2 belongs to that closed window: late. [1000, 2000) gets 1500 and
    // 1600; [2000, 3000) gets 2500 at the end of input.
    let b1 = batch(&[100, 200, 1_500], &[1, 1, 1]);
    let b2 = batch(&[300, 1_600, 2_500], &[1, 1, 1]);
    let spec = WindowAggregateSpec {
        keys: vec!["k".into()],
        window: WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        },
        aggregates: vec![AggregateSpec::count("n")],
    };
    for backend in backends() {
        let outcome = run_window(
            backend,
            b1.schema(),
            vec![vec![b1.clone(), b2.clone()]],
            spec.clone(),
            0,
            3,
        );
        let out = &outcome.output;
        let starts: Vec<i64> = out
            .column(1)
            .as_primitive::<TimestampMillisecondType>()
            .values()
            .to_vec();
        let counts: Vec<i64> = out.column(3).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(starts, vec![0, 1_000, 2_000]);
        assert_eq!(counts, vec![2, 2, 1]);
        assert_eq!(outcome.summary.counts.late, 1);
        let late = outcome.late.expect("late rows");
        assert_eq!(late.num_rows(), 1);
        assert_eq!(
            late.column(0)
                .as_primitive::<TimestampMillisecondType>()
                .value(0),
            300
        );
    }
}

#[test]
fn random_late_events_change_no_emitted_window() {
    // Disorder (3 s) far beyond the delay (200 ms): many events arrive after their window
    // closed. One partition, and micro-batches equal to source batches, so the watermark before
    // batch b is the largest event time of batches before b, minus the delay; this test
    // replays that rule independently to know which rows must be late.
    let shape = StreamShape {
        rows: 20_000,
        keys: 300,
        skew: false,
        disorder: 3_000,
        step: 2,
        partitions: 1,
        seed: 21,
    };
    let events = Events::generate(shape);
    let (delay, batch_rows, size) = (200, 500, 1_000);
    let window = WindowSpec::Tumbling { size, offset: 0 };
    let mut late_rows = BTreeSet::new();
    let mut max_ts = i64::MIN;
    for chunk in (0..events.len()).collect::<Vec<_>>().chunks(batch_rows) {
        let watermark = max_ts.saturating_sub(delay);
        for &r in chunk {
            let end = window.last_start(events.ts[r]).expect("a window fits") + size;
            if end <= watermark {
                late_rows.insert(r);
            }
        }
        max_ts = max_ts.max(chunk.iter().map(|&r| events.ts[r]).max().expect("rows"));
    }
    assert!(
        late_rows.len() > 1_000,
        "the case must produce many late rows, got {}",
        late_rows.len()
    );
    let on_time: Vec<usize> = (0..events.len())
        .filter(|r| !late_rows.contains(r))
        .collect();

    let spec = WindowAggregateSpec {
        keys: key_names(KeyKind::Int),
        window,
        aggregates: all_aggregates(),
    };
    for backend in backends() {
        let outcome = run_window(
            backend,
            schema(KeyKind::Int),
            events.partitioned(KeyKind::Int, 1, batch_rows),
            spec.clone(),
            delay,
            batch_rows,
        );
        assert_eq!(outcome.summary.counts.late, late_rows.len() as u64);
        let want = expected(&events, KeyKind::Int, window, &on_time);
        assert_same(
            &actual(&outcome.output, KeyKind::Int),
            &want,
            "late/tumbling",
        );

        let late = outcome.late.expect("late rows");
        let got: BTreeSet<(i64, i64)> = (0..late.num_rows())
            .map(|i| {
                let ts = late
                    .column(0)
                    .as_primitive::<TimestampMillisecondType>()
                    .value(i);
                let k = late.column(1).as_primitive::<Int64Type>().value(i);
                (ts, k)
            })
            .collect();
        let want_late: BTreeSet<(i64, i64)> = late_rows
            .iter()
            .map(|&r| (events.ts[r], events.key[r]))
            .collect();
        assert_eq!(got, want_late, "the late sink holds exactly the late rows");
        assert!(late.column(2).len() == late.num_rows());
    }
}
