//! Aggregate inputs as backends take them: each aggregate's column widened to i64 or f64 and
//! viewed as [`ColumnValues`].

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch};
use arrow::buffer::NullBuffer;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type, Int64Type};

use xxhash_rust::xxh3::xxh3_64;

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
                if let Some(hashed) = hashed(column) {
                    Ok(Some(hashed))
                } else if column.data_type() == &target {
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

/// A string or bytes column (a `COUNT(DISTINCT)` input) as the xxh3 hashes of its values,
/// nulls kept; `None` for any other column.
fn hashed(column: &ArrayRef) -> Option<ArrayRef> {
    let hash = |bytes: &[u8]| xxh3_64(bytes) as i64;
    let values: Int64Array = match column.data_type() {
        DataType::Utf8 => column
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| hash(s.as_bytes())))
            .collect(),
        DataType::LargeUtf8 => column
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(|s| hash(s.as_bytes())))
            .collect(),
        DataType::Utf8View => column
            .as_string_view()
            .iter()
            .map(|v| v.map(|s| hash(s.as_bytes())))
            .collect(),
        DataType::Binary => column
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(hash))
            .collect(),
        DataType::LargeBinary => column
            .as_binary::<i64>()
            .iter()
            .map(|v| v.map(hash))
            .collect(),
        DataType::BinaryView => column
            .as_binary_view()
            .iter()
            .map(|v| v.map(hash))
            .collect(),
        _ => return None,
    };
    Some(Arc::new(values))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::widen;
    use crate::aggregate::NumericKind;

    #[test]
    fn strings_widen_to_hashes_that_tell_values_apart_and_booleans_to_integers() {
        let names = StringArray::from(vec![Some("FR"), None, Some("DE"), Some("FR"), Some("")]);
        let flags =
            BooleanArray::from(vec![Some(true), Some(false), None, Some(true), Some(false)]);
        let schema = Schema::new(vec![
            Field::new("country", DataType::Utf8, true),
            Field::new("flag", DataType::Boolean, true),
        ]);
        let columns: Vec<ArrayRef> = vec![Arc::new(names), Arc::new(flags)];
        let batch = RecordBatch::try_new(Arc::new(schema), columns).expect("batch");
        let inputs = [Some((0, NumericKind::Int)), Some((1, NumericKind::Int))];
        let widened = widen(&inputs, &batch).expect("widen");
        let hashes = widened[0]
            .as_ref()
            .expect("hashed")
            .as_primitive::<Int64Type>();
        assert!(hashes.is_null(1), "a null stays null");
        assert_eq!(
            hashes.value(0),
            hashes.value(3),
            "equal strings, equal values"
        );
        let distinct = [hashes.value(0), hashes.value(2), hashes.value(4)];
        assert!(
            distinct[0] != distinct[1] && distinct[1] != distinct[2] && distinct[0] != distinct[2]
        );
        let flags = widened[1]
            .as_ref()
            .expect("cast")
            .as_primitive::<Int64Type>();
        assert_eq!(
            (flags.value(0), flags.value(1), flags.is_null(2)),
            (1, 0, true)
        );
    }
}
