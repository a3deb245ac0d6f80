//! Metadata columns: `metadata = ["timestamp", "key", "partition", "offset", "topic"]` adds
//! `kafka_timestamp`, `kafka_key`, ... after the payload's columns (as Flink's METADATA
//! columns), so that event time can come from the message timestamp.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field};
use serde::Deserialize;
use sluice_engine::{Error, Result};

use crate::kafka::KafkaRecord;
use crate::spec::timestamp_type;

/// A message property a job can read as a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetadataColumn {
    /// `kafka_timestamp`: the message timestamp (null when the message has none).
    Timestamp,
    /// `kafka_key`: the key as text (null when absent or not UTF-8).
    Key,
    /// `kafka_partition`.
    Partition,
    /// `kafka_offset`.
    Offset,
    /// `kafka_topic`.
    Topic,
}

impl MetadataColumn {
    /// The column's name.
    pub fn name(self) -> &'static str {
        match self {
            MetadataColumn::Timestamp => "kafka_timestamp",
            MetadataColumn::Key => "kafka_key",
            MetadataColumn::Partition => "kafka_partition",
            MetadataColumn::Offset => "kafka_offset",
            MetadataColumn::Topic => "kafka_topic",
        }
    }

    fn field(self) -> Field {
        let data_type = match self {
            MetadataColumn::Timestamp => timestamp_type(),
            MetadataColumn::Key | MetadataColumn::Topic => DataType::Utf8,
            MetadataColumn::Partition => DataType::Int32,
            MetadataColumn::Offset => DataType::Int64,
        };
        let nullable = matches!(self, MetadataColumn::Timestamp | MetadataColumn::Key);
        Field::new(self.name(), data_type, nullable)
    }

    /// This column for every one of `records`.
    pub(super) fn values(self, records: &[KafkaRecord<'_>]) -> Result<ArrayRef> {
        Ok(match self {
            MetadataColumn::Timestamp => Arc::new(
                TimestampMillisecondArray::from_iter(records.iter().map(|r| r.timestamp))
                    .with_timezone("UTC"),
            ),
            MetadataColumn::Key => Arc::new(StringArray::from_iter(
                records
                    .iter()
                    .map(|r| r.key.and_then(|k| std::str::from_utf8(k).ok())),
            )),
            MetadataColumn::Partition => Arc::new(Int32Array::from_iter_values(
                records.iter().map(|r| r.partition),
            )),
            MetadataColumn::Offset => Arc::new(Int64Array::from_iter_values(
                records.iter().map(|r| r.offset),
            )),
            MetadataColumn::Topic => Arc::new(StringArray::from_iter_values(
                records.iter().map(|r| r.topic),
            )),
        })
    }
}

/// The fields of `metadata`, refusing one asked for twice or named like a payload column.
pub(super) fn fields(metadata: &[MetadataColumn], payload: &[Field]) -> Result<Vec<Field>> {
    let mut out: Vec<Field> = Vec::with_capacity(metadata.len());
    for column in metadata {
        let name = column.name();
        if out.iter().chain(payload).any(|f| f.name() == name) {
            return Err(Error::config(
                "source.metadata",
                format!("the column `{name}` would appear twice"),
            ));
        }
        out.push(column.field());
    }
    Ok(out)
}
