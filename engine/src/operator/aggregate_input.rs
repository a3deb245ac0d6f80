//! Aggregate inputs as backends take them: each aggregate's column widened to i64 or f64 and
//! viewed as [`ColumnValues`].

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use crate::aggregate::NumericKind;
use crate::backend::ColumnValues;
use crate::error::{Error, Result};

/// Per aggregate, its input column of `batch` widened to its domain (`None`: `COUNT(*)`).
/// `inputs` gives each aggregate's column index and domain.
pub(super) fn widen(
    inputs: &[Option<(usize, NumericKind)>],
    batch: &RecordBatch,
) -> Result<Vec<Option<ArrayRef>>> {
    inputs
        .iter()
        .map(|input| match input {
            None => Ok(None),
            Some((index, kind)) => {
                let column = batch.column(*index);
                let target = kind.data_type();
                if column.data_type() == &target {
                    Ok(Some(column.clone()))
                } else {
                    cast(column, &target)
                        .map(Some)
                        .map_err(Error::arrow("widening an aggregate input"))
                }
            }
        })
        .collect()
}

/// The widened columns as a backend reads them.
pub(super) fn column_values(widened: &[Option<ArrayRef>]) -> Vec<ColumnValues<'_>> {
    widened
        .iter()
        .map(|array| match array {
            None => ColumnValues::Rows,
            Some(a) if a.data_type() == &DataType::Int64 => {
                ColumnValues::Int(a.as_primitive::<Int64Type>().values(), nulls(a))
            }
            Some(a) => ColumnValues::Float(a.as_primitive::<Float64Type>().values(), nulls(a)),
        })
        .collect()
}

/// An array's null buffer, or `None` when it has no nulls (the accumulators' fast path).
fn nulls(array: &ArrayRef) -> Option<&NullBuffer> {
    array.nulls().filter(|n| n.null_count() > 0)
}
