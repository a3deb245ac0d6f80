//! Turns the key columns of a batch into dense `u64` key ids, and ids back into key columns.
//!
//! Backends aggregate on `u64` ids only. A single integer key column is its own id (the value
//! widened to i64; `i64::MIN` stands for a null key). Any other key (strings, several columns,
//! unsigned 64-bit) goes through a dictionary over Arrow's row format: ids are assigned in order
//! of first appearance and never merge two different keys. The dictionary keeps every key it
//! has seen; its size is the number of distinct keys in the job.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::{Error, Result};

/// The id that stands for a null integer key.
const NULL_INT_KEY: u64 = i64::MIN as u64;

/// Encodes and decodes the key columns of one operator.
#[derive(Debug)]
pub struct KeyEncoder {
    indices: Vec<usize>,
    fields: Vec<Field>,
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    /// One integer column: the id is the value.
    Int,
    /// Anything else: ids index a dictionary of Arrow rows.
    Dictionary {
        converter: RowConverter,
        rows: Rows,
        ids: HashMap<Box<[u8]>, u64, ahash::RandomState>,
    },
}

impl KeyEncoder {
    /// Prepares an encoder for `keys` (column names) of `schema`; `setting` names the job key.
    pub fn new(schema: &Schema, keys: &[String], setting: &str) -> Result<Self> {
        if keys.is_empty() {
            return Err(Error::config(
                setting,
                "at least one key column is required",
            ));
        }
        let mut indices = Vec::with_capacity(keys.len());
        let mut fields = Vec::with_capacity(keys.len());
        for (i, name) in keys.iter().enumerate() {
            let index = schema.index_of(name).map_err(|_| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::config(
                    format!("{setting}[{i}]"),
                    format!(
                        "unknown key column `{name}` (available: {})",
                        names.join(", ")
                    ),
                )
            })?;
            let field = schema.field(index);
            if RowConverter::new(vec![SortField::new(field.data_type().clone())]).is_err() {
                return Err(Error::config(
                    format!("{setting}[{i}]"),
                    format!(
                        "key column `{name}` has type {}, which cannot be a key",
                        field.data_type()
                    ),
                ));
            }
            indices.push(index);
            fields.push(field.as_ref().clone().with_nullable(true));
        }
        use DataType::*;
        let single_int = fields.len() == 1
            && matches!(
                fields[0].data_type(),
                Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32
            );
        let mode = if single_int {
            Mode::Int
        } else {
            let sort_fields = fields
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect();
            let converter =
                RowConverter::new(sort_fields).map_err(Error::arrow("preparing key encoding"))?;
            let rows = converter.empty_rows(0, 0);
            Mode::Dictionary {
                converter,
                rows,
                ids: HashMap::default(),
            }
        };
        Ok(KeyEncoder {
            indices,
            fields,
            mode,
        })
    }

    /// The key fields as they appear in the output (always nullable).
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The ids of `batch` without copying, where they are the key column's own values: one
    /// `Int64` key column without nulls. `None` means use [`KeyEncoder::encode`].
    pub fn borrow<'b>(&self, batch: &'b RecordBatch) -> Result<Option<&'b [u64]>> {
        use rayon::prelude::*;
        let Mode::Int = self.mode else {
            return Ok(None);
        };
        let Some(values) = batch
            .column(self.indices[0])
            .as_primitive_opt::<Int64Type>()
        else {
            return Ok(None);
        };
        if values.null_count() > 0 {
            return Ok(None);
        }
        let ids: &[u64] = values.values().inner().typed_data();
        if ids
            .par_iter()
            .with_min_len(1 << 16)
            .any(|&v| v == NULL_INT_KEY)
        {
            return Err(reserved_key(&self.fields[0]));
        }
        Ok(Some(ids))
    }

    /// Writes one id per row of `batch` into `out` (cleared first).
    pub fn encode(&mut self, batch: &RecordBatch, out: &mut Vec<u64>) -> Result<()> {
        let columns: Vec<ArrayRef> = self
            .indices
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        self.encode_columns(&columns, out)
    }

    /// As [`KeyEncoder::encode`], for the key columns themselves (in key order, of the key
    /// types): another table's keys can share this encoder's ids (a join's build side).
    pub fn encode_columns(&mut self, columns: &[ArrayRef], out: &mut Vec<u64>) -> Result<()> {
        out.clear();
        match &mut self.mode {
            Mode::Int => {
                let widened = cast(&columns[0], &DataType::Int64)
                    .map_err(Error::arrow("widening the key column"))?;
                let values = widened.as_primitive::<Int64Type>();
                if values.null_count() == 0 {
                    if values.values().iter().any(|&v| v as u64 == NULL_INT_KEY) {
                        return Err(reserved_key(&self.fields[0]));
                    }
                    out.extend(values.values().iter().map(|&v| v as u64));
                } else {
                    for v in values.iter() {
                        match v {
                            Some(v) if v as u64 == NULL_INT_KEY => {
                                return Err(reserved_key(&self.fields[0]));
                            }
                            Some(v) => out.push(v as u64),
                            None => out.push(NULL_INT_KEY),
                        }
                    }
                }
            }
            Mode::Dictionary {
                converter,
                rows,
                ids,
            } => {
                let batch_rows = converter
                    .convert_columns(columns)
                    .map_err(Error::arrow("encoding keys"))?;
                out.reserve(batch_rows.num_rows());
                for row in batch_rows.iter() {
                    let bytes = row.as_ref();
                    let id = match ids.get(bytes) {
                        Some(&id) => id,
                        None => {
                            let id = ids.len() as u64;
                            ids.insert(bytes.into(), id);
                            rows.push(row);
                            id
                        }
                    };
                    out.push(id);
                }
            }
        }
        Ok(())
    }

    /// The id of each row's key as already encoded, and whether the row can match at all:
    /// not when a key column is null (null never equals anything) or, with a dictionary, when
    /// the key was never encoded. Nothing is added to the dictionary (a join's probe side).
    pub fn lookup_columns(&self, columns: &[ArrayRef]) -> Result<(Vec<u64>, Vec<bool>)> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut valid: Vec<bool> = (0..rows)
            .map(|r| columns.iter().all(|c| c.is_valid(r)))
            .collect();
        let ids = match &self.mode {
            Mode::Int => {
                let widened = cast(&columns[0], &DataType::Int64)
                    .map_err(Error::arrow("widening the key column"))?;
                let values = widened.as_primitive::<Int64Type>();
                values.values().iter().map(|&v| v as u64).collect()
            }
            Mode::Dictionary { converter, ids, .. } => {
                let probe = converter
                    .convert_columns(columns)
                    .map_err(Error::arrow("encoding keys"))?;
                probe
                    .iter()
                    .zip(valid.iter_mut())
                    .map(|(row, ok)| match ids.get(row.as_ref()) {
                        Some(&id) => id,
                        None => {
                            *ok = false;
                            0
                        }
                    })
                    .collect()
            }
        };
        Ok((ids, valid))
    }

    /// Rebuilds the key columns for `ids`, in order.
    pub fn decode(&self, ids: &[u64]) -> Result<Vec<ArrayRef>> {
        match &self.mode {
            Mode::Int => {
                let values: Int64Array = ids
                    .iter()
                    .map(|&id| (id != NULL_INT_KEY).then_some(id as i64))
                    .collect();
                let column = cast(&values, self.fields[0].data_type())
                    .map_err(Error::arrow("decoding keys"))?;
                Ok(vec![column])
            }
            Mode::Dictionary {
                converter, rows, ..
            } => {
                let mut selected = Vec::with_capacity(ids.len());
                for &id in ids {
                    let index = usize::try_from(id).ok().filter(|&i| i < rows.num_rows());
                    let index =
                        index.ok_or_else(|| Error::Internal(format!("unknown key id {id}")))?;
                    selected.push(rows.row(index));
                }
                converter
                    .convert_rows(selected)
                    .map_err(Error::arrow("decoding keys"))
            }
        }
    }
}

