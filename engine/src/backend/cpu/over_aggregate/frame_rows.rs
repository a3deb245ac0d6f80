//! The rows one key has in one OVER frame, and the running aggregates over them.
//!
//! A frame slides: rows enter at the back in emission order and leave at the front. Counts
//! and sums are kept running (a leaving value is subtracted), min and max as monotonic
//! queues of candidates, so each row costs O(1) amortised whatever the frame's length. An
//! unbounded frame (`UNBOUNDED PRECEDING`) never loses a row, so it keeps no rows at all:
//! only the running count, sum and best value.

use std::collections::VecDeque;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::buffer::NullBuffer;

use super::by_key::RowsByKey;
use crate::aggregate::AggregateFunction;
use crate::backend::ColumnValues;

/// One key's rows in one frame.
#[derive(Debug, Clone, Default)]
pub(super) struct FrameRows {
    /// Event times of the rows in the frame, oldest first.
    pub(super) times: VecDeque<i64>,
    /// Rows ever pushed: the position the next row gets (min/max candidates are positions).
    pushed: u64,
    /// One per aggregate of the frame, in the frame's order.
    pub(super) running: Vec<Running>,
    /// Rows never leave: `times` stays empty, `pushed` is the frame's length.
    unbounded: bool,
}

/// A running aggregate over a frame's rows.
#[derive(Debug, Clone)]
pub(super) enum Running {
    /// `COUNT(*)`: the frame's length is the answer.
    Rows,
    /// Any aggregate of an integer column.
    Int(Column<i64>),
    /// Any aggregate of a float column.
    Float(Column<f64>),
}

/// What one aggregate keeps of its input's rows in the frame, and its running state.
///
/// Only what a leaving row must undo is kept: SUM and AVG keep the values (to subtract),
/// every function but MIN and MAX the positions of null rows (to count non-null rows), MIN and
/// MAX only their candidates. Nulls are rare, so their positions cost nothing on most keys.
#[derive(Debug, Clone)]
pub(super) struct Column<T: Num> {
    function: AggregateFunction,
    /// SUM and AVG: the frame's values, oldest first (a null row holds a zero).
    values: VecDeque<T>,
    /// Positions of the frame's null rows, oldest first (not kept for MIN and MAX).
    nulls: VecDeque<u64>,
    non_null: u64,
    /// For `SUM` and `AVG`.
    pub(super) sum: T::Sum,
    /// For `MIN` and `MAX`: (position, value) of every value that can still become the
    /// answer, the answer first; each beats all that follow it. The newest non-null value
    /// is always among them, so none left means no non-null value in the frame. In an
    /// unbounded frame only the answer.
    extremes: VecDeque<(u64, T)>,
    /// Nothing leaves: values and null positions are not kept.
    unbounded: bool,
}

/// An unbounded frame's column as a checkpoint keeps it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Total<T: Num> {
    pub(super) non_null: u64,
    /// The running sum's finite part (SUM, AVG) or the best value (MIN, MAX).
    pub(super) value: Option<T>,
    /// A float sum's infinities and NaNs (positive, negative, NaN).
    pub(super) special: [u32; 3],
}

/// A value type the frames aggregate (i64, f64).
pub(super) trait Num: Copy + std::fmt::Debug {
    /// What a running sum keeps.
    type Sum: Copy + Default + std::fmt::Debug;
    /// What a null row holds in a kept column.
    const ZERO: Self;
    fn add(sum: &mut Self::Sum, value: Self);
    fn sub(sum: &mut Self::Sum, value: Self);
    fn total(sum: &Self::Sum) -> Self;
    fn as_f64(self) -> f64;
    fn answer(self) -> Answer;
    /// The order of MIN and MAX, as the window accumulators order values.
    fn less(self, other: Self) -> bool;
    /// A sum as its finite part and its infinities and NaNs (none for integers).
    fn sum_parts(sum: &Self::Sum) -> (Self, [u32; 3]);
    fn sum_from_parts(value: Self, special: [u32; 3]) -> Self::Sum;
}

