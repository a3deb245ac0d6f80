//! One input of a stream join: its columns, keys and event time, the rows it buffers (host)
//! and the index over them (backend).

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, SchemaRef};

use super::rows::RowStore;
use crate::backend::JoinBuffer;
use crate::error::{Error, Result};
use crate::event_time::event_time_values;
use crate::keys::KeyEncoder;

/// One side of the join.
#[derive(Debug)]
pub(super) struct JoinSide {
    pub name: String,
    pub schema: SchemaRef,
    pub keys: Vec<usize>,
    /// The type each key column is cast to before encoding (the left side's key types).
    pub key_types: Vec<DataType>,
    pub time: usize,
    pub rows: RowStore,
    /// The backend's index over `rows` (a window join's left side needs none).
    pub buffer: Option<Box<dyn JoinBuffer>>,
}

/// What arrived from one side in a micro-batch, split by what happens to it.
#[derive(Debug)]
pub(super) struct Arrival {
    /// On-time rows that take part (with a valid key, or any key when null keys are kept).
    pub rows: RecordBatch,
    pub ids: Vec<u64>,
    pub valid: Vec<bool>,
    pub ts: Vec<i64>,
    /// Rows older than the on-time bound.
    pub late: Option<RecordBatch>,
}

impl JoinSide {
    /// Splits `batch`: rows before `on_time_from` are late; of the rest, rows with a null in
    /// a key column are dropped unless `keep_null_keys` (they can never match).
    pub(super) fn arrive(
        &self,
        encoder: &mut KeyEncoder,
        batch: &RecordBatch,
        on_time_from: i64,
        keep_null_keys: bool,
    ) -> Result<Arrival> {
        let ts = event_time_values(batch.column(self.time))?;
        let on_time: Vec<bool> = ts.iter().map(|&t| t >= on_time_from).collect();
        let keys = self.key_columns(batch)?;
        let valid: Vec<bool> = if keys.iter().all(|c| c.null_count() == 0) {
            vec![true; batch.num_rows()]
        } else {
            (0..batch.num_rows())
                .map(|r| keys.iter().all(|c| c.is_valid(r)))
                .collect()
        };
        let keep: Vec<bool> = on_time
            .iter()
            .zip(&valid)
            .map(|(&t, &v)| t && (v || keep_null_keys))
            .collect();
        let late = if on_time.iter().all(|&t| t) {
            None
        } else {
            let mask = BooleanArray::from(on_time.iter().map(|t| !t).collect::<Vec<_>>());
            Some(filter_record_batch(batch, &mask).map_err(Error::arrow("splitting late rows"))?)
        };
        let (rows, keys, valid, ts) = if keep.iter().all(|&k| k) {
            (batch.clone(), keys, valid, ts.to_vec())
        } else {
            let mask = BooleanArray::from(keep.clone());
            let rows =
                filter_record_batch(batch, &mask).map_err(Error::arrow("splitting join rows"))?;
            let keys = self.key_columns(&rows)?;
            let valid = valid
                .iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| *v);
            let ts = ts.iter().zip(&keep).filter(|(_, k)| **k).map(|(t, _)| *t);
            (rows, keys, valid.collect(), ts.collect())
        };
        let mut ids = Vec::with_capacity(rows.num_rows());
        encoder.encode_columns(&keys, &mut ids)?;
        Ok(Arrival {
            rows,
            ids,
            valid,
            ts,
            late,
        })
    }

    /// The key columns of `batch`, cast to the join's key types.
    fn key_columns(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        self.keys
            .iter()
            .zip(&self.key_types)
            .map(|(&k, t)| {
                let column = batch.column(k);
                if column.data_type() == t {
                    Ok(column.clone())
                } else {
                    cast(column, t).map_err(Error::arrow("casting a join key"))
                }
            })
            .collect()
    }

    /// Buffers arrived rows (with valid keys) in the row store and the backend's index.
    pub(super) fn store(&mut self, arrival: Arrival) -> Result<()> {
        if let Some(buffer) = &mut self.buffer {
            buffer.insert(&arrival.ids, &arrival.ts)?;
        }
        self.rows
            .push(arrival.rows, arrival.ids, arrival.valid, arrival.ts);
        if let Some(buffer) = &self.buffer
            && buffer.next_handle() != self.rows.next_handle()
        {
            return Err(Error::Internal(format!(
                "join side {}: the backend holds {} rows, the host {}",
                self.name,
                buffer.next_handle(),
                self.rows.next_handle()
            )));
        }
        Ok(())
    }

    /// Forgets rows older than `before` (no later probe can match them).
    pub(super) fn expire(&mut self, before: i64) -> Result<()> {
        if let Some(buffer) = &mut self.buffer {
            buffer.expire(before)?;
        }
        self.rows.expire(before);
        Ok(())
    }
}
