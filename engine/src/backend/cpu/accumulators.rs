//! Columnar accumulator storage for many groups: one vector per aggregate, indexed by slot.
//!
//! Updates are two-phase (as in DataFusion's grouped accumulators): the caller first maps rows
//! to slots, then each aggregate folds its whole input column into its vector in one tight loop.

mod state;

pub use state::{StateColumns, state_fields};

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::buffer::NullBuffer;

use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::{AggregatePlan, ColumnValues};
use crate::error::{Error, Result};

type DistinctSet = HashSet<u64, ahash::RandomState>;

/// Accumulators for all aggregates of one operator over a set of slots.
#[derive(Debug)]
pub struct Accumulators {
    columns: Vec<Column>,
    len: usize,
}

#[derive(Debug)]
enum Column {
    /// `count(*)`.
    Rows(Vec<i64>),
    Int(Fold<i64>),
    Float(Fold<f64>),
    Distinct(Vec<DistinctSet>),
}

/// How a fold combines values; `finish` decides what it outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Sum,
    Min,
    Max,
}

#[derive(Debug)]
struct Fold<T> {
    op: Op,
    function: AggregateFunction,
    values: Vec<T>,
    counts: Vec<i64>,
}

trait Value: Copy + PartialOrd + std::fmt::Debug {
    const ZERO: Self;
    fn add(self, other: Self) -> Self;
    fn as_f64(self) -> f64;
    /// The order min and max use: total, so results never depend on arrival order.
    fn less(self, other: Self) -> bool;
}

impl Value for i64 {
    const ZERO: Self = 0;
    #[inline]
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn less(self, other: Self) -> bool {
        self < other
    }
}

impl Value for f64 {
    const ZERO: Self = 0.0;
    #[inline]
    fn add(self, other: Self) -> Self {
        self + other
    }
    fn as_f64(self) -> f64 {
        self
    }
    /// IEEE total order with every NaN taken as the positive quiet NaN: NaN is above +inf
    /// (as in PostgreSQL) and -0.0 below 0.0. The GPU backend orders floats the same way.
    #[inline]
    fn less(self, other: Self) -> bool {
        let canonical = |v: f64| if v.is_nan() { f64::NAN } else { v };
        canonical(self).total_cmp(&canonical(other)).is_lt()
    }
}

impl<T: Value> Fold<T> {
    fn new(function: AggregateFunction) -> Self {
        let op = match function {
            AggregateFunction::Min => Op::Min,
            AggregateFunction::Max => Op::Max,
            _ => Op::Sum,
        };
        Fold {
            op,
            function,
            values: Vec::new(),
            counts: Vec::new(),
        }
    }

    #[inline]
    fn combine(op: Op, acc: &mut T, v: T, first: bool) {
        match op {
            Op::Sum => *acc = acc.add(v),
            Op::Min => {
                if first || v.less(*acc) {
                    *acc = v
                }
            }
            Op::Max => {
                if first || acc.less(v) {
                    *acc = v
                }
            }
        }
    }

    fn update(&mut self, rows: &[u32], slots: &[u32], values: &[T], nulls: Option<&NullBuffer>) {
        let op = self.op;
        // The loops are split on `op` and on nulls so each stays branch-light.
        match (op, nulls) {
            (Op::Sum, None) => {
                for (&row, &slot) in rows.iter().zip(slots) {
                    let s = slot as usize;
                    self.values[s] = self.values[s].add(values[row as usize]);
                    self.counts[s] += 1;
                }
            }
            (_, nulls) => {
                for (&row, &slot) in rows.iter().zip(slots) {
                    if nulls.is_some_and(|n| n.is_null(row as usize)) {
                        continue;
                    }
                    let s = slot as usize;
                    Self::combine(
                        op,
                        &mut self.values[s],
                        values[row as usize],
                        self.counts[s] == 0,
                    );
                    self.counts[s] += 1;
                }
            }
        }
    }

    fn merge(&mut self, dst: usize, src: usize) {
        if self.counts[src] > 0 {
            let v = self.values[src];
            let first = self.counts[dst] == 0;
            Self::combine(self.op, &mut self.values[dst], v, first);
            self.counts[dst] += self.counts[src];
        }
    }
}

