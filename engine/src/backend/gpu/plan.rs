//! How a window plan's aggregates map to GPU accumulator words, and back to Arrow arrays.
//!
//! Each group keeps `stride` u32 words: every aggregate owns a fixed run of them at `acc_at`
//! (the layout `shaders/accumulators.wgsl` writes). `decode` is the host half of that contract:
//! it turns the words of closed groups into the same arrays the CPU backend produces.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};

use super::fixed_point::fixed_point_sum;
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::AggregatePlan;
use crate::error::{Error, Result};

/// A GPU accumulator operation (the `OP_*` constants of `shaders/common.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum AggregateOp {
    CountRows = 0,
    Count = 1,
    SumInt = 2,
    SumFloat = 3,
    MinInt = 4,
    MaxInt = 5,
    MinFloat = 6,
    MaxFloat = 7,
    DistinctInt = 8,
    DistinctFloat = 9,
}

/// Fixed-point float sums: where the count sits (the rest: `fixed_point.rs`).
const FX_COUNT: usize = 18;

impl AggregateOp {
    fn for_plan(plan: &AggregatePlan) -> Result<Self> {
        use AggregateFunction as F;
        use NumericKind::{Float, Int};
        Ok(match (plan.function, plan.input) {
            (F::Count, None) => AggregateOp::CountRows,
            (F::Count, Some(_)) => AggregateOp::Count,
            (F::Sum | F::Avg, Some(Int)) => AggregateOp::SumInt,
            (F::Sum | F::Avg, Some(Float)) => AggregateOp::SumFloat,
            (F::Min, Some(Int)) => AggregateOp::MinInt,
            (F::Max, Some(Int)) => AggregateOp::MaxInt,
            (F::Min, Some(Float)) => AggregateOp::MinFloat,
            (F::Max, Some(Float)) => AggregateOp::MaxFloat,
            (F::CountDistinct, Some(Int)) => AggregateOp::DistinctInt,
            (F::CountDistinct, Some(Float)) => AggregateOp::DistinctFloat,
            (function, None) => {
                return Err(Error::Internal(format!(
                    "{} without an input column reached the GPU backend",
                    function.name()
                )));
            }
        })
    }

    /// Words per group (`op_words` in `shaders/accumulators.wgsl`).
    fn words(self) -> u32 {
        match self {
            AggregateOp::SumInt => 4,
            AggregateOp::SumFloat => 20,
            AggregateOp::MinInt
            | AggregateOp::MaxInt
            | AggregateOp::MinFloat
            | AggregateOp::MaxFloat => 4,
            _ => 2,
        }
    }

    /// Whether the op reads an input column.
    pub(crate) fn has_input(self) -> bool {
        self != AggregateOp::CountRows
    }

    pub(crate) fn is_distinct(self) -> bool {
        matches!(self, AggregateOp::DistinctInt | AggregateOp::DistinctFloat)
    }
}

/// One aggregate's place in the accumulator words.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccSlot {
    pub op: AggregateOp,
    pub function: AggregateFunction,
    /// First word, relative to the group's first word.
    pub acc_at: u32,
}

/// The accumulator layout of one plan.
#[derive(Debug, Clone)]
pub(crate) struct AccLayout {
    pub slots: Vec<AccSlot>,
    /// Words per group.
    pub stride: u32,
}

