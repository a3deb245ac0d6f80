//! Hand-checked cumulating windows, late rows, and restore from a checkpoint.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{
    DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit, TimestampMillisecondType,
};

use super::*;
use crate::aggregate::{AggregateFunction, AggregateSpec};
use crate::backend::CpuBackend;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, None),
            false,
        ),
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
    ]))
}

fn batch(rows: &[(i64, i64, Option<i64>)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(TimestampMillisecondArray::from_iter_values(
                rows.iter().map(|r| r.0),
            )),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
        ],
    )
    .expect("test batch")
}

/// Steps of 10 ms up to 30 ms; `count(*)`, `sum(v)` and `avg(v)` per key.
fn operator() -> CumulateWindowOperator {
    let spec = WindowAggregateSpec {
        keys: vec!["k".into()],
        window: WindowSpec::Cumulate {
            step: 10,
            size: 30,
            offset: 0,
        },
        aggregates: vec![
            AggregateSpec::count("n"),
            AggregateSpec::new(AggregateFunction::Sum, "v", "total"),
            AggregateSpec::new(AggregateFunction::Avg, "v", "mean"),
        ],
    };
    CumulateWindowOperator::try_new(&spec, schema(), "ts", &CpuBackend::new(), "operators[0]")
        .expect("operator")
}

/// (k, window_start, window_end, n, total, mean) per output row, in output order.
type Row = (i64, i64, i64, i64, Option<i64>, Option<f64>);

fn rows(out: &Emitted) -> Vec<Row> {
    let mut rows = Vec::new();
    for batch in &out.batches {
        let int = |i: usize| batch.column(i).as_primitive::<Int64Type>().clone();
        let time = |i: usize| {
            batch
                .column(i)
                .as_primitive::<TimestampMillisecondType>()
                .clone()
        };
        let (k, start, end, n, total) = (int(0), time(1), time(2), int(3), int(4));
        let mean = batch
            .column(5)
            .as_primitive::<arrow::datatypes::Float64Type>();
        for row in 0..batch.num_rows() {
            rows.push((
                k.value(row),
                start.value(row),
                end.value(row),
                n.value(row),
                total.is_valid(row).then(|| total.value(row)),
                mean.is_valid(row).then(|| mean.value(row)),
            ));
        }
    }
    rows
}

#[test]
fn each_step_emits_every_key_seen_since_the_start_and_late_rows_are_returned() -> Result<()> {
    let mut op = operator();
    let mut out = Emitted::default();
    op.process(
        batch(&[
            (1, 1, Some(5)),
            (12, 1, Some(7)),
            (25, 2, None),
            (31, 1, Some(2)),
        ]),
        &mut out,
    )?;
    op.on_watermark(30, &mut out)?;
    assert_eq!(
        rows(&out),
        vec![
            (1, 0, 10, 1, Some(5), Some(5.0)),
            (1, 0, 20, 2, Some(12), Some(6.0)),
            // Key 1 had no row in [20, 30) and still gets the window; key 2's only value is null.
            (1, 0, 30, 2, Some(12), Some(6.0)),
            (2, 0, 30, 1, None, None),
        ]
    );
    let mut after = Emitted::default();
    op.process(batch(&[(5, 1, Some(100)), (38, 1, Some(4))]), &mut after)?;
    assert_eq!(
        after.late.iter().map(RecordBatch::num_rows).sum::<usize>(),
        1,
        "ts 5: its slice closed"
    );
    op.on_watermark(i64::MAX, &mut after)?;
    assert_eq!(
        rows(&after),
        vec![
            (1, 30, 40, 2, Some(6), Some(3.0)),
            (1, 30, 50, 2, Some(6), Some(3.0)),
            (1, 30, 60, 2, Some(6), Some(3.0)),
        ]
    );
    assert!(
        op.open.is_empty() && op.by_key.is_empty(),
        "every window closed"
    );
    Ok(())
}

#[test]
fn a_restored_operator_continues_as_the_uninterrupted_one() -> Result<()> {
    let first = batch(&[
        (1, 1, Some(5)),
        (3, 2, Some(1)),
        (12, 1, Some(7)),
        (14, 3, None),
    ]);
    let second = batch(&[
        (18, 2, Some(4)),
        (22, 1, Some(1)),
        (35, 3, Some(9)),
        (41, 2, Some(2)),
    ]);
    let run = |restart: bool| -> Result<Vec<Row>> {
        let mut op = operator();
        let mut out = Emitted::default();
        op.process(first.clone(), &mut out)?;
        op.on_watermark(15, &mut out)?;
        if restart {
            let saved = op.snapshot()?.expect("stateful");
            op = operator();
            op.restore(&saved)?;
        }
        op.process(second.clone(), &mut out)?;
        op.on_watermark(40, &mut out)?;
        op.on_watermark(i64::MAX, &mut out)?;
        Ok(rows(&out))
    };
    let uninterrupted = run(false)?;
    // Keys 1, 2 (from 0 ms) and 3 (from 10 ms) to 30 ms: 8 windows; keys 3 and 2 after: 5.
    assert_eq!(uninterrupted.len(), 13, "{uninterrupted:?}");
    assert_eq!(run(true)?, uninterrupted);
    Ok(())
}