impl Num for i64 {
    type Sum = i64;
    const ZERO: i64 = 0;
    fn add(sum: &mut i64, value: i64) {
        *sum = sum.wrapping_add(value);
    }
    fn sub(sum: &mut i64, value: i64) {
        *sum = sum.wrapping_sub(value);
    }
    fn total(sum: &i64) -> i64 {
        *sum
    }
    fn as_f64(self) -> f64 {
        self as f64
    }
    fn answer(self) -> Answer {
        Answer::Int(self)
    }
    fn less(self, other: i64) -> bool {
        self < other
    }
    fn sum_parts(sum: &i64) -> (i64, [u32; 3]) {
        (*sum, [0; 3])
    }
    fn sum_from_parts(value: i64, _: [u32; 3]) -> i64 {
        value
    }
}

/// A float sum that values can leave again: infinities and NaNs are counted apart, since
/// `inf - inf` would leave a NaN behind after the infinity left the frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct FloatSum {
    pub(super) finite: f64,
    positive_infinities: u32,
    negative_infinities: u32,
    nans: u32,
}

impl Num for f64 {
    type Sum = FloatSum;
    const ZERO: f64 = 0.0;
    fn add(sum: &mut FloatSum, value: f64) {
        if value.is_finite() {
            sum.finite += value;
        } else if value.is_nan() {
            sum.nans += 1;
        } else if value > 0.0 {
            sum.positive_infinities += 1;
        } else {
            sum.negative_infinities += 1;
        }
    }
    fn sub(sum: &mut FloatSum, value: f64) {
        if value.is_finite() {
            sum.finite -= value;
        } else if value.is_nan() {
            sum.nans -= 1;
        } else if value > 0.0 {
            sum.positive_infinities -= 1;
        } else {
            sum.negative_infinities -= 1;
        }
    }
    fn total(sum: &FloatSum) -> f64 {
        match (sum.nans, sum.positive_infinities, sum.negative_infinities) {
            (0, 0, 0) => sum.finite,
            (0, _, 0) => f64::INFINITY,
            (0, 0, _) => f64::NEG_INFINITY,
            _ => f64::NAN,
        }
    }
    fn as_f64(self) -> f64 {
        self
    }
    fn answer(self) -> Answer {
        Answer::Float(self)
    }
    fn less(self, other: f64) -> bool {
        let canonical = |v: f64| if v.is_nan() { f64::NAN } else { v };
        canonical(self).total_cmp(&canonical(other)).is_lt()
    }
    fn sum_parts(sum: &FloatSum) -> (f64, [u32; 3]) {
        (
            sum.finite,
            [sum.positive_infinities, sum.negative_infinities, sum.nans],
        )
    }
    fn sum_from_parts(finite: f64, [positive, negative, nans]: [u32; 3]) -> FloatSum {
        FloatSum {
            finite,
            positive_infinities: positive,
            negative_infinities: negative,
            nans,
        }
    }
}

impl<T: Num> Column<T> {
    pub(super) fn new(function: AggregateFunction, unbounded: bool) -> Self {
        Column {
            function,
            values: VecDeque::new(),
            nulls: VecDeque::new(),
            non_null: 0,
            sum: T::Sum::default(),
            extremes: VecDeque::new(),
            unbounded,
        }
    }

    fn is_extreme(&self) -> bool {
        matches!(
            self.function,
            AggregateFunction::Min | AggregateFunction::Max
        )
    }

    fn keeps_values(&self) -> bool {
        matches!(
            self.function,
            AggregateFunction::Sum | AggregateFunction::Avg
        )
    }

