//! The `transactions` stream: card payments with skewed amounts, countries and channels.

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_engine::{Error, Result};

use super::Settings;
use super::columns::{self, Categories, Span};
use super::rng::{Stream, below};
use crate::spec::timestamp_type;

/// Random stream ids, one per column, so columns are independent of each other.
const TS: u64 = 0;
const CARD: u64 = 1;
const MERCHANT: u64 = 2;
const AMOUNT: u64 = 3;
const COUNTRY: u64 = 4;
const CHANNEL: u64 = 5;

/// ISO 3166 codes, weighted towards a few large markets (weights out of 256).
const COUNTRIES: [&str; 20] = [
    "US", "GB", "DE", "FR", "NL", "ES", "IT", "SE", "PL", "IE", "CA", "MX", "BR", "JP", "KR", "IN",
    "AU", "SG", "ZA", "NG",
];
const COUNTRY_WEIGHTS: [u16; 20] = [
    60, 30, 24, 20, 10, 10, 10, 6, 6, 6, 12, 8, 10, 10, 6, 10, 6, 4, 4, 4,
];
const CHANNELS: [&str; 3] = ["pos", "online", "atm"];
const CHANNEL_WEIGHTS: [u16; 3] = [150, 96, 10];

/// Amount classes, picked by the top byte of the random bits: 80% small ($1 to $50), 17.6%
/// medium ($50 to $500), 2.3% large ($500 to $10 000). Lookup tables keep the loop branch-free.
const AMOUNT_LOW: [i64; 3] = [100, 5_000, 50_000];
const AMOUNT_SPAN: [u64; 3] = [4_900, 45_000, 950_000];

/// The columns of the stream.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", timestamp_type(), false),
        Field::new("card_id", DataType::Int64, false),
        Field::new("merchant_id", DataType::Int64, false),
        Field::new("amount_cents", DataType::Int64, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
    ]))
}

/// Generates the events of `span`, column by column; only the columns `wanted` (one flag per
/// column of [`schema`]) are generated, and `schema` is the schema of those.
pub fn batch(
    settings: &Settings,
    schema: &SchemaRef,
    span: Span,
    wanted: &[bool],
) -> Result<RecordBatch> {
    let seed = settings.seed;
    let want = |i: usize| wanted.get(i).copied().unwrap_or(true);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(6);
    if want(0) {
        let ts = settings.event_times(span, TS);
        columns.push(columns::timestamp_column(ts));
    }
    if want(1) {
        let cards = settings.keys(span, CARD);
        columns.push(columns::int64_column(cards));
    }
    if want(2) {
        let merchants = columns::uniform(span, 1, settings.merchants, Stream::new(seed, MERCHANT));
        columns.push(columns::int64_column(merchants));
    }
    if want(3) {
        let amounts = columns::fill(span, Stream::new(seed, AMOUNT), |bits| {
            let top = bits >> 56;
            let class = usize::from(top >= 205) + usize::from(top >= 250);
            AMOUNT_LOW[class] + below(bits << 8, AMOUNT_SPAN[class]) as i64
        });
        columns.push(columns::int64_column(amounts));
    }
    if want(4) {
        columns.push(
            Categories::new(&COUNTRIES, &COUNTRY_WEIGHTS).column(span, Stream::new(seed, COUNTRY)),
        );
    }
    if want(5) {
        columns.push(
            Categories::new(&CHANNELS, &CHANNEL_WEIGHTS).column(span, Stream::new(seed, CHANNEL)),
        );
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(Error::arrow("generating transactions"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn amounts_are_mostly_small_and_sometimes_large() {
        let settings = Settings::for_test(10, 0.0);
        let out = batch(
            &settings,
            &schema(),
            Span {
                first: 0,
                step: 1,
                len: 100_000,
            },
            &[true; 6],
        )
        .expect("batch");
        let amounts = out
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        let small = amounts.values().iter().filter(|&&a| a < 5_000).count();
        let large = amounts.values().iter().filter(|&&a| a >= 50_000).count();
        assert!(
            amounts
                .values()
                .iter()
                .all(|&a| (100..1_000_000).contains(&a))
        );
        // Expected shares: 205/256 = 80.1% small and 6/256 = 2.3% large.
        assert!((79_000..81_200).contains(&small), "{small}");
        assert!((2_000..2_700).contains(&large), "{large}");
        let countries = out
            .column(4)
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("utf8");
        assert!(
            countries
                .iter()
                .all(|c| c.is_some_and(|c| COUNTRIES.contains(&c)))
        );
    }
}
