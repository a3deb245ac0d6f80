//! The input of the resident window-operator benchmark, shared by `benches/` (criterion) and
//! `sluice bench --workloads operator`: the core query's stream of card transactions.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use sluice_engine::prelude::*;

/// Distinct cards.
pub const KEYS: u64 = 10_000;
/// Event time of the first event, epoch ms.
pub const START_MS: i64 = 1_700_000_000_000;

/// `ts`, `card_id`, `amount_cents`.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("card_id", DataType::Int64, false),
        Field::new("amount_cents", DataType::Int64, false),
    ]))
}

/// Rows `first..first + rows` of the stream: one million events per second of event time, in
/// order, 10,000 uniform cards (seeded by `seed`), amounts below 50,000.
pub fn batch(rows: usize, seed: u64, first: i64) -> RecordBatch {
    batch_at_rate(rows, seed, first, 1_000_000)
}

/// As [`batch`], with `per_second` events per second of event time.
pub fn batch_at_rate(rows: usize, seed: u64, first: i64, per_second: i64) -> RecordBatch {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 31)
    };
    let ts: Vec<i64> = (first..first + rows as i64)
        .map(|i| START_MS + i * 1_000 / per_second)
        .collect();
    let keys: Vec<i64> = (0..rows)
        .map(|_| ((next() as u128 * KEYS as u128) >> 64) as i64)
        .collect();
    let amounts: Vec<i64> = (0..rows).map(|_| (next() % 50_000) as i64).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
        Arc::new(Int64Array::from(keys)),
        Arc::new(Int64Array::from(amounts)),
    ];
    RecordBatch::try_new(schema(), columns).expect("the columns match the schema")
}

/// The event time of the last row of a batch that ends before row `end`.
pub fn last_ts(end: i64) -> i64 {
    START_MS + (end - 1) / 1_000
}

/// 1 s tumbling `count` and `sum(amount_cents)` per card.
pub fn spec() -> WindowAggregateSpec {
    WindowAggregateSpec {
        keys: vec!["card_id".into()],
        window: WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        },
        aggregates: vec![
            AggregateSpec::count("n"),
            AggregateSpec::new(AggregateFunction::Sum, "amount_cents", "amount_sum"),
        ],
    }
}