impl KeyEncoder {
    /// The dictionary's keys in id order, for a checkpoint (`None`: ids are the key values
    /// themselves and there is nothing to save).
    pub fn snapshot(&self) -> Result<Option<RecordBatch>> {
        let Mode::Dictionary { rows, .. } = &self.mode else {
            return Ok(None);
        };
        let ids: Vec<u64> = (0..rows.num_rows() as u64).collect();
        let columns = self.decode(&ids)?;
        let schema = Arc::new(Schema::new(self.fields.clone()));
        RecordBatch::try_new(schema, columns)
            .map(Some)
            .map_err(Error::arrow("saving the key dictionary"))
    }

    /// Loads a dictionary [`KeyEncoder::snapshot`] saved into this fresh encoder, so every
    /// key gets the id it had.
    pub fn restore(&mut self, keys: &RecordBatch) -> Result<()> {
        let Mode::Dictionary {
            converter,
            rows,
            ids,
        } = &mut self.mode
        else {
            return Err(Error::Internal(
                "a key dictionary was saved for integer keys".into(),
            ));
        };
        let saved = converter
            .convert_columns(keys.columns())
            .map_err(Error::arrow("restoring the key dictionary"))?;
        for row in saved.iter() {
            let id = ids.len() as u64;
            if ids.insert(row.as_ref().into(), id).is_some() {
                return Err(Error::Internal(
                    "the saved key dictionary repeats a key".into(),
                ));
            }
            rows.push(row);
        }
        Ok(())
    }
}

