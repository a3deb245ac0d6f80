//! Operator state as a checkpoint holds it: named Arrow batches plus JSON metadata.
//!
//! An operator (and the backend under it) copies its state out between micro-batches as a
//! [`StateSnapshot`]; the runtime writes each batch as an Arrow IPC file and the metadata into
//! the checkpoint manifest, and hands the same snapshot back to a fresh operator on restart.
//! `format` names who wrote it (`cpu-window/1`, `gpu-window/1`), so state is only ever read by
//! the code that understands it.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The state of one operator (or of the backend state inside it).
#[derive(Debug, Clone, Default)]
pub struct StateSnapshot {
    /// Who wrote it and in which version of its layout (`cpu-window/1`).
    pub format: String,
    /// Small facts (watermarks fired, table sizes), stored as JSON.
    pub meta: serde_json::Value,
    /// Bulk state, one Arrow batch per name.
    pub batches: Vec<(String, RecordBatch)>,
}

/// A snapshot's description without its batches: what goes into the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateHeader {
    /// As [`StateSnapshot::format`].
    pub format: String,
    /// As [`StateSnapshot::meta`].
    pub meta: serde_json::Value,
    /// The names of the batches, in order.
    pub batches: Vec<String>,
}

impl StateSnapshot {
    /// A snapshot in `format` with `meta` and no batches yet.
    pub fn new(format: impl Into<String>, meta: serde_json::Value) -> Self {
        StateSnapshot {
            format: format.into(),
            meta,
            batches: Vec::new(),
        }
    }

    /// Adds a batch under `name`.
    pub fn with_batch(mut self, name: impl Into<String>, batch: RecordBatch) -> Self {
        self.batches.push((name.into(), batch));
        self
    }

    /// The batch called `name`, or an error naming it and the format.
    pub fn batch(&self, name: &str) -> Result<&RecordBatch> {
        self.batches
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b)
            .ok_or_else(|| Error::Internal(format!("{} state has no `{name}` batch", self.format)))
    }

    /// Fails unless this snapshot was written in `format`.
    pub fn expect_format(&self, format: &str) -> Result<()> {
        if self.format == format {
            Ok(())
        } else {
            Err(Error::Config {
                key: "checkpoint".into(),
                message: format!(
                    "the saved state was written as `{}` and this job reads `{format}` \
                     (was the backend changed? state does not move between backends)",
                    self.format
                ),
            })
        }
    }

    /// The header that goes into the manifest.
    pub fn header(&self) -> StateHeader {
        StateHeader {
            format: self.format.clone(),
            meta: self.meta.clone(),
            batches: self.batches.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    /// Reassembles a snapshot from its header and batches (in the header's order).
    pub fn from_parts(header: StateHeader, batches: Vec<RecordBatch>) -> Result<Self> {
        if header.batches.len() != batches.len() {
            return Err(Error::Internal(format!(
                "{} state lists {} batches, {} were read",
                header.format,
                header.batches.len(),
                batches.len()
            )));
        }
        Ok(StateSnapshot {
            format: header.format,
            meta: header.meta,
            batches: header.batches.into_iter().zip(batches).collect(),
        })
    }

    /// Adds `inner`'s batches under `prefix` (an operator's backend state inside the
    /// operator's); `inner.header()` goes into the caller's metadata, for [`Self::nested`].
    pub fn with_nested(mut self, prefix: &str, inner: StateSnapshot) -> Self {
        for (name, batch) in inner.batches {
            self.batches.push((format!("{prefix}{name}"), batch));
        }
        self
    }

    /// The snapshot that [`Self::with_nested`] put under `prefix`, described by `header`.
    pub fn nested(&self, prefix: &str, header: StateHeader) -> Result<StateSnapshot> {
        let batches = header
            .batches
            .iter()
            .map(|name| self.batch(&format!("{prefix}{name}")).cloned())
            .collect::<Result<Vec<_>>>()?;
        StateSnapshot::from_parts(header, batches)
    }

    /// Fields of `meta` parsed as `T`, naming the format when they do not fit.
    pub fn meta_as<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.meta.clone()).map_err(|e| {
            Error::Internal(format!("{} state metadata is unreadable: {e}", self.format))
        })
    }
}

/// One batch as an Arrow IPC file.
pub fn batch_to_ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut writer = FileWriter::try_new(&mut bytes, &batch.schema())
        .map_err(Error::arrow("writing state as Arrow IPC"))?;
    writer
        .write(batch)
        .map_err(Error::arrow("writing state as Arrow IPC"))?;
    writer
        .finish()
        .map_err(Error::arrow("writing state as Arrow IPC"))?;
    drop(writer);
    Ok(bytes)
}

/// Reads back a file written by [`batch_to_ipc`] (its batches concatenated).
pub fn batch_from_ipc(bytes: &[u8]) -> Result<RecordBatch> {
    let reader = FileReader::try_new(Cursor::new(bytes), None)
        .map_err(Error::arrow("reading state from Arrow IPC"))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::arrow("reading state from Arrow IPC"))?;
    arrow::compute::concat_batches(&schema, &batches)
        .map_err(Error::arrow("reading state from Arrow IPC"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn batches_round_trip_through_ipc_and_headers() {
        let batch = RecordBatch::try_from_iter([
            ("k", Arc::new(StringArray::from(vec![Some("a"), None])) as _),
            ("n", Arc::new(Int64Array::from(vec![1, -2])) as _),
        ])
        .expect("batch");
        let snapshot = StateSnapshot::new("test/1", serde_json::json!({"fired": 5}))
            .with_batch("groups", batch.clone());
        let bytes = batch_to_ipc(&batch).expect("ipc");
        let back = StateSnapshot::from_parts(
            snapshot.header(),
            vec![batch_from_ipc(&bytes).expect("read")],
        )
        .expect("parts");
        assert_eq!(back.batch("groups").expect("groups"), &batch);
        assert_eq!(back.meta["fired"], 5);
        assert!(back.batch("other").is_err());
        assert!(back.expect_format("test/1").is_ok());
        let wrong = back.expect_format("gpu-window/1").expect_err("format");
        assert!(wrong.to_string().contains("test/1"), "{wrong}");
    }
}
