//! `format = "raw"`: a message's key and payload as UTF-8 text columns `key` and `value`.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field};
use sluice_engine::{Error, Result};

use super::Payload;
use crate::kafka::KafkaRecord;
use crate::spec::ColumnSpec;

/// `key` and `value`, both nullable text; raw messages have no declared columns.
pub(super) fn fields(columns: &[ColumnSpec]) -> Result<Vec<Field>> {
    if let Some(column) = columns.first() {
        return Err(Error::config(
            "source.columns",
            format!(
                "format \"raw\" has the columns key and value; `{}` cannot be declared",
                column.name
            ),
        ));
    }
    Ok(vec![
        Field::new("key", DataType::Utf8, true),
        Field::new("value", DataType::Utf8, true),
    ])
}

/// Every message whose key and payload are UTF-8 (or absent) is a row.
pub(super) fn decode(records: &[KafkaRecord<'_>]) -> Result<Payload> {
    let mut rows = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    let mut keys = Vec::with_capacity(records.len());
    let mut values = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        let key = record.key.map(std::str::from_utf8).transpose();
        let value = record.payload.map(std::str::from_utf8).transpose();
        match (key, value) {
            (Ok(key), Ok(value)) => {
                rows.push(i);
                keys.push(key);
                values.push(value);
            }
            (Err(e), _) => rejected.push((i, format!("the key is not UTF-8 text: {e}"))),
            (_, Err(e)) => rejected.push((i, format!("the payload is not UTF-8 text: {e}"))),
        }
    }
    Ok(Payload {
        columns: vec![
            Arc::new(StringArray::from(keys)),
            Arc::new(StringArray::from(values)),
        ],
        rows,
        rejected,
    })
}
