//! Kafka message decoding: how many messages per second one core turns into Arrow columns,
//! per format (JSON with declared columns, CSV, Avro), on one poll's worth of messages of one
//! partition, as the Kafka source decodes them. No broker: the messages are built in memory
//! before timing starts (the transactions generator's rows, written the way a producer would).
//!
//! Run with `cargo bench --bench kafka_decode`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::kafka_bench_input::{columns, records, transaction};
use sluice_connectors::kafka::format::{AvroOptions, CsvOptions};
use sluice_connectors::kafka::{FormatSpec, PayloadDecoder};

/// Messages per poll (the source's default batch is the job's `max_rows`; polls of a busy
/// partition hold thousands).
const MESSAGES: usize = 10_000;

const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Transaction", "fields": [
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "card_id", "type": "long"}, {"name": "merchant_id", "type": "long"},
    {"name": "amount_cents", "type": "long"}, {"name": "country", "type": "string"},
    {"name": "channel", "type": "string"}]}"#;

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
            let t = transaction(i);
            match format {
                "json" => t.json(),
                "csv" => format!(
                    "{},{},{},{},{},{}",
                    t.ts, t.card_id, t.merchant_id, t.amount_cents, t.country, t.channel
                )
                .into_bytes(),
                _ => {
                    let mut out = Vec::new();
                    for v in [t.ts, t.card_id, t.merchant_id, t.amount_cents] {
                        zigzag(&mut out, v);
                    }
                    for s in [t.country, t.channel] {
                        zigzag(&mut out, s.len() as i64);
                        out.extend_from_slice(s.as_bytes());
                    }
                    out
                }
            }
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
        let records = records(&payloads);
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
