//! Cuts the incoming stream of source batches into micro-batches by row count or by age.
//!
//! Large micro-batches amortise per-batch costs (kernel dispatch, hash-table warm-up); a cap on
//! age bounds latency when input is slow. The defaults, 256 Ki rows or 100 ms, keep a 2-core
//! machine near its peak throughput while bounding the added latency at the delay.

use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};

/// When to cut a micro-batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchingSpec {
    /// Cut as soon as this many rows are waiting.
    pub max_rows: usize,
    /// Cut when the oldest waiting row has waited this long.
    pub max_delay: Duration,
}

impl Default for BatchingSpec {
    fn default() -> Self {
        BatchingSpec {
            max_rows: 256 * 1024,
            max_delay: Duration::from_millis(100),
        }
    }
}

/// Collects source batches into micro-batches.
#[derive(Debug)]
pub struct MicroBatcher {
    spec: BatchingSpec,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    rows: usize,
    oldest: Option<Instant>,
}

/// A micro-batch and when its oldest row arrived.
#[derive(Debug)]
pub struct MicroBatch {
    /// The rows.
    pub batch: RecordBatch,
    /// When the oldest row reached the runtime (for latency figures).
    pub arrived: Instant,
}

impl MicroBatcher {
    /// An empty batcher for batches of `schema`.
    pub fn new(spec: BatchingSpec, schema: SchemaRef) -> Self {
        MicroBatcher {
            spec: BatchingSpec {
                max_rows: spec.max_rows.max(1),
                ..spec
            },
            schema,
            pending: Vec::new(),
            rows: 0,
            oldest: None,
        }
    }

    /// Adds a batch that arrived at `now`; returns the micro-batches that are now full.
    pub fn push(&mut self, batch: RecordBatch, now: Instant) -> Result<Vec<MicroBatch>> {
        let mut ready = Vec::new();
        let mut offset = 0;
        while offset < batch.num_rows() {
            self.oldest.get_or_insert(now);
            let take = (self.spec.max_rows - self.rows).min(batch.num_rows() - offset);
            // Slicing is zero-copy; a whole batch that fits exactly is passed through untouched.
            self.pending.push(batch.slice(offset, take));
            self.rows += take;
            offset += take;
            if self.rows >= self.spec.max_rows {
                ready.extend(self.cut()?);
            }
        }
        Ok(ready)
    }

    /// Rows waiting to be cut.
    pub fn pending_rows(&self) -> usize {
        self.rows
    }

    /// When the pending rows must be cut, if any are pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.spec.max_delay)
    }

    /// Cuts whatever is pending (at a deadline or at the end of input).
    pub fn cut(&mut self) -> Result<Option<MicroBatch>> {
        let Some(arrived) = self.oldest.take() else {
            return Ok(None);
        };
        let batch = if self.pending.len() == 1 {
            self.pending
                .pop()
                .ok_or_else(|| Error::Internal("pending batch vanished".into()))?
        } else {
            let batch = concat_batches(&self.schema, &self.pending)
                .map_err(Error::arrow("forming a micro-batch"))?;
            self.pending.clear();
            batch
        };
        self.rows = 0;
        Ok(Some(MicroBatch { batch, arrived }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    fn batch(range: std::ops::Range<i64>) -> RecordBatch {
        RecordBatch::try_from_iter(vec![(
            "v",
            Arc::new(Int64Array::from_iter_values(range)) as ArrayRef,
        )])
        .expect("batch")
    }

    #[test]
    fn cuts_by_rows_and_splits_large_batches() {
        let spec = BatchingSpec {
            max_rows: 4,
            max_delay: Duration::from_secs(1),
        };
        let mut b = MicroBatcher::new(spec, batch(0..0).schema());
        let now = Instant::now();
        assert!(b.push(batch(0..3), now).expect("push").is_empty());
        let ready = b.push(batch(3..13), now).expect("push");
        let sizes: Vec<usize> = ready.iter().map(|m| m.batch.num_rows()).collect();
        assert_eq!(sizes, vec![4, 4, 4]);
        let rest = b.cut().expect("cut").expect("pending");
        let values = rest
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64");
        assert_eq!(values.values().to_vec(), vec![12]);
        assert!(b.cut().expect("cut").is_none());
    }

    #[test]
    fn the_deadline_follows_the_oldest_row() {
        let spec = BatchingSpec {
            max_rows: 100,
            max_delay: Duration::from_millis(100),
        };
        let mut b = MicroBatcher::new(spec, batch(0..0).schema());
        assert_eq!(b.deadline(), None);
        let t0 = Instant::now();
        b.push(batch(0..1), t0).expect("push");
        b.push(batch(1..2), t0 + Duration::from_millis(50))
            .expect("push");
        assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(100)));
    }
}