    fn push(&mut self, position: u64, value: Option<T>) {
        if self.unbounded {
            return self.accumulate(position, value);
        }
        if self.keeps_values() {
            self.values.push_back(value.unwrap_or(T::ZERO));
        }
        let Some(value) = value else {
            if !self.is_extreme() {
                self.nulls.push_back(position);
            }
            return;
        };
        self.non_null += 1;
        match self.function {
            AggregateFunction::Sum | AggregateFunction::Avg => T::add(&mut self.sum, value),
            AggregateFunction::Min => {
                while self.extremes.back().is_some_and(|&(_, v)| !v.less(value)) {
                    self.extremes.pop_back();
                }
                self.extremes.push_back((position, value));
            }
            AggregateFunction::Max => {
                while self.extremes.back().is_some_and(|&(_, v)| !value.less(v)) {
                    self.extremes.pop_back();
                }
                self.extremes.push_back((position, value));
            }
            AggregateFunction::Count | AggregateFunction::CountDistinct => {}
        }
    }

    /// Takes a row into an unbounded frame: nothing kept but the totals and the best value.
    fn accumulate(&mut self, position: u64, value: Option<T>) {
        let Some(value) = value else {
            return;
        };
        self.non_null += 1;
        let better = match self.function {
            AggregateFunction::Sum | AggregateFunction::Avg => {
                T::add(&mut self.sum, value);
                return;
            }
            AggregateFunction::Min => |best: T, value: T| value.less(best),
            AggregateFunction::Max => |best: T, value: T| best.less(value),
            AggregateFunction::Count | AggregateFunction::CountDistinct => return,
        };
        if self
            .extremes
            .front()
            .is_none_or(|&(_, best)| better(best, value))
        {
            self.extremes.clear();
            self.extremes.push_back((position, value));
        }
    }

    /// An unbounded frame's state, for a checkpoint.
    pub(super) fn total(&self) -> Total<T> {
        let (finite, special) = T::sum_parts(&self.sum);
        let value = match self.function {
            AggregateFunction::Sum | AggregateFunction::Avg => Some(finite),
            AggregateFunction::Min | AggregateFunction::Max => {
                self.extremes.front().map(|&(_, v)| v)
            }
            AggregateFunction::Count | AggregateFunction::CountDistinct => None,
        };
        Total {
            non_null: self.non_null,
            value,
            special,
        }
    }

    /// Restores an unbounded frame's state saved by [`Column::total`].
    pub(super) fn restore_total(&mut self, total: Total<T>) {
        self.non_null = total.non_null;
        match self.function {
            AggregateFunction::Sum | AggregateFunction::Avg => {
                self.sum = T::sum_from_parts(total.value.unwrap_or(T::ZERO), total.special);
            }
            AggregateFunction::Min | AggregateFunction::Max => {
                self.extremes = total.value.map(|v| (0, v)).into_iter().collect();
            }
            AggregateFunction::Count | AggregateFunction::CountDistinct => {}
        }
    }

    /// Removes the oldest row, at `position`.
    fn pop(&mut self, position: u64) {
        if self.is_extreme() {
            while self.extremes.front().is_some_and(|&(p, _)| p <= position) {
                self.extremes.pop_front();
            }
            return;
        }
        let value = if self.keeps_values() {
            self.values.pop_front()
        } else {
            None
        };
        if self.nulls.front() == Some(&position) {
            self.nulls.pop_front();
            return;
        }
        self.non_null -= 1;
        if let Some(value) = value {
            T::sub(&mut self.sum, value);
        }
    }

    /// The aggregate over the frame.
    fn answer(&self) -> Answer {
        if self.function == AggregateFunction::Count {
            return Answer::Int(self.non_null as i64);
        }
        match self.function {
            AggregateFunction::Min | AggregateFunction::Max => self
                .extremes
                .front()
                .map_or(Answer::Null, |&(_, v)| v.answer()),
            _ if self.non_null == 0 => Answer::Null,
            AggregateFunction::Avg => {
                Answer::Float(T::total(&self.sum).as_f64() / self.non_null as f64)
            }
            _ => T::total(&self.sum).answer(),
        }
    }