impl AccLayout {
    pub(crate) fn new(aggregates: &[AggregatePlan]) -> Result<Self> {
        let mut stride = 0;
        let slots = aggregates
            .iter()
            .map(|plan| {
                let op = AggregateOp::for_plan(plan)?;
                let slot = AccSlot {
                    op,
                    function: plan.function,
                    acc_at: stride,
                };
                stride += op.words();
                Ok(slot)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AccLayout { slots, stride })
    }

    pub(crate) fn has_distinct(&self) -> bool {
        self.slots.iter().any(|s| s.op.is_distinct())
    }

    pub(crate) fn has_min_max(&self) -> bool {
        self.slots.iter().any(|s| {
            matches!(
                s.op,
                AggregateOp::MinInt
                    | AggregateOp::MaxInt
                    | AggregateOp::MinFloat
                    | AggregateOp::MaxFloat
            )
        })
    }

    /// The output arrays of `groups` closed groups whose words are `acc(i)` for group `i`.
    pub(crate) fn decode<'a>(
        &self,
        groups: usize,
        acc: impl Fn(usize) -> &'a [u32],
    ) -> Vec<ArrayRef> {
        self.slots
            .iter()
            .map(|slot| {
                let at = slot.acc_at as usize;
                let words = |i: usize| &acc(i)[at..];
                decode_one(slot, groups, words)
            })
            .collect()
    }
}

fn u64_at(w: &[u32], i: usize) -> u64 {
    u64::from(w[i]) | (u64::from(w[i + 1]) << 32)
}

fn decode_one<'a>(slot: &AccSlot, groups: usize, words: impl Fn(usize) -> &'a [u32]) -> ArrayRef {
    let avg = slot.function == AggregateFunction::Avg;
    match slot.op {
        AggregateOp::CountRows
        | AggregateOp::Count
        | AggregateOp::DistinctInt
        | AggregateOp::DistinctFloat => Arc::new(Int64Array::from_iter_values(
            (0..groups).map(|i| u64_at(words(i), 0) as i64),
        )),
        AggregateOp::SumInt => {
            let value = |i: usize| {
                let w = words(i);
                let count = u64_at(w, 2);
                (count > 0).then(|| (u64_at(w, 0) as i64, count))
            };
            if avg {
                Arc::new(
                    (0..groups)
                        .map(|i| value(i).map(|(sum, count)| sum as f64 / count as f64))
                        .collect::<Float64Array>(),
                )
            } else {
                Arc::new(
                    (0..groups)
                        .map(|i| value(i).map(|(sum, _)| sum))
                        .collect::<Int64Array>(),
                )
            }
        }
        AggregateOp::SumFloat => Arc::new(
            (0..groups)
                .map(|i| {
                    let w = words(i);
                    let count = u64_at(w, FX_COUNT);
                    (count > 0).then(|| {
                        let sum = fixed_point_sum(w);
                        if avg { sum / count as f64 } else { sum }
                    })
                })
                .collect::<Float64Array>(),
        ),
        AggregateOp::MinInt | AggregateOp::MaxInt => Arc::new(
            (0..groups)
                .map(|i| {
                    let w = words(i);
                    (w[2] != 0).then(|| (order_key(w) ^ (1 << 63)) as i64)
                })
                .collect::<Int64Array>(),
        ),
        AggregateOp::MinFloat | AggregateOp::MaxFloat => Arc::new(
            (0..groups)
                .map(|i| {
                    let w = words(i);
                    (w[2] != 0).then(|| {
                        let key = order_key(w);
                        let bits = if key >> 63 == 1 {
                            key & !(1 << 63)
                        } else {
                            !key
                        };
                        f64::from_bits(bits)
                    })
                })
                .collect::<Float64Array>(),
        ),
    }
}

/// The order key of a min/max accumulator: one little-endian u64 (low word first).
fn order_key(w: &[u32]) -> u64 {
    u64_at(w, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_packs_aggregates_back_to_back() {
        let plans = [
            AggregatePlan {
                function: AggregateFunction::Count,
                input: None,
            },
            AggregatePlan {
                function: AggregateFunction::Avg,
                input: Some(NumericKind::Float),
            },
            AggregatePlan {
                function: AggregateFunction::Max,
                input: Some(NumericKind::Int),
            },
        ];
        let layout = AccLayout::new(&plans).expect("layout");
        let at: Vec<u32> = layout.slots.iter().map(|s| s.acc_at).collect();
        assert_eq!(at, vec![0, 2, 22]);
        assert_eq!(layout.stride, 26);
    }
}
