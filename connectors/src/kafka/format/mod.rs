//! How Kafka message payloads become Arrow columns: `format = "json" | "csv" | "avro" | "raw"`,
//! then the metadata columns a job asks for (`metadata = ["timestamp", "partition", ...]`).
//!
//! A message that does not decode costs only itself: it becomes a dead letter located by
//! partition and offset, with the payload as text (base64 when it is not UTF-8).

mod metadata;
mod raw;

use std::path::Path;

use arrow::array::{ArrayRef, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Field, Schema, SchemaRef};
use base64::Engine;
use serde::Deserialize;
use sluice_engine::source::{DeadLetter, Location, Locations, SourceBatch};
use sluice_engine::{Error, Result};

pub use metadata::MetadataColumn;

use super::KafkaRecord;
use crate::spec::ColumnSpec;

/// `format` in a Kafka `[source]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatSpec {
    /// The key and the payload as text columns `key` and `value`.
    Raw,
}

/// The payload columns of a batch of messages, and why each rejected message was rejected.
struct Payload {
    columns: Vec<ArrayRef>,
    /// Index in the input of each decoded row's message, ascending.
    rows: Vec<usize>,
    /// (index in the input, reason) of each message that did not decode.
    rejected: Vec<(usize, String)>,
}

/// Decodes messages of one format into batches of one schema.
#[derive(Debug)]
pub struct PayloadDecoder {
    format: FormatSpec,
    metadata: Vec<MetadataColumn>,
    payload_fields: Vec<Field>,
    schema: SchemaRef,
}

impl PayloadDecoder {
    /// A decoder of `format` with the declared `columns` (typed as declared) and then the
    /// `metadata` columns. `sample` holds messages read before any data moves, for formats
    /// that infer undeclared columns; `base_dir` resolves schema files. Fails naming the
    /// setting when the format and the columns do not fit together.
    pub fn new(
        format: &FormatSpec,
        columns: &[ColumnSpec],
        metadata: &[MetadataColumn],
        sample: &[KafkaRecord<'_>],
        base_dir: &Path,
    ) -> Result<Self> {
        let _ = (sample, base_dir);
        let payload_fields = match format {
            FormatSpec::Raw => raw::fields(columns)?,
        };
        let mut fields = payload_fields.clone();
        fields.extend(metadata::fields(metadata, &payload_fields)?);
        Ok(PayloadDecoder {
            format: format.clone(),
            metadata: metadata.to_vec(),
            payload_fields,
            schema: SchemaRef::new(Schema::new(fields)),
        })
    }

    /// Whether `format` with these declared columns needs a sample of messages to know its
    /// columns (the source then reads some before any data moves).
    pub fn needs_sample(format: &FormatSpec, columns: &[ColumnSpec]) -> bool {
        let _ = columns;
        match format {
            FormatSpec::Raw => false,
        }
    }

    /// The columns of every batch: the payload's, then the metadata columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Decodes `records` (all of one partition, in offset order) into one batch located by
    /// offset; messages that do not decode are dead letters.
    pub fn decode(&self, records: &[KafkaRecord<'_>]) -> Result<SourceBatch> {
        let payload = match self.format {
            FormatSpec::Raw => raw::decode(records, &self.payload_fields)?,
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
        })
    }
}

/// The dead letter of a message: its partition and offset, why, and its payload as text (or
/// base64, said in the reason, when the payload is not UTF-8).
pub(crate) fn dead_letter(record: &KafkaRecord<'_>, reason: String) -> DeadLetter {
    let payload = record.payload.unwrap_or_default();
    let (raw, reason) = match std::str::from_utf8(payload) {
        Ok(text) => (text.to_string(), reason),
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(payload),
            format!("{reason} (raw: the payload as base64, it is not UTF-8)"),
        ),
    };
    DeadLetter {
        source: record.source(),
        location: Location::Offset(record.offset.max(0) as u64),
        reason,
        raw,
    }
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
