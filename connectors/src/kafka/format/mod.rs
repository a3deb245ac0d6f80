//! How Kafka message payloads become Arrow columns: `format = "json" | "csv" | "avro" | "raw"`,
//! then the metadata columns a job asks for (`metadata = ["timestamp", "partition", ...]`).
//!
//! A message that does not decode costs only itself: it becomes a dead letter located by
//! partition and offset, with the payload as text (base64 when it is not UTF-8). JSON, CSV and
//! Avro messages are pushed one by one into arrow's columnar decoders ([`runs`]).

mod avro;
mod csv;
mod framing;
mod json;
mod metadata;
mod raw;
mod runs;
mod spec;
#[cfg(test)]
mod testing;

use std::path::Path;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Schema, SchemaRef};
use base64::Engine;
use sluice_engine::source::{DeadLetter, Location, Locations, SourceBatch};
use sluice_engine::{Error, Result};

pub use metadata::MetadataColumn;
pub use spec::{AvroOptions, CsvOptions, FormatSpec};

use super::KafkaRecord;
use crate::spec::ColumnSpec;

/// The payload columns of a batch of messages, and why each rejected message was rejected.
struct Payload {
    columns: Vec<ArrayRef>,
    /// Index in the input of each decoded row's message, ascending.
    rows: Vec<usize>,
    /// (index in the input, reason) of each message that did not decode, ascending.
    rejected: Vec<(usize, String)>,
}

/// A format ready to decode: its options checked, its columns known.
#[derive(Debug)]
enum Messages {
    Raw,
    Json(json::JsonMessages),
    Csv(csv::CsvMessages),
    Avro(Box<avro::AvroMessages>),
}

/// Decodes messages of one format into batches of one schema.
#[derive(Debug)]
pub struct PayloadDecoder {
    messages: Messages,
    metadata: Vec<MetadataColumn>,
    schema: SchemaRef,
}

