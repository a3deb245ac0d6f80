//! OVER aggregations against polars' rolling computations: RANGE and ROWS frames, ties, late
//! rows and integer, string and two-column keys, on every backend; the same through SQL.

use std::collections::HashMap;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, Int64Type, TimestampMillisecondType};
use sluice_engine::aggregate::{AggregateFunction, AggregateSpec};
use sluice_engine::backend::Backend;
use sluice_engine::frame::OverFrame;
use sluice_engine::memory::{CollectSink, MemorySource};
use sluice_engine::operator::{OverAggregate, OverAggregateSpec};
use sluice_engine::prelude::*;
use std::sync::Arc;

use crate::common::over_oracle::{actual, assert_same, expected};
use crate::common::{Events, KeyKind, StreamShape, backends, key_names, schema};

/// Every aggregate over `v_int` and `v_float`, all over `frame`, named as the oracle names them.
fn spec(kind: KeyKind, frame: OverFrame) -> OverAggregateSpec {
    let mut aggregates = vec![AggregateSpec::count("n")];
    for c in ["v_int", "v_float"] {
        for f in [
            AggregateFunction::Count,
            AggregateFunction::Sum,
            AggregateFunction::Min,
            AggregateFunction::Max,
            AggregateFunction::Avg,
        ] {
            aggregates.push(AggregateSpec::new(f, c, format!("{}_{c}", f.name())));
        }
    }
    OverAggregateSpec {
        partition_by: key_names(kind),
        aggregates: aggregates
            .into_iter()
            .map(|aggregate| OverAggregate { aggregate, frame })
            .collect(),
    }
}

/// Runs the OVER job on `backend`; returns its output and its late rows.
fn run(
    backend: Arc<dyn Backend>,
    kind: KeyKind,
    events: &Events,
    partitions: usize,
    frame: OverFrame,
    delay: i64,
) -> (RecordBatch, RecordBatch) {
    let sink = CollectSink::new();
    let late = CollectSink::new();
    let builder = Pipeline::builder(
        Box::new(MemorySource::new(
            schema(kind),
            events.partitioned(kind, partitions, 97),
        )),
        EventTimeSpec::new("ts", delay),
    )
    .batching(BatchingSpec {
        max_rows: 256,
        max_delay: Duration::from_millis(50),
    })
    .backend(backend)
    .over(spec(kind, frame));
    let schemas = builder.schemas().expect("schemas");
    let pipeline = builder
        .sink(Box::new(sink.clone()))
        .late_sink(Box::new(late.clone()))
        .build()
        .expect("pipeline");
    pipeline.run_blocking().expect("run");
    (
        sink.concat(&schemas.output).expect("output"),
        late.concat(&schemas.late.expect("late schema"))
            .expect("late"),
    )
}

/// A row's identity for matching late rows: (ts, key, v_int, v_float) as text.
fn identity(batch: &RecordBatch, kind: KeyKind, row: usize) -> String {
    let text = |name: &str| {
        let c = batch.column_by_name(name).expect(name);
        if c.is_null(row) {
            "<null>".to_string()
        } else if let Some(s) = c.as_string_opt::<i32>() {
            s.value(row).to_string()
        } else if let Some(f) = c.as_primitive_opt::<Float64Type>() {
            f.value(row).to_string()
        } else if let Some(t) = c.as_primitive_opt::<TimestampMillisecondType>() {
            t.value(row).to_string()
        } else {
            c.as_primitive::<Int64Type>().value(row).to_string()
        }
    };
    let mut parts = vec![text("ts")];
    parts.extend(key_names(kind).iter().map(|k| text(k)));
    parts.push(text("v_int"));
    parts.push(text("v_float"));
    parts.join("|")
}

/// The rows of `events`, in arrival order, less those the job reported late.
fn on_time(events: &Events, kind: KeyKind, late: &RecordBatch) -> Vec<usize> {
    let mut late_rows: HashMap<String, usize> = HashMap::new();
    for row in 0..late.num_rows() {
        *late_rows.entry(identity(late, kind, row)).or_default() += 1;
    }
    let all: Vec<usize> = (0..events.len()).collect();
    let batch = events.to_batch(kind, &all);
    all.into_iter()
        .filter(
            |&row| match late_rows.get_mut(&identity(&batch, kind, row)) {
                // The late copy is the later one of equal rows; either leaves the same data.
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            },
        )
        .collect()
}

#[test]
fn over_frames_equal_polars_rolling_on_every_backend() {
    let cases = [
        (KeyKind::Int, OverFrame::Range { preceding: 200 }, 3, 21),
        (KeyKind::Str, OverFrame::Range { preceding: 1_000 }, 2, 22),
        (KeyKind::Multi, OverFrame::Range { preceding: 1 }, 1, 23),
        (KeyKind::Int, OverFrame::Rows { preceding: 4 }, 1, 24),
        (KeyKind::Str, OverFrame::Rows { preceding: 0 }, 1, 25),
        (KeyKind::Multi, OverFrame::Rows { preceding: 30 }, 1, 26),
        (KeyKind::Int, OverFrame::RangeUnbounded, 1, 27),
        (KeyKind::Str, OverFrame::RowsUnbounded, 1, 29),
    ];
    for backend in backends() {
        for (kind, frame, partitions, seed) in cases {
            let shape = StreamShape {
                rows: 4_000,
                keys: 30,
                skew: seed % 2 == 0,
                // Disorder past the watermark delay makes late rows; a step of 2 ms with
                // disorder makes many ties.
                disorder: 150,
                step: 2,
                partitions,
                seed,
            };
            let events = Events::generate(shape);
            let (output, late) = run(backend.clone(), kind, &events, partitions, frame, 100);
            let context = format!("{} {kind:?} {frame:?}", backend.name());
            if partitions == 1 {
                // Several partitions hold the watermark back to the slowest, so whether rows
                // come late there depends on the readers' timing.
                assert!(late.num_rows() > 0, "{context}: the case has late rows");
            }
            let rows = on_time(&events, kind, &late);
            assert_eq!(
                rows.len() + late.num_rows(),
                events.len(),
                "{context}: every late row is one of the input's"
            );
            let with_values = matches!(frame, OverFrame::Rows { .. } | OverFrame::RowsUnbounded);
            assert_same(
                actual(&output, kind, with_values),
                expected(&events, kind, frame, &rows),
                &context,
            );
        }
    }
}
