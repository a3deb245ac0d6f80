//! A call's rows grouped by key slot, each key's rows kept in emission order.
//!
//! Walking the rows key by key instead of in time order touches each key's running state
//! once per call instead of once per row, and in slot order: the state arrays are read
//! front to back instead of at random.

use arrow::buffer::{BooleanBuffer, NullBuffer};

use crate::backend::ColumnValues;

/// The rows of a call that one shard runs, in the call's order.
#[derive(Debug, Clone, Copy)]
pub(super) enum Picked<'a> {
    /// The call's rows `first..first + len`.
    Span { first: usize, len: usize },
    /// These rows, ascending.
    Some(&'a [u32]),
}

impl Picked<'_> {
    pub(super) fn len(&self) -> usize {
        match self {
            Picked::Span { len, .. } => *len,
            Picked::Some(rows) => rows.len(),
        }
    }

    /// Picked rows `from..to`.
    pub(super) fn part(&self, from: usize, to: usize) -> Self {
        match self {
            Picked::Span { first, .. } => Picked::Span {
                first: first + from,
                len: to - from,
            },
            Picked::Some(rows) => Picked::Some(&rows[from..to]),
        }
    }

    /// The call's row of the `i`-th picked row.
    #[inline]
    pub(super) fn row(&self, i: usize) -> usize {
        match self {
            Picked::Span { first, .. } => first + i,
            Picked::Some(rows) => rows[i] as usize,
        }
    }
}

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
    pub(super) fn gather<T: Copy>(&self, values: &[T], picked: Picked<'_>) -> Vec<T> {
        self.order
            .iter()
            .map(|&q| values[picked.row(q as usize)])
            .collect()
    }

    /// Each row's position in `order`, by row.
    pub(super) fn positions(&self) -> impl Iterator<Item = usize> + '_ {
        self.position.iter().map(|&p| p as usize)
    }

    /// An aggregate's input in `order`'s positions.
    pub(super) fn gather_column(&self, column: &ColumnValues<'_>, picked: Picked<'_>) -> Gathered {
        let nulls = |nulls: Option<&NullBuffer>| {
            nulls.map(|n| {
                NullBuffer::new(BooleanBuffer::collect_bool(self.order.len(), |p| {
                    n.is_valid(picked.row(self.order[p] as usize))
                }))
            })
        };
        match column {
            ColumnValues::Rows => Gathered::Rows,
            ColumnValues::Int(values, n) => Gathered::Int(self.gather(values, picked), nulls(*n)),
            ColumnValues::Float(values, n) => {
                Gathered::Float(self.gather(values, picked), nulls(*n))
            }
        }
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
    use super::{Picked, RowsByKey};

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
        let there = by.gather(
            &rows,
            Picked::Span {
                first: 0,
                len: rows.len(),
            },
        );
        assert_eq!(there, by.order);
        let back: Vec<u32> = by.positions().map(|p| there[p]).collect();
        assert_eq!(back, rows, "the positions undo the gather");
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
}