impl Accumulators {
    /// Empty storage for the aggregates of `plan`.
    pub fn new(plan: &[AggregatePlan]) -> Self {
        let columns = plan
            .iter()
            .map(|a| match (a.function, a.input) {
                (AggregateFunction::CountDistinct, _) => Column::Distinct(Vec::new()),
                (_, None) => Column::Rows(Vec::new()),
                (f, Some(NumericKind::Int)) => Column::Int(Fold::new(f)),
                (f, Some(NumericKind::Float)) => Column::Float(Fold::new(f)),
            })
            .collect();
        Accumulators { columns, len: 0 }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a slot in its empty state and returns its index.
    pub fn push_slot(&mut self) -> u32 {
        for column in &mut self.columns {
            match column {
                Column::Rows(counts) => counts.push(0),
                Column::Int(f) => {
                    f.values.push(i64::ZERO);
                    f.counts.push(0);
                }
                Column::Float(f) => {
                    f.values.push(f64::ZERO);
                    f.counts.push(0);
                }
                Column::Distinct(sets) => sets.push(DistinctSet::default()),
            }
        }
        self.len += 1;
        (self.len - 1) as u32
    }

    /// Returns slot `slot` to its empty state so it can be reused.
    pub fn reset_slot(&mut self, slot: u32) {
        let s = slot as usize;
        for column in &mut self.columns {
            match column {
                Column::Rows(counts) => counts[s] = 0,
                Column::Int(f) => {
                    f.values[s] = 0;
                    f.counts[s] = 0;
                }
                Column::Float(f) => {
                    f.values[s] = 0.0;
                    f.counts[s] = 0;
                }
                Column::Distinct(sets) => sets[s] = DistinctSet::default(),
            }
        }
    }

    /// Folds `rows` of the inputs into `slots` (same length): row `rows[i]` goes to `slots[i]`.
    pub fn update(
        &mut self,
        rows: &[u32],
        slots: &[u32],
        inputs: &[ColumnValues<'_>],
    ) -> Result<()> {
        for (column, input) in self.columns.iter_mut().zip(inputs) {
            match (column, input) {
                (Column::Rows(counts), _) => {
                    for &slot in slots {
                        counts[slot as usize] += 1;
                    }
                }
                (Column::Int(fold), ColumnValues::Int(values, nulls)) => {
                    fold.update(rows, slots, values, *nulls)
                }
                (Column::Float(fold), ColumnValues::Float(values, nulls)) => {
                    fold.update(rows, slots, values, *nulls)
                }
                (Column::Distinct(sets), ColumnValues::Int(values, nulls)) => {
                    distinct_update(sets, rows, slots, *nulls, |r| values[r] as u64)
                }
                (Column::Distinct(sets), ColumnValues::Float(values, nulls)) => {
                    distinct_update(sets, rows, slots, *nulls, |r| float_key(values[r]))
                }
                (column, input) => {
                    return Err(Error::Internal(format!(
                        "accumulator {column:?} got input {input:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Folds slot `src` into slot `dst` (session merges). `src` keeps its state; reset it after.
    pub fn merge(&mut self, dst: u32, src: u32) {
        let (d, s) = (dst as usize, src as usize);
        for column in &mut self.columns {
            match column {
                Column::Rows(counts) => counts[d] += counts[s],
                Column::Int(f) => f.merge(d, s),
                Column::Float(f) => f.merge(d, s),
                Column::Distinct(sets) => {
                    let moved = std::mem::take(&mut sets[s]);
                    sets[d].extend(moved);
                }
            }
        }
    }

    /// The output arrays for `slots`, in that order, one per aggregate.
    pub fn finish(&self, slots: &[u32]) -> Vec<ArrayRef> {
        self.columns
            .iter()
            .map(|column| -> ArrayRef {
                match column {
                    Column::Rows(counts) => Arc::new(Int64Array::from_iter_values(
                        slots.iter().map(|&s| counts[s as usize]),
                    )),
                    Column::Distinct(sets) => Arc::new(Int64Array::from_iter_values(
                        slots.iter().map(|&s| sets[s as usize].len() as i64),
                    )),
                    Column::Int(fold) => finish_fold(fold, slots, |v| {
                        Arc::new(v.into_iter().collect::<Int64Array>())
                    }),
                    Column::Float(fold) => finish_fold(fold, slots, |v| {
                        Arc::new(v.into_iter().collect::<Float64Array>())
                    }),
                }
            })
            .collect()
    }
}

fn finish_fold<T: Value>(
    fold: &Fold<T>,
    slots: &[u32],
    build: impl FnOnce(Vec<Option<T>>) -> ArrayRef,
) -> ArrayRef {
    let count = |s: u32| fold.counts[s as usize];
    match fold.function {
        AggregateFunction::Count => Arc::new(Int64Array::from_iter_values(
            slots.iter().map(|&s| count(s)),
        )),
        AggregateFunction::Avg => Arc::new(
            slots
                .iter()
                .map(|&s| {
                    (count(s) > 0).then(|| fold.values[s as usize].as_f64() / count(s) as f64)
                })
                .collect::<Float64Array>(),
        ),
        _ => build(
            slots
                .iter()
                .map(|&s| (count(s) > 0).then(|| fold.values[s as usize]))
                .collect(),
        ),
    }
}

fn distinct_update(
    sets: &mut [DistinctSet],
    rows: &[u32],
    slots: &[u32],
    nulls: Option<&NullBuffer>,
    key: impl Fn(usize) -> u64,
) {
    for (&row, &slot) in rows.iter().zip(slots) {
        if nulls.is_some_and(|n| n.is_null(row as usize)) {
            continue;
        }
        sets[slot as usize].insert(key(row as usize));
    }
}

/// Bits that identify a float for distinct counting: `-0.0 == 0.0`, and all NaNs are one value.
fn float_key(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int64Type};

    fn plan(function: AggregateFunction, input: Option<NumericKind>) -> AggregatePlan {
        AggregatePlan { function, input }
    }

    #[test]
    fn folds_every_function_with_nulls() {
        let aggs = [
            plan(AggregateFunction::Count, None),
            plan(AggregateFunction::Count, Some(NumericKind::Int)),
            plan(AggregateFunction::Sum, Some(NumericKind::Int)),
            plan(AggregateFunction::Min, Some(NumericKind::Int)),
            plan(AggregateFunction::Max, Some(NumericKind::Int)),
            plan(AggregateFunction::Avg, Some(NumericKind::Int)),
            plan(AggregateFunction::CountDistinct, Some(NumericKind::Int)),
        ];
        let mut acc = Accumulators::new(&aggs);
        let (a, b) = (acc.push_slot(), acc.push_slot());
        let values = [5i64, -2, 5, 9, 0];
        let nulls = NullBuffer::from(vec![true, true, true, true, false]);
        let col = ColumnValues::Int(&values, Some(&nulls));
        let inputs = vec![col; 7];
        // rows 0..3 to slot a, rows 3..5 to slot b (row 4 is null).
        acc.update(&[0, 1, 2, 3, 4], &[a, a, a, b, b], &inputs)
            .expect("update");
        let out = acc.finish(&[a, b]);
        let ints = |i: usize| {
            out[i]
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>()
        };
        assert_eq!(ints(0), vec![Some(3), Some(2)]);
        assert_eq!(ints(1), vec![Some(3), Some(1)]);
        assert_eq!(ints(2), vec![Some(8), Some(9)]);
        assert_eq!(ints(3), vec![Some(-2), Some(9)]);
        assert_eq!(ints(4), vec![Some(5), Some(9)]);
        let avg = out[5].as_primitive::<Float64Type>();
        assert!((avg.value(0) - 8.0 / 3.0).abs() < 1e-12 && avg.value(1) == 9.0);
        assert_eq!(ints(6), vec![Some(2), Some(1)]);
    }

    #[test]
    fn all_null_groups_give_null_not_zero() {
        let aggs = [
            plan(AggregateFunction::Sum, Some(NumericKind::Float)),
            plan(AggregateFunction::Min, Some(NumericKind::Float)),
        ];
        let mut acc = Accumulators::new(&aggs);
        let s = acc.push_slot();
        let values = [1.5f64];
        let nulls = NullBuffer::from(vec![false]);
        let col = ColumnValues::Float(&values, Some(&nulls));
        acc.update(&[0], &[s], &[col, col]).expect("update");
        let out = acc.finish(&[s]);
        assert!(out[0].is_null(0) && out[1].is_null(0));
    }

    #[test]
    fn merge_combines_slots_like_one_stream() {
        let aggs = [
            plan(AggregateFunction::Min, Some(NumericKind::Float)),
            plan(AggregateFunction::CountDistinct, Some(NumericKind::Float)),
            plan(AggregateFunction::Count, None),
        ];
        let mut acc = Accumulators::new(&aggs);
        let (a, b) = (acc.push_slot(), acc.push_slot());
        let values = [3.0f64, -0.0, 0.0, 7.5];
        let col = ColumnValues::Float(&values, None);
        acc.update(&[0, 1, 2, 3], &[a, a, b, b], &[col, col, col])
            .expect("update");
        acc.merge(a, b);
        acc.reset_slot(b);
        let out = acc.finish(&[a, b]);
        assert_eq!(out[0].as_primitive::<Float64Type>().value(0), -0.0);
        assert_eq!(
            out[1].as_primitive::<Int64Type>().values().to_vec(),
            vec![3, 0]
        );
        assert_eq!(
            out[2].as_primitive::<Int64Type>().values().to_vec(),
            vec![4, 0]
        );
    }
}
