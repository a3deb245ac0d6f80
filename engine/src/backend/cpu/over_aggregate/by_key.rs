//! A call's rows grouped by key slot, each key's rows kept in emission order.
//!
//! Walking the rows key by key instead of in time order touches each key's frames once per
//! call instead of once per row: with 10,000 keys and an hour of rows in the frames, the
//! frames are far larger than the caches, and a per-row walk pays a miss on every row.

use arrow::buffer::{BooleanBuffer, NullBuffer};
use rayon::prelude::*;

use crate::backend::ColumnValues;

/// The rows of one call, grouped by slot.
#[derive(Debug)]
pub(super) struct RowsByKey {
    /// Row indices, slot by slot, ascending within a slot.
    pub(super) order: Vec<u32>,
    /// Slot `s`'s rows are `order[starts[s]..starts[s + 1]]`; one entry per slot, plus one.
    pub(super) starts: Vec<u32>,
    /// Each row's position in `order` (its inverse).
    position: Vec<u32>,
}

impl RowsByKey {
    /// Groups rows by `slots[row]`, each below `keys`.
    pub(super) fn new(slots: &[u32], keys: usize) -> Self {
        // A counting sort costs O(keys) on top of O(rows): with many more keys than rows
        // (a small call against a large dictionary), sorting the rows is cheaper.
        if keys > 4 * slots.len() + 1024 {
            return Self::sorted(slots, keys);
        }
        let mut starts = vec![0u32; keys + 1];
        for &slot in slots {
            starts[slot as usize + 1] += 1;
        }
        for s in 1..starts.len() {
            starts[s] += starts[s - 1];
        }
        let mut next = starts.clone();
        let mut order = vec![0u32; slots.len()];
        let mut position = vec![0u32; slots.len()];
        for (row, &slot) in slots.iter().enumerate() {
            let at = &mut next[slot as usize];
            order[*at as usize] = row as u32;
            position[row] = *at;
            *at += 1;
        }
        RowsByKey {
            order,
            starts,
            position,
        }
    }

    fn sorted(slots: &[u32], keys: usize) -> Self {
        let mut pairs: Vec<u64> = slots
            .iter()
            .enumerate()
            .map(|(row, &slot)| (u64::from(slot) << 32) | row as u64)
            .collect();
        pairs.sort_unstable();
        let order: Vec<u32> = pairs.iter().map(|&p| p as u32).collect();
        let mut position = vec![0u32; order.len()];
        for (at, &row) in order.iter().enumerate() {
            position[row as usize] = at as u32;
        }
        let mut starts = vec![0u32; keys + 1];
        let mut at = 0;
        for (s, start) in starts.iter_mut().enumerate() {
            while at < pairs.len() && (pairs[at] >> 32) < s as u64 {
                at += 1;
            }
            *start = at as u32;
        }
        RowsByKey {
            order,
            starts,
            position,
        }
    }

    /// `values` (one per row) in `order`'s positions: the walk then reads each key's rows
    /// one after another instead of across the whole call. `parallel`: on Rayon's threads.
    pub(super) fn gather<T: Copy + Send + Sync>(&self, values: &[T], parallel: bool) -> Vec<T> {
        if parallel {
            self.order.par_iter().map(|&r| values[r as usize]).collect()
        } else {
            self.order.iter().map(|&r| values[r as usize]).collect()
        }
    }

    /// `values` (one per position of `order`) back in row order.
    pub(super) fn scatter<T: Copy + Send + Sync>(&self, values: &[T], parallel: bool) -> Vec<T> {
        if parallel {
            self.position
                .par_iter()
                .map(|&p| values[p as usize])
                .collect()
        } else {
            self.position.iter().map(|&p| values[p as usize]).collect()
        }
    }

    /// An aggregate's input in `order`'s positions.
    pub(super) fn gather_column(&self, column: &ColumnValues<'_>, parallel: bool) -> Gathered {
        let nulls = |nulls: Option<&NullBuffer>| {
            nulls.map(|n| {
                NullBuffer::new(BooleanBuffer::collect_bool(self.order.len(), |p| {
                    n.is_valid(self.order[p] as usize)
                }))
            })
        };
        match column {
            ColumnValues::Rows => Gathered::Rows,
            ColumnValues::Int(values, n) => Gathered::Int(self.gather(values, parallel), nulls(*n)),
            ColumnValues::Float(values, n) => {
                Gathered::Float(self.gather(values, parallel), nulls(*n))
            }
        }
    }

