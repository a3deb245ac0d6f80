//! Kafka message decoding: how many messages per second one core turns into Arrow columns,
//! per format (JSON with declared columns, CSV, Avro), on one poll's worth of messages of one
//! partition, as the Kafka source decodes them. No broker: the messages are built in memory
//! before timing starts (the transactions generator's rows, written the way a producer would).
//!
//! Run with `cargo bench --bench kafka_decode`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_connectors::kafka::format::{AvroOptions, CsvOptions};
use sluice_connectors::kafka::{FormatSpec, KafkaRecord, PayloadDecoder};
use sluice_connectors::{ColumnSpec, ColumnType};

/// Messages per poll (the source's default batch is the job's `max_rows`; polls of a busy
/// partition hold thousands).
const MESSAGES: usize = 10_000;

const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Transaction", "fields": [
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "card_id", "type": "long"}, {"name": "merchant_id", "type": "long"},
    {"name": "amount_cents", "type": "long"}, {"name": "country", "type": "string"},
    {"name": "channel", "type": "string"}]}"#;

/// A transaction like the generator's: (ts ms, card, merchant, cents, country, channel).
fn transaction(i: u64) -> (i64, i64, i64, i64, &'static str, &'static str) {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (
        1_767_225_600_000 + i as i64,
        (h % 10_000) as i64,
        ((h >> 20) % 1_000) as i64,
        ((h >> 32) % 50_000) as i64,
        ["US", "DE", "FR", "AU"][(h >> 50) as usize % 4],
        ["pos", "web", "app"][(h >> 54) as usize % 3],
    )
}

fn zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z & 0x7f) as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn payloads(format: &str) -> Vec<Vec<u8>> {
    (0..MESSAGES as u64)
        .map(|i| {
            let (ts, card, merchant, cents, country, channel) = transaction(i);
            match format {
                "json" => format!(
                    r#"{{"ts":{ts},"card_id":{card},"merchant_id":{merchant},"amount_cents":{cents},"country":"{country}","channel":"{channel}"}}"#
                )
                .into_bytes(),
                "csv" => format!("{ts},{card},{merchant},{cents},{country},{channel}").into_bytes(),
                _ => {
                    let mut out = Vec::new();
                    for v in [ts, card, merchant, cents] {
                        zigzag(&mut out, v);
                    }
                    for s in [country, channel] {
                        zigzag(&mut out, s.len() as i64);
                        out.extend_from_slice(s.as_bytes());
                    }
                    out
                }
            }
        })
        .collect()
}

fn columns() -> Vec<ColumnSpec> {
    [
        ("ts", ColumnType::Timestamp),
        ("card_id", ColumnType::Int64),
        ("merchant_id", ColumnType::Int64),
        ("amount_cents", ColumnType::Int64),
        ("country", ColumnType::String),
        ("channel", ColumnType::String),
    ]
    .into_iter()
    .map(|(name, column_type)| ColumnSpec {
        name: name.into(),
        column_type,
    })
    .collect()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("kafka_decode");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    for name in ["json", "csv", "avro"] {
        let (format, columns) = match name {
            "json" => (FormatSpec::Json, columns()),
            "csv" => (FormatSpec::Csv(CsvOptions::default()), columns()),
            _ => (
                FormatSpec::Avro(AvroOptions {
                    schema: Some(AVRO_SCHEMA.into()),
                    confluent: Some(false),
                    ..AvroOptions::default()
                }),
                Vec::new(),
            ),
        };
        let decoder =
            PayloadDecoder::new(&format, &columns, &[], &[], Path::new(".")).expect("decoder");
        let payloads = payloads(name);
        let records: Vec<KafkaRecord<'_>> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| KafkaRecord {
                topic: "transactions",
                partition: 0,
                offset: i as i64,
                payload: Some(p),
                ..KafkaRecord::default()
            })
            .collect();
        let check = decoder.decode(&records).expect("decode");
        assert_eq!(
            check.batch.num_rows(),
            MESSAGES,
            "{name}: every message a row"
        );
        assert!(
            check.dead_letters.is_empty(),
            "{name}: {:?}",
            check.dead_letters.first()
        );
        group.bench_function(name, |b| {
            b.iter(|| black_box(decoder.decode(black_box(&records)).expect("decode")))
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
