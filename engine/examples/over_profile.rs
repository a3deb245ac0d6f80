//! Times the OVER operator alone on the CPU, for profiling: the rows of
//! `benches/over_aggregate.rs` (per card, count, sum and max of the amounts over the last hour;
//! one event per millisecond, uniform cards), an hour of warm-up, then `BATCHES` batches of
//! `ROWS` rows, each followed by the watermark at its last row.
//!
//! The criterion bench links polars and takes a release build of the whole workspace; this
//! needs the engine only (minutes), so it is the loop to iterate on the frames with:
//!
//! ```sh
//! cargo run --release -p sluice-engine --no-default-features --example over_profile -- 65536 200
//! KEYS=100 cargo run --release -p sluice-engine --no-default-features --example over_profile
//! ```
//!
//! Arguments: rows per batch (default 65 536) and batches (default 200); `KEYS` sets the
//! number of cards (default 10 000). Prints the rows out and the throughput.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_engine::frame::OverFrame;
use sluice_engine::operator::{
    Emitted, Operator, OverAggregate, OverAggregateOperator, OverAggregateSpec,
};
use sluice_engine::prelude::*;

const START_MS: i64 = 1_700_000_000_000;
const HOUR_MS: i64 = 3_600_000;

fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("ts", ts, false),
        Field::new("card_id", DataType::Int64, false),
        Field::new("amount_cents", DataType::Int64, false),
    ]))
}

/// Rows `first..first + rows`: one per millisecond, `keys` uniform cards, amounts below 50 000.
fn batch(rows: usize, seed: u64, first: i64, keys: u64) -> RecordBatch {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 31)
    };
    let ts: Vec<i64> = (first..first + rows as i64).map(|i| START_MS + i).collect();
    let cards: Vec<i64> = (0..rows)
        .map(|_| ((next() as u128 * keys as u128) >> 64) as i64)
        .collect();
    let amounts: Vec<i64> = (0..rows).map(|_| (next() % 50_000) as i64).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
        Arc::new(Int64Array::from(cards)),
        Arc::new(Int64Array::from(amounts)),
    ];
    RecordBatch::try_new(schema(), columns).expect("the columns match the schema")
}

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(default, |s| s.parse().expect("a whole number"))
    };
    let (rows, batches) = (arg(1, 65_536), arg(2, 200));
    let keys: u64 = std::env::var("KEYS").map_or(10_000, |k| k.parse().expect("KEYS: a number"));
    let frame = OverFrame::Range { preceding: HOUR_MS };
    let over = |aggregate| OverAggregate { aggregate, frame };
    let spec = OverAggregateSpec {
        partition_by: vec!["card_id".into()],
        aggregates: vec![
            over(AggregateSpec::count("txn_1h")),
            over(AggregateSpec::new(
                AggregateFunction::Sum,
                "amount_cents",
                "total_1h",
            )),
            over(AggregateSpec::new(
                AggregateFunction::Max,
                "amount_cents",
                "max_1h",
            )),
        ],
    };
    let backend = CpuBackend::new();
    let mut op = OverAggregateOperator::try_new(&spec, schema(), "ts", &backend, "profile")
        .expect("the operator");
    let warm = HOUR_MS as usize;
    let mut out = Emitted::default();
    op.process(batch(warm, 3, 0, keys), &mut out)
        .expect("warm-up");
    op.on_watermark(START_MS + warm as i64 - 1, &mut out)
        .expect("warm-up");
    let input: Vec<RecordBatch> = (0..batches)
        .map(|i| batch(rows, 7 + i as u64, (warm + i * rows) as i64, keys))
        .collect();
    let started = std::time::Instant::now();
    let mut total = 0;
    for (i, b) in input.into_iter().enumerate() {
        let mut out = Emitted::default();
        op.process(b, &mut out).expect("a batch");
        op.on_watermark(START_MS + (warm + (i + 1) * rows) as i64 - 1, &mut out)
            .expect("a watermark");
        total += out.rows();
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{total} rows out, {:.2} M rows/s ({rows} rows per batch, {keys} keys)",
        (rows * batches) as f64 / seconds / 1e6
    );
}
