//! One join side's buffered rows, kept on the host in arrival order and addressed by handle.
//!
//! Handles count stored rows from 0 over the side's life, in the order its `JoinBuffer` was
//! given them, so a probe's handles turn straight back into rows here. Batches leave from the
//! front once every row in them is older than the expiry bound.

use std::collections::VecDeque;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array, new_null_array};
use arrow::compute::{concat_batches, interleave, take};
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

/// Rows of one side with their key ids, validity and event times.
#[derive(Debug)]
pub(super) struct RowStore {
    schema: SchemaRef,
    batches: VecDeque<Stored>,
    /// The handle of the first row of the front batch.
    front: u64,
    next: u64,
    rows: usize,
}

/// One stored batch and what matching needs of its rows.
#[derive(Debug)]
pub(super) struct Stored {
    pub batch: RecordBatch,
    pub ids: Vec<u64>,
    /// Whether the row's key has no nulls (only such rows can match).
    pub valid: Vec<bool>,
    pub ts: Vec<i64>,
    pub first: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl RowStore {
    pub(super) fn new(schema: SchemaRef) -> Self {
        RowStore {
            schema,
            batches: VecDeque::new(),
            front: 0,
            next: 0,
            rows: 0,
        }
    }

    /// Stores `batch`; its rows take the next handles.
    pub(super) fn push(
        &mut self,
        batch: RecordBatch,
        ids: Vec<u64>,
        valid: Vec<bool>,
        ts: Vec<i64>,
    ) {
        if batch.num_rows() == 0 {
            return;
        }
        let rows = batch.num_rows();
        let min_ts = ts.iter().copied().min().unwrap_or(i64::MIN);
        let max_ts = ts.iter().copied().max().unwrap_or(i64::MAX);
        if self.batches.is_empty() {
            self.front = self.next;
        }
        self.batches.push_back(Stored {
            batch,
            ids,
            valid,
            ts,
            first: self.next,
            min_ts,
            max_ts,
        });
        self.next += rows as u64;
        self.rows += rows;
    }

    /// Forgets front batches whose rows are all older than `before`.
    pub(super) fn expire(&mut self, before: i64) {
        while self.batches.front().is_some_and(|b| b.max_ts < before) {
            if let Some(gone) = self.batches.pop_front() {
                self.rows -= gone.batch.num_rows();
                self.front = gone.first + gone.batch.num_rows() as u64;
            }
        }
    }

    /// The stored batches, oldest first.
    pub(super) fn batches(&self) -> impl Iterator<Item = &Stored> {
        self.batches.iter()
    }

    /// Rows held.
    pub(super) fn rows(&self) -> usize {
        self.rows
    }

    /// The handle the next stored row gets.
    pub(super) fn next_handle(&self) -> u64 {
        self.next
    }

    /// (batch, row) of each handle, in order; `None` (a row of nulls) stays `None`.
    pub(super) fn locate(
        &self,
        handles: impl ExactSizeIterator<Item = Option<u64>>,
    ) -> Result<Vec<Option<(usize, usize)>>> {
        let mut picks = Vec::with_capacity(handles.len());
        // Consecutive handles mostly fall in the same stored batch: try the last one first.
        let mut last: Option<(usize, u64, u64)> = None;
        for h in handles {
            let Some(h) = h else {
                picks.push(None);
                continue;
            };
            let (b, first) = match last {
                Some((b, first, end)) if first <= h && h < end => (b, first),
                _ => {
                    let at = self.batches.partition_point(|b| b.first <= h);
                    let found = at
                        .checked_sub(1)
                        .and_then(|b| self.batches.get(b).map(|s| (b, s)))
                        .filter(|(_, s)| h < s.first + s.batch.num_rows() as u64);
                    let Some((b, s)) = found else {
                        return Err(Error::Internal(format!(
                            "join row {h} is no longer buffered (rows {}..{} are)",
                            self.front, self.next
                        )));
                    };
                    last = Some((b, s.first, s.first + s.batch.num_rows() as u64));
                    (b, s.first)
                }
            };
            picks.push(Some((b, (h - first) as usize)));
        }
        Ok(picks)
    }

    /// The event time of each located row (`i64::MIN` for `None`).
    pub(super) fn ts_at(&self, picks: &[Option<(usize, usize)>]) -> Vec<i64> {
        picks
            .iter()
            .map(|p| p.map_or(i64::MIN, |(b, r)| self.batches[b].ts[r]))
            .collect()
    }

    /// Column `column` for rows at `picks` (`None`: null).
    pub(super) fn gather(
        &self,
        column: usize,
        picks: &[Option<(usize, usize)>],
    ) -> Result<ArrayRef> {
        gather(
            self.batches.iter().map(|s| s.batch.column(column)),
            self.schema.field(column).data_type(),
            picks,
        )
    }

    /// Every stored row as one batch (for a checkpoint).
    pub(super) fn concat(&self) -> Result<RecordBatch> {
        concat_batches(&self.schema, self.batches.iter().map(|s| &s.batch))
            .map_err(Error::arrow("saving join rows"))
    }
}

/// Picks rows out of `arrays` (`(array, row)`; `None`: null) into one array of `data_type`.
pub(super) fn gather<'a>(
    arrays: impl Iterator<Item = &'a ArrayRef>,
    data_type: &arrow::datatypes::DataType,
    picks: &[Option<(usize, usize)>],
) -> Result<ArrayRef> {
    let mut sources: Vec<&dyn Array> = arrays.map(|a| a.as_ref()).collect();
    // All picks in one array, none null (the common case when a side holds one batch, or
    // the rows matched are recent): `take` is several times faster than `interleave`.
    if let Some(Some((only, _))) = picks.first()
        && let Some(source) = sources.get(*only)
        && source.len() <= u32::MAX as usize
    {
        let rows: Option<Vec<u32>> = picks
            .iter()
            .map(|p| p.filter(|(b, _)| b == only).map(|(_, r)| r as u32))
            .collect();
        if let Some(rows) = rows {
            return take(*source, &UInt32Array::from(rows), None)
                .map_err(Error::arrow("gathering joined rows"));
        }
    }
    let null = new_null_array(data_type, 1);
    let null_at = sources.len();
    sources.push(null.as_ref());
    let indices: Vec<(usize, usize)> = picks.iter().map(|p| p.unwrap_or((null_at, 0))).collect();
    interleave(&sources, &indices).map_err(Error::arrow("gathering joined rows"))
}