fn reserved_key(field: &Field) -> Error {
    Error::schema(
        field.name(),
        format!(
            "key value {} is reserved for null keys and cannot be used",
            i64::MIN
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int32Array, StringArray};
    use std::sync::Arc;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("batch")
    }

    #[test]
    fn integer_keys_are_their_own_ids_and_nulls_round_trip() {
        let b = batch(vec![(
            "card",
            Arc::new(Int32Array::from(vec![Some(7), None, Some(-3)])) as ArrayRef,
        )]);
        let mut enc = KeyEncoder::new(&b.schema(), &["card".into()], "keys").expect("encoder");
        let mut ids = Vec::new();
        enc.encode(&b, &mut ids).expect("encode");
        assert_eq!(ids[0], 7);
        assert_eq!(ids[2], (-3i64) as u64);
        assert_ne!(ids[1], ids[0]);
        let back = enc.decode(&ids).expect("decode");
        assert_eq!(
            back[0].as_primitive::<arrow::datatypes::Int32Type>(),
            &Int32Array::from(vec![Some(7), None, Some(-3)])
        );
    }

    #[test]
    fn string_and_multi_column_keys_never_merge() {
        let b = batch(vec![
            (
                "a",
                Arc::new(StringArray::from(vec![
                    Some("x"),
                    Some("x"),
                    None,
                    Some("x|y"),
                ])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(StringArray::from(vec![
                    Some("y|"),
                    Some("y|"),
                    Some(""),
                    None,
                ])) as ArrayRef,
            ),
        ]);
        let mut enc =
            KeyEncoder::new(&b.schema(), &["a".into(), "b".into()], "keys").expect("encoder");
        let mut ids = Vec::new();
        enc.encode(&b, &mut ids).expect("encode");
        assert_eq!(ids, vec![0, 0, 1, 2]);
        let back = enc.decode(&[2, 0]).expect("decode");
        assert_eq!(
            back[0].as_string::<i32>(),
            &StringArray::from(vec![Some("x|y"), Some("x")])
        );
        assert_eq!(
            back[1].as_string::<i32>(),
            &StringArray::from(vec![None, Some("y|")])
        );
    }

    #[test]
    fn unknown_key_column_lists_the_available_ones() {
        let b = batch(vec![(
            "card",
            Arc::new(Int32Array::from(vec![1])) as ArrayRef,
        )]);
        let err =
            KeyEncoder::new(&b.schema(), &["crd".into()], "operators[0].key").expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "operators[0].key[0]: unknown key column `crd` (available: card)"
        );
    }
}
