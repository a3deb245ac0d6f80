//! The OVER operator: emission on watermarks in (time, arrival) order, late rows, and
//! restore from a checkpoint at every cut.

use std::sync::Arc;

use arrow::array::{AsArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};

use super::{OverAggregate, OverAggregateOperator, OverAggregateSpec};
use crate::aggregate::{AggregateFunction, AggregateSpec};
use crate::backend::CpuBackend;
use crate::frame::OverFrame;
use crate::operator::{Emitted, Operator};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("card", DataType::Utf8, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("amount", DataType::Int64, true),
    ]))
}

fn spec() -> OverAggregateSpec {
    let over = |aggregate, frame| OverAggregate { aggregate, frame };
    OverAggregateSpec {
        partition_by: vec!["card".into()],
        aggregates: vec![
            over(
                AggregateSpec::count("n_100ms"),
                OverFrame::Range { preceding: 100 },
            ),
            over(
                AggregateSpec::new(AggregateFunction::Sum, "amount", "sum_last_2"),
                OverFrame::Rows { preceding: 1 },
            ),
        ],
    }
}

fn operator(spec: &OverAggregateSpec) -> OverAggregateOperator {
    OverAggregateOperator::try_new(spec, schema(), "ts", &CpuBackend::new(), "operators[0]")
        .expect("operator")
}

fn batch(cards: &[&str], ts: &[i64], amounts: &[i64]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(cards.to_vec())),
            Arc::new(TimestampMillisecondArray::from(ts.to_vec()).with_timezone("UTC")),
            Arc::new(Int64Array::from(amounts.to_vec())),
        ],
    )
    .expect("batch")
}

/// (card, ts, amount, n_100ms, sum_last_2) per output row.
fn rows(batches: &[RecordBatch]) -> Vec<(String, i64, i64, i64, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let card = b.column(0).as_string::<i32>();
        let ts = b
            .column(1)
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let amount = b.column(2).as_primitive::<Int64Type>();
        let n = b.column(3).as_primitive::<Int64Type>();
        let sum = b.column(4).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            out.push((
                card.value(i).to_string(),
                ts.value(i),
                amount.value(i),
                n.value(i),
                sum.value(i),
            ));
        }
    }
    out
}

#[test]
fn rows_wait_for_the_watermark_and_leave_in_time_then_arrival_order() {
    let mut op = operator(&spec());
    let mut out = Emitted::default();
    op.process(
        batch(&["a", "b", "a"], &[200, 100, 150], &[1, 2, 3]),
        &mut out,
    )
    .expect("test step");
    op.process(batch(&["a"], &[200], &[4]), &mut out)
        .expect("test step");
    assert!(out.batches.is_empty(), "nothing before a watermark");
    op.on_watermark(200, &mut out).expect("test step");
    // Only the rows before 200: the tie at 200 may still grow.
    assert_eq!(
        rows(&out.batches),
        vec![("b".into(), 100, 2, 1, 2), ("a".into(), 150, 3, 1, 3)]
    );
    assert_eq!(op.pending_rows(), 2);
    op.on_watermark(201, &mut out).expect("test step");
    // Both rows at 200 see each other and the row at 150 (200 - 100 <= 150); the ROWS frame
    // orders the tie by arrival.
    assert_eq!(
        rows(&out.batches)[2..],
        [("a".into(), 200, 1, 3, 4), ("a".into(), 200, 4, 3, 5)]
    );
    assert_eq!(op.output_schema().fields().len(), 5);
}

#[test]
fn in_order_rows_released_from_several_batches_keep_their_columns() {
    // Rows already in arrival order are sliced from each batch and the slices joined.
    let mut op = operator(&spec());
    let mut out = Emitted::default();
    op.process(batch(&["a", "b"], &[10, 20], &[1, 2]), &mut out)
        .expect("test step");
    op.process(batch(&["a", "b"], &[30, 40], &[3, 4]), &mut out)
        .expect("test step");
    op.on_watermark(35, &mut out).expect("test step");
    op.on_watermark(41, &mut out).expect("test step");
    assert_eq!(
        rows(&out.batches),
        vec![
            ("a".into(), 10, 1, 1, 1),
            ("b".into(), 20, 2, 1, 2),
            ("a".into(), 30, 3, 2, 4),
            ("b".into(), 40, 4, 2, 6),
        ]
    );
}

