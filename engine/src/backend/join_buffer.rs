//! The `JoinBuffer` trait: one side of a stream join (interval or window join), its buffered
//! rows indexed by key id and event time where the backend keeps them between micro-batches.
//!
//! The join operator keeps the rows' columns itself and hands a buffer only what matching
//! needs: a key id and an event time per row. Rows get handles `0, 1, 2, …` in insertion order
//! over the buffer's life; a probe answers with handles, which the operator turns back into
//! rows. Both joins are band joins on equal keys: an interval join probes `[ts - lower,
//! ts + upper]` around each new row, a window join probes `[start, end - 1]` of each window
//! that closes. Every backend must answer exactly as [`CpuJoinBuffer`](super::cpu::CpuJoinBuffer).

use std::fmt::Debug;

use crate::error::{Error, Result};

/// One side's buffered rows of a stream join, on one backend.
///
/// Contract: `insert` buffers rows; `probe` finds, for each probe row, every buffered row with
/// the same key id whose event time lies in the probe row's closed range `[lo, hi]`;
/// `expire(t)` promises that no later probe asks for event times below `t`, so rows older than
/// `t` may be forgotten (at once or later: they can no longer match either way).
pub trait JoinBuffer: Send + Debug {
    /// Buffers rows with key ids `ids` and event times `ts` (epoch ms), pairwise; they take
    /// the next handles, in order.
    fn insert(&mut self, ids: &[u64], ts: &[i64]) -> Result<()>;

    /// Every (probe row, buffered row) pair with equal key ids and the buffered row's event
    /// time within the probe row's range, sorted by probe row, then handle.
    fn probe(&mut self, probe: &JoinProbe<'_>) -> Result<BufferMatches>;

    /// No later probe asks for event times below `before`.
    fn expire(&mut self, before: i64) -> Result<()>;

    /// Rows the buffer holds now (forgotten rows excluded): bounded state is checked on this.
    fn rows(&self) -> usize;

    /// Handles given out so far: the next inserted row's handle.
    fn next_handle(&self) -> u64;
}

/// The probe rows of [`JoinBuffer::probe`]: a key id and an event-time range per row.
#[derive(Debug, Clone, Copy)]
pub struct JoinProbe<'a> {
    /// Key id per probe row.
    pub ids: &'a [u64],
    /// Earliest matching event time per probe row (inclusive).
    pub lo: &'a [i64],
    /// Latest matching event time per probe row (inclusive).
    pub hi: &'a [i64],
}

impl JoinProbe<'_> {
    /// Number of probe rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no probe rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Fails unless every probe row has a range.
    pub fn check(&self) -> Result<()> {
        if self.ids.len() != self.lo.len() || self.ids.len() != self.hi.len() {
            return Err(Error::Internal(
                "join probe columns differ in length".into(),
            ));
        }
        Ok(())
    }
}

/// The pairs a [`JoinBuffer::probe`] found: probe row `probe[i]` matches buffered row
/// `handles[i]`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BufferMatches {
    /// Probe row per pair.
    pub probe: Vec<u32>,
    /// Buffered row's handle per pair.
    pub handles: Vec<u64>,
}

impl BufferMatches {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.probe.len()
    }

    /// Whether nothing matched.
    pub fn is_empty(&self) -> bool {
        self.probe.is_empty()
    }
}
