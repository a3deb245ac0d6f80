//! The rows one key has in one OVER frame, and the running aggregates over them.
//!
//! A frame slides: rows enter at the back in emission order and leave at the front. Counts
//! and sums are kept running (a leaving value is subtracted), min and max as monotonic
//! queues of candidates, so each row costs O(1) amortised whatever the frame's length.

use std::collections::VecDeque;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::buffer::NullBuffer;

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

/// The values of one aggregate input in the frame and what is kept running over them.
#[derive(Debug, Clone)]
pub(super) struct Column<T: Num> {
    function: AggregateFunction,
    /// The frame's values, oldest first (`None`: null).
    pub(super) values: VecDeque<Option<T>>,
    non_null: u64,
    /// For `SUM` and `AVG`.
    pub(super) sum: T::Sum,
    /// For `MIN` and `MAX`: (position, value) of every value that can still become the
    /// answer, the answer first; each beats all that follow it.
    extremes: VecDeque<(u64, T)>,
}

/// A value type the frames aggregate (i64, f64).
pub(super) trait Num: Copy + std::fmt::Debug {
    /// What a running sum keeps.
    type Sum: Copy + Default + std::fmt::Debug;
    fn add(sum: &mut Self::Sum, value: Self);
    fn sub(sum: &mut Self::Sum, value: Self);
    fn total(sum: &Self::Sum) -> Self;
    fn as_f64(self) -> f64;
    fn answer(self) -> Answer;
    /// The order of MIN and MAX, as the window accumulators order values.
    fn less(self, other: Self) -> bool;
}

impl Num for i64 {
    type Sum = i64;
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
}

impl<T: Num> Column<T> {
    pub(super) fn new(function: AggregateFunction) -> Self {
        Column {
            function,
            values: VecDeque::new(),
            non_null: 0,
            sum: T::Sum::default(),
            extremes: VecDeque::new(),
        }
    }

    fn push(&mut self, position: u64, value: Option<T>) {
        self.values.push_back(value);
        let Some(value) = value else { return };
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

    /// Removes the oldest value; `front` is the position of the oldest row that stays.
    fn pop(&mut self, front: u64) {
        if let Some(Some(value)) = self.values.pop_front() {
            self.non_null -= 1;
            if matches!(
                self.function,
                AggregateFunction::Sum | AggregateFunction::Avg
            ) {
                T::sub(&mut self.sum, value);
            }
        }
        while self.extremes.front().is_some_and(|&(p, _)| p < front) {
            self.extremes.pop_front();
        }
    }

    /// The aggregate over the frame.
    fn answer(&self) -> Answer {
        if self.function == AggregateFunction::Count {
            return Answer::Int(self.non_null as i64);
        }
        if self.non_null == 0 {
            return Answer::Null;
        }
        match self.function {
            AggregateFunction::Avg => {
                Answer::Float(T::total(&self.sum).as_f64() / self.non_null as f64)
            }
            AggregateFunction::Min | AggregateFunction::Max => self
                .extremes
                .front()
                .map_or(Answer::Null, |&(_, v)| v.answer()),
            _ => T::total(&self.sum).answer(),
        }
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
    pub(super) fn new(running: Vec<Running>) -> Self {
        FrameRows {
            times: VecDeque::new(),
            pushed: 0,
            running,
        }
    }

    /// Adds row `row` of `columns` (the frame's aggregates' inputs, in its order) at `time`.
    pub(super) fn push(&mut self, time: i64, columns: &[&ColumnValues<'_>], row: usize) {
        let position = self.pushed;
        self.pushed += 1;
        self.times.push_back(time);
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

    fn pop(&mut self) {
        self.times.pop_front();
        let front = self.pushed - self.times.len() as u64;
        for running in &mut self.running {
            match running {
                Running::Rows => {}
                Running::Int(c) => c.pop(front),
                Running::Float(c) => c.pop(front),
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

    /// Writes the frame's aggregates for row `row` into `outputs` (the frame's outputs, in
    /// its order).
    pub(super) fn answer(&self, outputs: &mut [&mut Output], row: usize) {
        for (running, output) in self.running.iter().zip(outputs.iter_mut()) {
            let answer = match running {
                Running::Rows => Answer::Int(self.times.len() as i64),
                Running::Int(c) => c.answer(),
                Running::Float(c) => c.answer(),
            };
            output.set(row, answer);
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

impl Output {
    fn set(&mut self, row: usize, answer: Answer) {
        match (self, answer) {
            (Output::Int(values, valid), Answer::Int(v)) => {
                values[row] = v;
                valid[row] = true;
            }
            (Output::Float(values, valid), Answer::Float(v)) => {
                values[row] = v;
                valid[row] = true;
            }
            // The plan fixes each output's type; a null (or, never, a mismatch) stays unset.
            (Output::Int(_, valid) | Output::Float(_, valid), _) => valid[row] = false,
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

fn valid(nulls: Option<&NullBuffer>, row: usize) -> bool {
    nulls.is_none_or(|n| n.is_valid(row))
}