    /// The frame's `len` rows from position `front` on as a checkpoint keeps them: what
    /// restores this column when pushed again (for MIN and MAX only the candidates, the
    /// other rows null).
    pub(super) fn saved(&self, front: u64, len: usize) -> Vec<Option<T>> {
        if self.is_extreme() {
            let mut out = vec![None; len];
            for &(p, v) in &self.extremes {
                out[(p - front) as usize] = Some(v);
            }
            return out;
        }
        let mut nulls = self.nulls.iter().peekable();
        (0..len)
            .map(|i| {
                let position = front + i as u64;
                if nulls.next_if(|&&p| p == position).is_some() {
                    None
                } else {
                    Some(self.values.get(i).copied().unwrap_or(T::ZERO))
                }
            })
            .collect()
    }
}

/// One aggregate's value for one row.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    Null,
    Int(i64),
    Float(f64),
}

impl FrameRows {
    pub(super) fn new(running: Vec<Running>, unbounded: bool) -> Self {
        FrameRows {
            times: VecDeque::new(),
            pushed: 0,
            running,
            unbounded,
        }
    }

    /// Rows in the frame.
    pub(super) fn len(&self) -> u64 {
        if self.unbounded {
            self.pushed
        } else {
            self.times.len() as u64
        }
    }

    /// Whether the frame keeps totals instead of rows.
    pub(super) fn is_unbounded(&self) -> bool {
        self.unbounded
    }

    /// Restores an unbounded frame's length.
    pub(super) fn set_len(&mut self, rows: u64) {
        self.pushed = rows;
    }

    /// Adds row `row` of `columns` (the frame's aggregates' inputs, in its order) at `time`.
    pub(super) fn push(&mut self, time: i64, columns: &[&ColumnValues<'_>], row: usize) {
        let position = self.pushed;
        self.pushed += 1;
        if !self.unbounded {
            self.times.push_back(time);
        }
        for (running, column) in self.running.iter_mut().zip(columns) {
            match (running, column) {
                (Running::Int(c), ColumnValues::Int(values, nulls)) => {
                    c.push(position, valid(*nulls, row).then(|| values[row]));
                }
                (Running::Float(c), ColumnValues::Float(values, nulls)) => {
                    c.push(position, valid(*nulls, row).then(|| values[row]));
                }
                _ => {}
            }
        }
    }

    /// Adds a row whose values are given (a restored checkpoint).
    pub(super) fn push_values(&mut self, time: i64, values: &[Restored]) {
        let position = self.pushed;
        self.pushed += 1;
        self.times.push_back(time);
        for (running, value) in self.running.iter_mut().zip(values) {
            match (running, value) {
                (Running::Int(c), Restored::Int(v)) => c.push(position, *v),
                (Running::Float(c), Restored::Float(v)) => c.push(position, *v),
                _ => {}
            }
        }
    }

    /// The position of the oldest row in the frame.
    pub(super) fn front(&self) -> u64 {
        self.pushed - self.times.len() as u64
    }

    fn pop(&mut self) {
        let position = self.front();
        self.times.pop_front();
        for running in &mut self.running {
            match running {
                Running::Rows => {}
                Running::Int(c) => c.pop(position),
                Running::Float(c) => c.pop(position),
            }
        }
    }

    /// Drops the rows older than `bound` (a RANGE frame's lower end).
    pub(super) fn evict_before(&mut self, bound: i64) {
        while self.times.front().is_some_and(|&t| t < bound) {
            self.pop();
        }
    }

    /// Keeps the newest `rows` rows (a ROWS frame).
    pub(super) fn keep_last(&mut self, rows: u64) {
        while self.times.len() as u64 > rows {
            self.pop();
        }
    }

    /// Writes the frame's aggregates into position `at` of `outputs[members[j]]` (`j`: the
    /// frame's aggregates, in its order).
    pub(super) fn answer(&self, outputs: &mut [OutputSlice<'_>], members: &[usize], at: usize) {
        for (running, &i) in self.running.iter().zip(members) {
            let answer = match running {
                Running::Rows => Answer::Int(self.len() as i64),
                Running::Int(c) => c.answer(),
                Running::Float(c) => c.answer(),
            };
            outputs[i].set(at, answer);
        }
    }
}

/// A value read back from a checkpoint, in the aggregate's domain.
#[derive(Debug, Clone, Copy)]
pub(super) enum Restored {
    /// `COUNT(*)` keeps no value.
    None,
    Int(Option<i64>),
    Float(Option<f64>),
}

/// One aggregate's output column while rows are answered out of order.
#[derive(Debug)]
pub(super) enum Output {
    Int(Vec<i64>, Vec<bool>),
    Float(Vec<f64>, Vec<bool>),
}

/// A run of an [`Output`]'s positions, written by one piece of keys.
#[derive(Debug)]
pub(super) enum OutputSlice<'a> {
    Int(&'a mut [i64], &'a mut [bool]),
    Float(&'a mut [f64], &'a mut [bool]),
}

impl Output {
    /// `rows` unset values, integers or floats.
    pub(super) fn new(integer: bool, rows: usize) -> Self {
        if integer {
            Output::Int(vec![0; rows], vec![false; rows])
        } else {
            Output::Float(vec![0.0; rows], vec![false; rows])
        }
    }