impl PayloadDecoder {
    /// A decoder of `format` with the declared `columns` (typed as declared) and then the
    /// `metadata` columns. `sample` holds messages read before any data moves, for formats
    /// that infer undeclared columns or the framing; `base_dir` resolves schema files. Fails
    /// naming the setting when the format's options or the columns do not fit.
    pub fn new(
        format: &FormatSpec,
        columns: &[ColumnSpec],
        metadata: &[MetadataColumn],
        sample: &[KafkaRecord<'_>],
        base_dir: &Path,
    ) -> Result<Self> {
        let (messages, payload_fields) = match format {
            FormatSpec::Raw => (Messages::Raw, raw::fields(columns)?),
            FormatSpec::Json => {
                let fields = json::fields(columns, sample)?;
                (Messages::Json(json::JsonMessages::new(&fields)), fields)
            }
            FormatSpec::Csv(options) => {
                let fields = csv::fields(columns)?;
                let messages = csv::CsvMessages::new(&fields, options)?;
                (Messages::Csv(messages), fields)
            }
            FormatSpec::Avro(options) => {
                let messages = avro::AvroMessages::new(options, columns, sample, base_dir)?;
                let fields = messages.fields();
                (Messages::Avro(Box::new(messages)), fields)
            }
        };
        let mut fields = payload_fields.clone();
        fields.extend(metadata::fields(metadata, &payload_fields)?);
        Ok(PayloadDecoder {
            messages,
            metadata: metadata.to_vec(),
            schema: SchemaRef::new(Schema::new(fields)),
        })
    }

    /// Whether `format` with these declared columns needs a sample of messages (the source
    /// then reads some before any data moves): JSON without declared columns, to infer them;
    /// Avro without `confluent`, to tell the framing.
    pub fn needs_sample(format: &FormatSpec, columns: &[ColumnSpec]) -> bool {
        match format {
            FormatSpec::Raw | FormatSpec::Csv(_) => false,
            FormatSpec::Json => columns.is_empty(),
            FormatSpec::Avro(options) => options.confluent.is_none() && options.schema_id.is_none(),
        }
    }

    /// The columns of every batch: the payload's, then the metadata columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Decodes `records` (all of one partition, in offset order) into one batch located by
    /// offset; messages that do not decode are dead letters.
    pub fn decode(&self, records: &[KafkaRecord<'_>]) -> Result<SourceBatch> {
        let payload = match &self.messages {
            Messages::Raw => raw::decode(records)?,
            Messages::Json(json) => runs::decode(json, records)?,
            Messages::Csv(csv) => runs::decode(csv, records)?,
            Messages::Avro(avro) => runs::decode(avro.as_ref(), records)?,
        };
        let indices = UInt32Array::from_iter_values(payload.rows.iter().map(|&i| i as u32));
        let mut columns = payload.columns;
        for column in &self.metadata {
            let all = column.values(records)?;
            columns.push(
                take(all.as_ref(), &indices, None)
                    .map_err(Error::arrow("gathering Kafka metadata columns"))?,
            );
        }
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(Error::arrow("building a batch of Kafka messages"))?;
        let offsets: Vec<u64> = payload
            .rows
            .iter()
            .map(|&i| records[i].offset.max(0) as u64)
            .collect();
        let dead_letters = payload
            .rejected
            .into_iter()
            .map(|(i, reason)| dead_letter(&records[i], reason))
            .collect();
        Ok(SourceBatch {
            batch,
            dead_letters,
            locations: Some(Locations::offsets(offsets)),
            raw: None,
            watermark: None,
        })
    }
}

/// Said after the reason of a dead letter whose raw text is base64.
const BASE64_NOTE: &str = "(raw: the payload as base64, it is not UTF-8)";

/// The dead letter of a message: its partition and offset, why, and its payload as text (or
/// base64, said in the reason, when the payload is not UTF-8).
pub(crate) fn dead_letter(record: &KafkaRecord<'_>, reason: String) -> DeadLetter {
    let payload = record.payload.unwrap_or_default();
    let (raw, reason) = match std::str::from_utf8(payload) {
        Ok(text) => (text.to_string(), reason),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(payload),
            format!("{reason} {BASE64_NOTE}"),
        ),
    };
    DeadLetter {
        source: record.source(),
        location: Location::Offset(record.offset.max(0) as u64),
        reason,
        raw,
    }
}

/// Why a payload with nothing but whitespace is not a record.
const EMPTY_PAYLOAD: &str = "the payload is empty";

/// A payload as text, or why it is not UTF-8 (the byte, and the text before it).
fn payload_text(payload: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(payload).map_err(|e| {
        let valid = String::from_utf8_lossy(&payload[..e.valid_up_to()]);
        format!(
            "not valid UTF-8: byte {} of the payload (after `{valid}`)",
            e.valid_up_to() + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::TimestampMillisecondType;

    fn record<'a>(
        offset: i64,
        key: Option<&'a [u8]>,
        payload: Option<&'a [u8]>,
    ) -> KafkaRecord<'a> {
        KafkaRecord {
            topic: "payments",
            partition: 3,
            offset,
            timestamp: Some(1_700_000_000_000 + offset),
            key,
            payload,
            headers: Vec::new(),
        }
    }

    #[test]
    fn raw_messages_are_key_and_value_then_metadata_and_binary_ones_dead_letters() {
        let metadata = [MetadataColumn::Timestamp, MetadataColumn::Offset];
        let decoder = PayloadDecoder::new(&FormatSpec::Raw, &[], &metadata, &[], Path::new("."))
            .expect("decoder");
        let schema = decoder.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["key", "value", "kafka_timestamp", "kafka_offset"]);
        let records = [
            record(10, Some(b"k1"), Some(b"hello")),
            record(11, None, Some(&[0xff, 0xfe])),
            record(12, Some(b"k3"), None),
        ];
        let read = decoder.decode(&records).expect("decode");
        let batch = &read.batch;
        assert_eq!(batch.num_rows(), 2);
        let values: Vec<Option<&str>> = batch.column(1).as_string::<i32>().iter().collect();
        assert_eq!(values, [Some("hello"), None]);
        let times = batch.column(2).as_primitive::<TimestampMillisecondType>();
        assert_eq!(
            times.values().to_vec(),
            [1_700_000_000_010, 1_700_000_000_012]
        );
        let offsets = batch
            .column(3)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!(offsets.values().to_vec(), [10, 12]);
        assert_eq!(read.locations.as_deref(), Some(&[10u64, 12][..]));
        assert_eq!(read.dead_letters.len(), 1);
        let dead = &read.dead_letters[0];
        assert_eq!(dead.source, "payments/3");
        assert_eq!(dead.location, Location::Offset(11));
        assert_eq!(dead.raw, "//4=", "base64 of ff fe");
        assert!(
            dead.reason.contains("not UTF-8") && dead.reason.contains("base64"),
            "{}",
            dead.reason
        );
    }

    #[test]
    fn an_empty_poll_is_an_empty_batch_of_the_schema() {
        let columns = [ColumnSpec {
            name: "amount".into(),
            column_type: crate::spec::ColumnType::Float64,
        }];
        let avro = FormatSpec::Avro(AvroOptions {
            schema: Some(
                r#"{"type": "record", "name": "P", "fields": [{"name": "amount", "type": "double"}]}"#
                    .into(),
            ),
            ..AvroOptions::default()
        });
        let formats = [
            (FormatSpec::Raw, &[][..]),
            (FormatSpec::Json, &columns[..]),
            (FormatSpec::Csv(CsvOptions::default()), &columns[..]),
            (avro, &[][..]),
        ];
        for (format, columns) in formats {
            let metadata = [MetadataColumn::Partition];
            let decoder = PayloadDecoder::new(&format, columns, &metadata, &[], Path::new("."))
                .expect("decoder");
            let read = decoder.decode(&[]).expect("decode");
            assert_eq!(read.batch.num_rows(), 0, "{format:?}");
            assert_eq!(read.batch.schema(), decoder.schema());
            assert!(read.dead_letters.is_empty());
        }
    }

    #[test]
    fn a_decoder_can_be_shared_by_reader_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<PayloadDecoder>();
    }

    #[test]
    fn a_metadata_column_twice_or_a_declared_raw_column_is_refused() {
        let twice = [MetadataColumn::Offset, MetadataColumn::Offset];
        let err = PayloadDecoder::new(&FormatSpec::Raw, &[], &twice, &[], Path::new("."))
            .expect_err("twice");
        assert!(err.to_string().starts_with("source.metadata:"), "{err}");
        let declared = [ColumnSpec {
            name: "amount".into(),
            column_type: crate::spec::ColumnType::Int64,
        }];
        let err = PayloadDecoder::new(&FormatSpec::Raw, &declared, &[], &[], Path::new("."))
            .expect_err("declared");
        assert!(
            err.to_string().contains("`amount` cannot be declared"),
            "{err}"
        );
    }
}