#[test]
fn a_row_the_watermark_passed_is_late_and_changes_nothing() {
    let mut op = operator(&spec());
    let mut out = Emitted::default();
    op.process(batch(&["a"], &[100], &[1]), &mut out)
        .expect("test step");
    op.on_watermark(150, &mut out).expect("test step");
    op.process(batch(&["a", "a"], &[149, 150], &[10, 20]), &mut out)
        .expect("test step");
    op.on_watermark(i64::MAX, &mut out).expect("test step");
    assert_eq!(out.late_rows(), 1);
    assert_eq!(
        rows(&out.batches),
        vec![("a".into(), 100, 1, 1, 1), ("a".into(), 150, 20, 2, 21)]
    );
}

/// Runs a fixed input with a watermark after each batch, restarting after batch `cut`.
fn run(cut: Option<i64>) -> Vec<RecordBatch> {
    let mut op = operator(&spec());
    let mut out = Emitted::default();
    for i in 0..8i64 {
        let cards: Vec<String> = (0..6)
            .map(|j| format!("card-{}", (i * 7 + j * 3) % 5))
            .collect();
        let cards: Vec<&str> = cards.iter().map(String::as_str).collect();
        let ts: Vec<i64> = (0..6).map(|j| i * 60 + (j * 37) % 90).collect();
        let amounts: Vec<i64> = (0..6).map(|j| i * 10 + j).collect();
        op.process(batch(&cards, &ts, &amounts), &mut out)
            .expect("test step");
        op.on_watermark(i * 60 - 20, &mut out).expect("test step");
        if cut == Some(i) {
            let state = op.snapshot().expect("test step").expect("stateful");
            op = operator(&spec());
            op.restore(&state).expect("test step");
        }
    }
    op.on_watermark(i64::MAX, &mut out).expect("test step");
    out.batches
}

#[test]
fn a_restore_at_any_cut_equals_the_uninterrupted_run() {
    let whole = run(None);
    assert_eq!(rows(&whole).len(), 48, "every row comes out once");
    for cut in 0..8 {
        assert_eq!(run(Some(cut)), whole, "cut after batch {cut}");
    }
}

#[test]
fn state_of_another_frame_is_refused_saying_what_differs() {
    let mut op = operator(&spec());
    op.process(batch(&["a"], &[1], &[1]), &mut Emitted::default())
        .expect("test step");
    let state = op.snapshot().expect("test step").expect("test step");
    let mut other = spec();
    other.aggregates[0].frame = OverFrame::Range { preceding: 200 };
    let error = operator(&other)
        .restore(&state)
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("count(*) over RANGE 100ms PRECEDING as n_100ms")
            && error.contains("now count(*) over RANGE 200ms PRECEDING"),
        "{error}"
    );
}

#[test]
fn count_distinct_and_clashing_names_are_refused() {
    let mut distinct = spec();
    distinct.aggregates[1].aggregate.function = AggregateFunction::CountDistinct;
    let error = OverAggregateOperator::try_new(
        &distinct,
        schema(),
        "ts",
        &CpuBackend::new(),
        "operators[0]",
    )
    .expect_err("refused")
    .to_string();
    assert!(
        error.starts_with("operators[0].aggregates[1].fn"),
        "{error}"
    );
    let mut clash = spec();
    clash.aggregates[0].aggregate.alias = "amount".into();
    let error =
        OverAggregateOperator::try_new(&clash, schema(), "ts", &CpuBackend::new(), "operators[0]")
            .expect_err("refused")
            .to_string();
    assert!(error.contains("`amount` appears twice"), "{error}");
    assert!(operator(&spec()).output_schema().field(4).is_nullable());
}