    pub(super) fn slice(&mut self) -> OutputSlice<'_> {
        match self {
            Output::Int(values, valid) => OutputSlice::Int(values, valid),
            Output::Float(values, valid) => OutputSlice::Float(values, valid),
        }
    }

    /// The values back in row order.
    pub(super) fn scatter(self, by_key: &RowsByKey, parallel: bool) -> Output {
        match self {
            Output::Int(values, valid) => Output::Int(
                by_key.scatter(&values, parallel),
                by_key.scatter(&valid, parallel),
            ),
            Output::Float(values, valid) => Output::Float(
                by_key.scatter(&values, parallel),
                by_key.scatter(&valid, parallel),
            ),
        }
    }

    /// The column as Arrow; `nullable: false` drops the (all-true) validity.
    pub(super) fn finish(self, nullable: bool) -> ArrayRef {
        let nulls = |valid: Vec<bool>| nullable.then(|| NullBuffer::from(valid));
        match self {
            Output::Int(values, valid) => {
                std::sync::Arc::new(Int64Array::new(values.into(), nulls(valid)))
            }
            Output::Float(values, valid) => {
                std::sync::Arc::new(Float64Array::new(values.into(), nulls(valid)))
            }
        }
    }
}

impl<'a> OutputSlice<'a> {
    /// The first `mid` positions and the rest.
    pub(super) fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            OutputSlice::Int(values, valid) => {
                let ((a, b), (c, d)) = (values.split_at_mut(mid), valid.split_at_mut(mid));
                (OutputSlice::Int(a, c), OutputSlice::Int(b, d))
            }
            OutputSlice::Float(values, valid) => {
                let ((a, b), (c, d)) = (values.split_at_mut(mid), valid.split_at_mut(mid));
                (OutputSlice::Float(a, c), OutputSlice::Float(b, d))
            }
        }
    }

    fn set(&mut self, at: usize, answer: Answer) {
        match (self, answer) {
            (OutputSlice::Int(values, valid), Answer::Int(v)) => {
                values[at] = v;
                valid[at] = true;
            }
            (OutputSlice::Float(values, valid), Answer::Float(v)) => {
                values[at] = v;
                valid[at] = true;
            }
            // The plan fixes each output's type; a null (or, never, a mismatch) stays unset.
            (OutputSlice::Int(_, valid) | OutputSlice::Float(_, valid), _) => valid[at] = false,
        }
    }
}

fn valid(nulls: Option<&NullBuffer>, row: usize) -> bool {
    nulls.is_none_or(|n| n.is_valid(row))
}
