//! The rows of one frame, oldest first: what a leaving row must undo in the running
//! aggregates.
//!
//! A RANGE frame's rows leave in time order whatever their key (a row at `t` drops every
//! row before `t - preceding`, and later rows drop no less), so a shard keeps one history
//! per RANGE frame for all its keys, read and written sequentially, and the per-key state
//! that rows hit at random is only the small running aggregates. A ROWS frame's rows leave
//! per key (the key's `n + 1`-th newest), so each key keeps its own history.

use std::collections::VecDeque;

/// Rows in arrival order, each with its time, its key's slot (shared histories only), the
/// values its SUM and AVG members must subtract when it leaves, and which members it was
/// null for (rare, so kept as a list).
#[derive(Debug, Clone, Default)]
pub(super) struct History {
    pub(super) times: VecDeque<i64>,
    /// Per row, its key's slot (empty in a per-key history).
    pub(super) slots: VecDeque<u32>,
    /// Per kept member, its values' bits (a null row holds zero).
    pub(super) kept: Vec<VecDeque<u64>>,
    /// (row number, member) for every null value, oldest first.
    pub(super) nulls: VecDeque<(u64, u32)>,
    /// Rows ever pushed: the number the next row gets.
    pub(super) pushed: u64,
}

impl History {
    /// An empty history keeping `kept` columns of values.
    pub(super) fn new(kept: usize) -> Self {
        History {
            kept: vec![VecDeque::new(); kept],
            ..History::default()
        }
    }

    /// Rows in it.
    pub(super) fn len(&self) -> usize {
        self.times.len()
    }

    /// The number of the oldest row.
    pub(super) fn front_seq(&self) -> u64 {
        self.pushed - self.times.len() as u64
    }

    /// Appends a row; returns its number. `slot` is kept only when `shared`.
    #[inline]
    pub(super) fn push(&mut self, time: i64, slot: u32, shared: bool) -> u64 {
        let seq = self.pushed;
        self.pushed += 1;
        self.times.push_back(time);
        if shared {
            self.slots.push_back(slot);
        }
        seq
    }

    /// Keeps the value of kept column `k` for the row just pushed.
    #[inline]
    pub(super) fn keep(&mut self, k: usize, bits: u64) {
        self.kept[k].push_back(bits);
    }

    /// Notes that the row `seq` was null for `member`.
    pub(super) fn null(&mut self, seq: u64, member: usize) {
        self.nulls.push_back((seq, member as u32));
    }

    /// Removes the oldest row (of a per-key history), its kept values into `values` (by kept
    /// column) and the members it was null for into `nulls` (cleared first); returns its
    /// number, `None` when empty.
    #[inline]
    pub(super) fn pop(&mut self, values: &mut [u64], nulls: &mut Vec<u32>) -> Option<u64> {
        let seq = self.front_seq();
        self.times.pop_front()?;
        for (value, kept) in values.iter_mut().zip(&mut self.kept) {
            *value = kept.pop_front().unwrap_or(0);
        }
        nulls.clear();
        while let Some(&(s, member)) = self.nulls.front() {
            if s != seq {
                break;
            }
            nulls.push(member);
            self.nulls.pop_front();
        }
        Some(seq)
    }

    /// Row `i` from the front: its number, time and slot.
    pub(super) fn row(&self, i: usize) -> (u64, i64, u32) {
        (
            self.front_seq() + i as u64,
            self.times[i],
            self.slots.get(i).copied().unwrap_or(0),
        )
    }
}
