//! The `logins` stream: card logins from a device, mostly the card's own few devices, a few
//! failed; the other side of a fraud join against `transactions` (same card ids).

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use sluice_engine::{Error, Result};

use super::Settings;
use super::columns::{self, Span};
use super::rng::{Stream, below};
use crate::spec::timestamp_type;

/// Random stream ids, one per column. Streams 0 and 1 are the event time and the card, as in
/// `transactions`, but a logins source is its own stream of events: with the same seed its
/// event `i` is not transaction `i`'s card (its event time differs by the rates anyway).
const TS: u64 = 0;
const CARD: u64 = 1;
const DEVICE: u64 = 2;
const SUCCESS: u64 = 3;

/// Devices a card usually logs in from: `card_id * DEVICES_PER_CARD + 0..DEVICES_PER_CARD`.
const DEVICES_PER_CARD: u64 = 4;
/// One login in 32 comes from a device the card has never used, drawn from this many ids
/// above every card's own devices.
const STRANGE_DEVICES: u64 = 1_000_000;
/// Failed logins: 8 in 256 (about 3%).
const FAILED_OUT_OF_256: u64 = 8;

/// The columns of the stream.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", timestamp_type(), false),
        Field::new("card_id", DataType::Int64, false),
        Field::new("device_id", DataType::Int64, false),
        Field::new("success", DataType::Boolean, false),
    ]))
}

/// Generates the events of `span`, column by column, keeping the columns `wanted` (one flag per
/// column of [`schema`]; `schema` is the schema of those). The device derives from the card,
/// so the card column is computed whenever either is wanted.
pub fn batch(
    settings: &Settings,
    schema: &SchemaRef,
    span: Span,
    wanted: &[bool],
) -> Result<RecordBatch> {
    let seed = settings.seed;
    let want = |i: usize| wanted.get(i).copied().unwrap_or(true);
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(4);
    if want(0) {
        columns.push(columns::timestamp_column(settings.event_times(span, TS)));
    }
    let cards = (want(1) || want(2)).then(|| settings.keys(span, CARD));
    if want(2) {
        let first_strange = (settings.keys as i64 + 1) * DEVICES_PER_CARD as i64;
        let bits = Stream::new(seed, DEVICE);
        let devices: Vec<i64> = cards
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(k, &card)| {
                let bits = bits.bits(span.index(k));
                // The top 5 bits pick a strange device (all ones), the rest pick which one.
                if bits >> 59 == 31 {
                    first_strange + below(bits << 5, STRANGE_DEVICES) as i64
                } else {
                    card * DEVICES_PER_CARD as i64 + below(bits << 5, DEVICES_PER_CARD) as i64
                }
            })
            .collect();
        if let Some(cards) = cards.filter(|_| want(1)) {
            columns.push(columns::int64_column(cards));
        }
        columns.push(columns::int64_column(devices));
    } else if let Some(cards) = cards {
        columns.push(columns::int64_column(cards));
    }
    if want(3) {
        let bits = Stream::new(seed, SUCCESS);
        let success = BooleanBuffer::collect_bool(span.len, |k| {
            bits.bits(span.index(k)) >> 56 >= FAILED_OUT_OF_256
        });
        columns.push(Arc::new(BooleanArray::new(success, None)));
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(Error::arrow("generating logins"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{GeneratorKind, GeneratorSpec};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    fn settings(keys: u64) -> Settings {
        let spec = GeneratorSpec {
            keys: Some(keys),
            ..GeneratorSpec::new(GeneratorKind::Logins)
        };
        Settings::new(&spec).expect("valid settings")
    }

    fn all(settings: &Settings, first: u64, len: usize) -> RecordBatch {
        let span = Span {
            first,
            step: 1,
            len,
        };
        batch(settings, &schema(), span, &[true; 4]).expect("batch")
    }

    #[test]
    fn devices_are_mostly_the_cards_own_and_few_logins_fail() {
        let settings = settings(1_000);
        let out = all(&settings, 0, 100_000);
        let cards = out.column(1).as_primitive::<Int64Type>().values();
        let devices = out.column(2).as_primitive::<Int64Type>().values();
        let success = out.column(3).as_boolean();
        assert!(cards.iter().all(|c| (1..=1_000).contains(c)));
        let own = cards
            .iter()
            .zip(devices.iter())
            .filter(|&(&c, &d)| d / 4 == c)
            .count();
        let strange = devices.iter().filter(|&&d| d >= 1_001 * 4).count();
        // Expected: 31/32 = 96.9% own devices and 1/32 = 3.1% strange ones, nothing else;
        // 8/256 = 3.1% failures. Six standard deviations of 100 000 draws are about 330.
        assert_eq!(own + strange, 100_000);
        assert!((2_800..3_450).contains(&strange), "{strange}");
        let failed = success.len() - success.true_count();
        assert!((2_800..3_450).contains(&failed), "{failed}");
        assert_eq!(success.null_count(), 0);
    }

    #[test]
    fn values_depend_only_on_the_event_index() {
        let settings = settings(10_000);
        let whole = all(&settings, 0, 1_000);
        let tail = all(&settings, 400, 600);
        assert_eq!(whole.slice(400, 600), tail);
        assert_eq!(whole.schema(), schema());
    }
}
