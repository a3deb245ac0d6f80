//! The input of the Kafka decoding benchmarks, shared by `benches/kafka_decode.rs` (criterion)
//! and `sluice bench --workloads kafka`: card transactions as a producer would write them,
//! and the columns a job declares for them.

use sluice_connectors::kafka::KafkaRecord;
use sluice_connectors::{ColumnSpec, ColumnType};

/// One transaction: event time (epoch ms), card, merchant, amount, country, channel.
#[derive(Debug, Clone, Copy)]
pub struct Transaction {
    pub ts: i64,
    pub card_id: i64,
    pub merchant_id: i64,
    pub amount_cents: i64,
    pub country: &'static str,
    pub channel: &'static str,
}

/// Transaction `i`: a millisecond apart from 2026-01-01T00:00:00Z, 10,000 cards, 1,000
/// merchants, amounts below 50,000, four countries and three channels.
pub fn transaction(i: u64) -> Transaction {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Transaction {
        ts: 1_767_225_600_000 + i as i64,
        card_id: (h % 10_000) as i64,
        merchant_id: ((h >> 20) % 1_000) as i64,
        amount_cents: ((h >> 32) % 50_000) as i64,
        country: ["US", "DE", "FR", "AU"][(h >> 50) as usize % 4],
        channel: ["pos", "web", "app"][(h >> 54) as usize % 3],
    }
}

impl Transaction {
    /// The transaction as the Kafka sink writes a row: a JSON object, the time as RFC 3339.
    pub fn json(&self) -> Vec<u8> {
        let ms = self.ts - 1_767_225_600_000;
        format!(
            r#"{{"ts":"2026-01-01T{:02}:{:02}:{:02}.{:03}Z","card_id":{},"merchant_id":{},"amount_cents":{},"country":"{}","channel":"{}"}}"#,
            ms / 3_600_000 % 24,
            ms / 60_000 % 60,
            ms / 1_000 % 60,
            ms % 1_000,
            self.card_id,
            self.merchant_id,
            self.amount_cents,
            self.country,
            self.channel
        )
        .into_bytes()
    }
}

/// The columns a job declares for the transactions (`ts` a timestamp).
pub fn columns() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec::new("ts", ColumnType::Timestamp),
        ColumnSpec::new("card_id", ColumnType::Int64),
        ColumnSpec::new("merchant_id", ColumnType::Int64),
        ColumnSpec::new("amount_cents", ColumnType::Int64),
        ColumnSpec::new("country", ColumnType::String),
        ColumnSpec::new("channel", ColumnType::String),
    ]
}

/// `payloads` as the messages of one poll of partition 0, offsets from 0.
pub fn records(payloads: &[Vec<u8>]) -> Vec<KafkaRecord<'_>> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| KafkaRecord {
            topic: "transactions",
            offset: i as i64,
            payload: Some(p),
            ..KafkaRecord::default()
        })
        .collect()
}
