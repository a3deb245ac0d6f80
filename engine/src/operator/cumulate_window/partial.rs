//! Partial aggregates of a cumulating window: what each slice computes and how slices merge.
//!
//! A slice's aggregates are a tumbling window's outputs; merging them must give the window's
//! answer over all its slices. `count`, `sum`, `min` and `max` merge as themselves; `avg`
//! travels as `sum` and `count` and is divided at the end; `count_distinct` cannot be merged
//! from slice counts and is refused.

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int64Array};
use arrow::datatypes::{DataType, Float64Type, Int64Type, Schema};

use crate::aggregate::{AggregateFunction, AggregateSpec, NumericKind};
use crate::error::{Error, Result};

/// One value of a partial aggregate; `None` when the slices held no value (a sum of nulls).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scalar {
    Int(Option<i64>),
    Float(Option<f64>),
}

/// How two values of one partial combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    Add,
    Min,
    Max,
}

/// One aggregate computed per slice.
#[derive(Debug, Clone, Copy)]
pub(super) struct Partial {
    merge: Merge,
    float: bool,
}

/// How a user's aggregate is answered from the partials.
#[derive(Debug, Clone, Copy)]
pub(super) enum Output {
    /// Partial `i` as it is.
    Partial(usize),
    /// Partial `sum` divided by partial `count`, as f64 (null when the count is 0).
    Average { sum: usize, count: usize },
}

/// The slice aggregates for `aggregates` (named `__slice_<i>`), how each merges, and how each
/// of `aggregates` is answered from them.
pub(super) fn plan(
    aggregates: &[AggregateSpec],
    input: &Schema,
    setting: &str,
) -> Result<(Vec<AggregateSpec>, Vec<Partial>, Vec<Output>)> {
    let mut slices = Vec::new();
    let mut partials = Vec::new();
    let mut outputs = Vec::new();
    for (i, aggregate) in aggregates.iter().enumerate() {
        let key = format!("{setting}.aggregates[{i}]");
        let float = aggregate.resolve(input, &key)? == Some(NumericKind::Float);
        let mut slice = |function: AggregateFunction, merge: Merge, float: bool| {
            slices.push(AggregateSpec {
                function,
                column: aggregate.column.clone(),
                alias: format!("__slice_{}", slices.len()),
            });
            partials.push(Partial { merge, float });
            partials.len() - 1
        };
        let output = match aggregate.function {
            AggregateFunction::Count => {
                Output::Partial(slice(AggregateFunction::Count, Merge::Add, false))
            }
            AggregateFunction::Sum => {
                Output::Partial(slice(AggregateFunction::Sum, Merge::Add, float))
            }
            AggregateFunction::Min => {
                Output::Partial(slice(AggregateFunction::Min, Merge::Min, float))
            }
            AggregateFunction::Max => {
                Output::Partial(slice(AggregateFunction::Max, Merge::Max, float))
            }
            AggregateFunction::Avg => Output::Average {
                sum: slice(AggregateFunction::Sum, Merge::Add, float),
                count: slice(AggregateFunction::Count, Merge::Add, false),
            },
            AggregateFunction::CountDistinct => {
                return Err(Error::config(
                    key,
                    "count_distinct cannot be merged from a cumulating window's slices; use a \
                     tumbling or hopping window",
                ));
            }
        };
        outputs.push(output);
    }
    Ok((slices, partials, outputs))
}

impl Partial {
    /// Row `row` of this partial's column in a slice batch.
    pub(super) fn read(self, column: &ArrayRef, row: usize) -> Scalar {
        let valid = column.is_valid(row);
        if self.float {
            Scalar::Float(valid.then(|| column.as_primitive::<Float64Type>().value(row)))
        } else {
            Scalar::Int(valid.then(|| column.as_primitive::<Int64Type>().value(row)))
        }
    }

    /// `into` combined with `value` (a missing value leaves `into` as it is).
    pub(super) fn merge(self, into: &mut Scalar, value: Scalar) {
        *into = match (*into, value) {
            (Scalar::Int(Some(a)), Scalar::Int(Some(b))) => Scalar::Int(Some(match self.merge {
                // Integer sums wrap, as the window's own do.
                Merge::Add => a.wrapping_add(b),
                Merge::Min => a.min(b),
                Merge::Max => a.max(b),
            })),
            (Scalar::Float(Some(a)), Scalar::Float(Some(b))) => {
                Scalar::Float(Some(match self.merge {
                    Merge::Add => a + b,
                    // The window's total order: NaN above +inf, -0.0 below 0.0.
                    Merge::Min => a.min_total(b),
                    Merge::Max => a.max_total(b),
                }))
            }
            (Scalar::Int(None), value) | (Scalar::Float(None), value) => value,
            (kept, _) => kept,
        };
    }

    /// The value before any slice: none.
    pub(super) fn empty(self) -> Scalar {
        if self.float {
            Scalar::Float(None)
        } else {
            Scalar::Int(None)
        }
    }

    /// The data type of this partial's column.
    pub(super) fn data_type(self) -> DataType {
        if self.float {
            DataType::Float64
        } else {
            DataType::Int64
        }
    }
}

trait TotalOrder {
    fn min_total(self, other: Self) -> Self;
    fn max_total(self, other: Self) -> Self;
}

impl TotalOrder for f64 {
    fn min_total(self, other: f64) -> f64 {
        if other.total_cmp(&self).is_lt() {
            other
        } else {
            self
        }
    }
    fn max_total(self, other: f64) -> f64 {
        if other.total_cmp(&self).is_gt() {
            other
        } else {
            self
        }
    }
}

/// The column of `values`, one [`Scalar`] per row, all of `data_type`.
pub(super) fn column(values: impl Iterator<Item = Scalar>, data_type: &DataType) -> ArrayRef {
    if *data_type == DataType::Float64 {
        std::sync::Arc::new(
            values
                .map(|value| match value {
                    Scalar::Float(value) => value,
                    Scalar::Int(value) => value.map(|v| v as f64),
                })
                .collect::<Float64Array>(),
        )
    } else {
        std::sync::Arc::new(
            values
                .map(|value| match value {
                    Scalar::Int(value) => value,
                    Scalar::Float(value) => value.map(|v| v as i64),
                })
                .collect::<Int64Array>(),
        )
    }
}

impl Output {
    /// The answer from merged partial `values`.
    pub(super) fn answer(self, values: &[Scalar]) -> Scalar {
        match self {
            Output::Partial(i) => values[i],
            Output::Average { sum, count } => {
                let count = match values[count] {
                    Scalar::Int(Some(count)) if count > 0 => count as f64,
                    _ => return Scalar::Float(None),
                };
                match values[sum] {
                    Scalar::Int(Some(sum)) => Scalar::Float(Some(sum as f64 / count)),
                    Scalar::Float(Some(sum)) => Scalar::Float(Some(sum / count)),
                    _ => Scalar::Float(None),
                }
            }
        }
    }
}