    /// Slot boundaries `[0, .., keys]` cutting the slots into at most `pieces` runs of about
    /// equal rows (a slot is never cut).
    pub(super) fn pieces(&self, pieces: usize) -> Vec<usize> {
        let keys = self.starts.len() - 1;
        let rows = self.order.len();
        let mut cuts = vec![0];
        for p in 1..pieces {
            let target = (rows * p / pieces) as u32;
            let cut = self.starts.partition_point(|&s| s < target).min(keys);
            if cut > *cuts.last().unwrap_or(&0) {
                cuts.push(cut);
            }
        }
        if *cuts.last().unwrap_or(&0) < keys || cuts.len() == 1 {
            cuts.push(keys);
        }
        cuts
    }
}

/// An aggregate's input gathered into key order.
#[derive(Debug)]
pub(super) enum Gathered {
    Rows,
    Int(Vec<i64>, Option<NullBuffer>),
    Float(Vec<f64>, Option<NullBuffer>),
}

impl Gathered {
    pub(super) fn values(&self) -> ColumnValues<'_> {
        match self {
            Gathered::Rows => ColumnValues::Rows,
            Gathered::Int(values, nulls) => ColumnValues::Int(values, nulls.as_ref()),
            Gathered::Float(values, nulls) => ColumnValues::Float(values, nulls.as_ref()),
        }
    }
}

/// Whether two inputs are the very same column (gathered once for all its aggregates).
pub(super) fn same_column(a: &ColumnValues<'_>, b: &ColumnValues<'_>) -> bool {
    let nulls = |x: Option<&NullBuffer>, y: Option<&NullBuffer>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => x == y,
        _ => false,
    };
    match (a, b) {
        (ColumnValues::Int(x, n), ColumnValues::Int(y, m)) => std::ptr::eq(*x, *y) && nulls(*n, *m),
        (ColumnValues::Float(x, n), ColumnValues::Float(y, m)) => {
            std::ptr::eq(*x, *y) && nulls(*n, *m)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::RowsByKey;

    fn check(slots: &[u32], keys: usize, by: &RowsByKey) {
        assert_eq!(by.starts.len(), keys + 1);
        for s in 0..keys {
            let rows = &by.order[by.starts[s] as usize..by.starts[s + 1] as usize];
            let expected: Vec<u32> = (0..slots.len() as u32)
                .filter(|&r| slots[r as usize] == s as u32)
                .collect();
            assert_eq!(rows, expected.as_slice(), "slot {s}");
        }
        let rows: Vec<u32> = (0..slots.len() as u32).collect();
        let there = by.gather(&rows, false);
        assert_eq!(there, by.order);
        assert_eq!(by.scatter(&there, true), rows, "scatter undoes gather");
    }

    #[test]
    fn counting_and_sorting_group_alike() {
        let slots = [3, 0, 3, 1, 0, 3, 2];
        check(&slots, 4, &RowsByKey::new(&slots, 4));
        check(&slots, 4, &RowsByKey::sorted(&slots, 4));
        // Far more keys than rows takes the sort.
        let sparse = [5000, 7, 5000, 12];
        check(&sparse, 6000, &RowsByKey::new(&sparse, 6000));
    }

    #[test]
    fn pieces_cover_every_slot_once_and_balance_rows() {
        let slots: Vec<u32> = (0..1000u32).map(|r| r % 10).collect();
        let by = RowsByKey::new(&slots, 10);
        let cuts = by.pieces(4);
        assert_eq!(cuts.first(), Some(&0));
        assert_eq!(cuts.last(), Some(&10));
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        assert!(cuts.len() >= 4, "{cuts:?}");
        // One hot key cannot be cut.
        let hot = vec![0u32; 100];
        assert_eq!(RowsByKey::new(&hot, 1).pieces(4), vec![0, 1]);
        // No rows: one piece.
        assert_eq!(RowsByKey::new(&[], 3).pieces(2), vec![0, 3]);
    }
}
