//! One key's running aggregate over the rows of one frame: counts and sums kept running (a
//! leaving value is subtracted), MIN and MAX as monotonic queues of candidates, so a row costs
//! O(1) amortised whatever the frame's length. The rows themselves (what a leaving row must
//! undo) are kept by the frame's history, not here.

use std::collections::VecDeque;

use crate::aggregate::AggregateFunction;

/// One key's running state for one aggregate.
///
/// SUM and AVG use `sum`, every function but MIN and MAX `non_null`; MIN and MAX keep
/// (sequence, value) of every value that can still become the answer, the answer first, each
/// beating all that follow it (in an unbounded frame only the answer). The newest non-null
/// value is always among them, so none left means no non-null value in the frame.
#[derive(Debug, Clone)]
pub(super) struct Acc<T: Num> {
    pub(super) non_null: u64,
    pub(super) sum: T::Sum,
    pub(super) extremes: VecDeque<(u64, T)>,
}

impl<T: Num> Default for Acc<T> {
    fn default() -> Self {
        Acc {
            non_null: 0,
            sum: T::Sum::default(),
            extremes: VecDeque::new(),
        }
    }
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

impl<T: Num> Acc<T> {
    /// Takes in the row numbered `seq` (its frame's count of rows pushed before it).
    #[inline]
    pub(super) fn push(
        &mut self,
        function: AggregateFunction,
        unbounded: bool,
        seq: u64,
        value: Option<T>,
    ) {
        let Some(value) = value else {
            return;
        };
        self.non_null += 1;
        match function {
            AggregateFunction::Sum | AggregateFunction::Avg => T::add(&mut self.sum, value),
            AggregateFunction::Min => {
                self.candidate(unbounded, seq, value, |new, old| new.less(old))
            }
            AggregateFunction::Max => {
                self.candidate(unbounded, seq, value, |new, old| old.less(new))
            }
            AggregateFunction::Count | AggregateFunction::CountDistinct => {}
        }
    }

    /// Keeps `value` as a MIN or MAX candidate; `beats(new, old)`: whether `new` wins.
    #[inline]
    fn candidate(&mut self, unbounded: bool, seq: u64, value: T, beats: impl Fn(T, T) -> bool) {
        if unbounded {
            if self
                .extremes
                .front()
                .is_none_or(|&(_, best)| beats(value, best))
            {
                self.extremes.clear();
                self.extremes.push_back((seq, value));
            }
            return;
        }
        // A kept value that `value` ties or beats can never be the answer again: `value`
        // stays in the frame at least as long.
        while self
            .extremes
            .back()
            .is_some_and(|&(_, old)| !beats(old, value))
        {
            self.extremes.pop_back();
        }
        self.extremes.push_back((seq, value));
    }

    /// Undoes the row numbered `seq`, which leaves the frame; `value`: what it held (for SUM
    /// and AVG its value; for the others any `Some` when it was not null).
    #[inline]
    pub(super) fn leave(&mut self, function: AggregateFunction, seq: u64, value: Option<T>) {
        match function {
            AggregateFunction::Min | AggregateFunction::Max => {
                if self.extremes.front().is_some_and(|&(s, _)| s <= seq) {
                    self.extremes.pop_front();
                }
            }
            AggregateFunction::Sum | AggregateFunction::Avg => {
                if let Some(value) = value {
                    self.non_null -= 1;
                    if self.non_null == 0 {
                        // Nothing left: start again from an exact zero, not a rounding residue.
                        self.sum = T::Sum::default();
                    } else {
                        T::sub(&mut self.sum, value);
                    }
                }
            }
            AggregateFunction::Count | AggregateFunction::CountDistinct => {
                if value.is_some() {
                    self.non_null -= 1;
                }
            }
        }
    }

    /// The aggregate over the frame.
    #[inline]
    pub(super) fn answer(&self, function: AggregateFunction) -> Answer {
        match function {
            AggregateFunction::Count | AggregateFunction::CountDistinct => {
                Answer::Int(self.non_null as i64)
            }
            AggregateFunction::Min | AggregateFunction::Max => self
                .extremes
                .front()
                .map_or(Answer::Null, |&(_, v)| v.answer()),
            _ if self.non_null == 0 => Answer::Null,
            AggregateFunction::Avg => {
                Answer::Float(T::total(&self.sum).as_f64() / self.non_null as f64)
            }
            AggregateFunction::Sum => T::total(&self.sum).answer(),
        }
    }

    /// An unbounded frame's state, for a checkpoint.
    pub(super) fn total(&self, function: AggregateFunction) -> Total<T> {
        let (finite, special) = T::sum_parts(&self.sum);
        let value = match function {
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

    /// Restores an unbounded frame's state saved by [`Acc::total`].
    pub(super) fn restore_total(&mut self, function: AggregateFunction, total: Total<T>) {
        self.non_null = total.non_null;
        match function {
            AggregateFunction::Sum | AggregateFunction::Avg => {
                self.sum = T::sum_from_parts(total.value.unwrap_or(T::ZERO), total.special);
            }
            AggregateFunction::Min | AggregateFunction::Max => {
                self.extremes = total.value.map(|v| (0, v)).into_iter().collect();
            }
            AggregateFunction::Count | AggregateFunction::CountDistinct => {}
        }
    }
}

/// A value type the frames aggregate (i64, f64).
pub(super) trait Num: Copy + std::fmt::Debug + Send + Sync {
    /// The value as kept in a frame's history (its bits).
    fn to_bits(self) -> u64;
    fn from_bits(bits: u64) -> Self;
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
    fn to_bits(self) -> u64 {
        self as u64
    }
    fn from_bits(bits: u64) -> i64 {
        bits as i64
    }
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
    fn to_bits(self) -> u64 {
        f64::to_bits(self)
    }
    fn from_bits(bits: u64) -> f64 {
        f64::from_bits(bits)
    }
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

/// One aggregate's value for one row.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer {
    Null,
    Int(i64),
    Float(f64),
}
