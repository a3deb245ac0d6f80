//! The built-in functions (`lower`, `substr`, `coalesce`, `hour`, `regexp`, ...) and integer `/` and `%`.
//!
//! Arguments arrive already cast to the types [`super::types::call`] planned, so each function
//! reads one concrete array type. String functions make one pass with a builder; none
//! allocates a `String` per row.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, StringArray, StringBuilder, new_null_array,
};
use arrow::buffer::Buffer;
use arrow::compute::kernels::arity::binary;
use arrow::compute::kernels::cast::cast;
use arrow::compute::kernels::cmp;
use arrow::compute::kernels::concat_elements::concat_elements_utf8_many;
use arrow::compute::kernels::temporal::{DatePart, date_part};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{is_not_null, nullif};
use arrow::datatypes::{DataType, Float64Type, Int64Type};
use arrow::error::ArrowError;

use super::eval::Value;
use super::{BinaryOp, CastType, Function, regexp, temporal};

/// Calls `function` on `args`; `rows` is the batch length, used when scalars meet arrays.
pub(super) fn call(function: Function, args: &[Value], rows: usize) -> Result<Value, ArrowError> {
    match (function, args) {
        (Function::Lower, [input]) => {
            input.map(|array| change_case(array.as_string(), Case::Lower))
        }
        (Function::Upper, [input]) => {
            input.map(|array| change_case(array.as_string(), Case::Upper))
        }
        (Function::Trim, [input]) => input.map(|array| Ok(Arc::new(trim(array.as_string())))),
        (Function::Length, [input]) => {
            input.map(|array| Ok(Arc::new(char_length(array.as_string()))))
        }
        (Function::Abs, [input]) => input.map(abs),
        (Function::Concat, _) => {
            let (arrays, scalar) = aligned(args, rows)?;
            let strings: Vec<&StringArray> = arrays.iter().map(|array| array.as_string()).collect();
            Ok(Value::new(
                Arc::new(concat_elements_utf8_many(&strings)?),
                scalar,
            ))
        }
        (Function::Substr, [_, _] | [_, _, _]) => {
            let (arrays, scalar) = aligned(args, rows)?;
            let lengths = arrays.get(2).map(|array| array.as_primitive::<Int64Type>());
            let cut = substr(arrays[0].as_string(), arrays[1].as_primitive(), lengths);
            Ok(Value::new(Arc::new(cut), scalar))
        }
        (Function::Coalesce, _) => coalesce(args),
        (
            Function::Year
            | Function::Month
            | Function::Day
            | Function::Hour
            | Function::Minute
            | Function::Second,
            [input],
        ) => {
            let part = match function {
                Function::Year => DatePart::Year,
                Function::Month => DatePart::Month,
                Function::Day => DatePart::Day,
                Function::Hour => DatePart::Hour,
                Function::Minute => DatePart::Minute,
                _ => DatePart::Second,
            };
            input.map(|array| cast(&date_part(array.as_ref(), part)?, &DataType::Int64))
        }
        (Function::Regexp, [input, pattern]) => match constant_text(function, pattern)? {
            Some(pattern) => input.map(|array| regexp::is_match(array.as_string(), &pattern)),
            None => Ok(Value::Scalar(new_null_array(&DataType::Boolean, 1))),
        },
        (Function::RegexpExtract, [input, pattern, group @ ..]) => {
            let Some(pattern) = constant_text(function, pattern)? else {
                return Ok(Value::Scalar(new_null_array(&DataType::Utf8, 1)));
            };
            let whole: Value = Value::Scalar(Arc::new(Int64Array::from(vec![0])));
            let group = group.first().unwrap_or(&whole);
            let (arrays, scalar) = aligned(&[input.clone(), group.clone()], rows)?;
            let found = regexp::extract(arrays[0].as_string(), &pattern, arrays[1].as_primitive())?;
            Ok(Value::new(found, scalar))
        }
        (Function::RegexpReplace, [input, pattern, replacement]) => {
            let Some(pattern) = constant_text(function, pattern)? else {
                return Ok(Value::Scalar(new_null_array(&DataType::Utf8, 1)));
            };
            let (arrays, scalar) = aligned(&[input.clone(), replacement.clone()], rows)?;
            let replaced = regexp::replace(arrays[0].as_string(), &pattern, arrays[1].as_string())?;
            Ok(Value::new(replaced, scalar))
        }
        (Function::DateFormat, [input, pattern @ ..]) => {
            let pattern = match pattern.first() {
                Some(pattern) => constant_text(function, pattern)?,
                None => Some(temporal::DEFAULT_PATTERN.to_string()),
            };
            match pattern {
                Some(pattern) => input.map(|array| temporal::format(array, &pattern)),
                None => Ok(Value::Scalar(new_null_array(&DataType::Utf8, 1))),
            }
        }
        // Without a pattern, the same ISO 8601 reading as `cast(s as timestamp)`.
        (Function::ToTimestamp, [input]) => input.coerce(&CastType::Timestamp.data_type()),
        (Function::ToTimestamp, [input, pattern]) => match constant_text(function, pattern)? {
            Some(pattern) => input.map(|array| temporal::parse(array.as_string(), &pattern)),
            None => Ok(Value::Scalar(new_null_array(
                &CastType::Timestamp.data_type(),
                1,
            ))),
        },
        (Function::FloorTime | Function::CeilTime, [input, unit]) => {
            let unit = constant_millis(function, unit)?;
            let up = function == Function::CeilTime;
            input.map(|array| temporal::round(array, unit, up))
        }
        (Function::TimestampDiff, [unit, from, to]) => {
            let unit = constant_millis(function, unit)?;
            let (arrays, scalar) = aligned(&[from.clone(), to.clone()], rows)?;
            Ok(Value::new(
                temporal::difference(&arrays[0], &arrays[1], unit)?,
                scalar,
            ))
        }
        _ => Err(ArrowError::InvalidArgumentError(format!(
            "`{}` called with {} arguments",
            function.name(),
            args.len()
        ))),
    }
}

/// The text of a constant argument (a pattern), `None` when it is null.
///
/// The parser only lets constants into these places; an [`Expr`](super::Expr) built in code
/// that puts a column there is refused here rather than compiled once per row.
fn constant_text(function: Function, value: &Value) -> Result<Option<String>, ArrowError> {
    if !value.is_scalar() {
        return Err(ArrowError::InvalidArgumentError(format!(
            "the pattern of `{}` must be a constant",
            function.name()
        )));
    }
    let text = value.array().as_string::<i32>();
    Ok(text.is_valid(0).then(|| text.value(0).to_string()))
}

/// The length of a constant interval argument (a unit), in milliseconds.
fn constant_millis(function: Function, value: &Value) -> Result<i64, ArrowError> {
    let array = value.array();
    match array.as_primitive_opt::<arrow::datatypes::DurationMillisecondType>() {
        Some(unit) if value.is_scalar() && unit.is_valid(0) && unit.value(0) > 0 => {
            Ok(unit.value(0))
        }
        _ => Err(ArrowError::InvalidArgumentError(format!(
            "the unit of `{}` must be a constant",
            function.name()
        ))),
    }
}

/// All `args` as arrays of one length: one row if every argument is a scalar, else `rows`.
fn aligned(args: &[Value], rows: usize) -> Result<(Vec<ArrayRef>, bool), ArrowError> {
    let scalar = args.iter().all(Value::is_scalar);
    let len = if scalar { 1 } else { rows };
    let arrays = args
        .iter()
        .map(|arg| arg.to_array(len))
        .collect::<Result<_, _>>()?;
    Ok((arrays, scalar))
}

/// Which way `lower` and `upper` map letters.
#[derive(Debug, Clone, Copy)]
enum Case {
    Lower,
    Upper,
}

/// `lower` and `upper`.
fn change_case(input: &StringArray, case: Case) -> Result<ArrayRef, ArrowError> {
    if input.is_ascii() {
        // ASCII case mapping keeps every byte's length, so offsets and nulls carry over as-is
        // and the whole column is one byte loop. Bytes outside the array's slice stay valid
        // UTF-8 because only ASCII letters change.
        let mut bytes = input.values().to_vec();
        match case {
            Case::Lower => bytes.make_ascii_lowercase(),
            Case::Upper => bytes.make_ascii_uppercase(),
        }
        let mapped = StringArray::try_new(
            input.offsets().clone(),
            Buffer::from_vec(bytes),
            input.nulls().cloned(),
        )?;
        return Ok(Arc::new(mapped));
    }
    let mut out = StringBuilder::with_capacity(input.len(), input.values().len());
    // One buffer reused for every row; `str::to_lowercase` would allocate per row.
    let mut buffer = String::new();
    for value in input {
        let Some(value) = value else {
            out.append_null();
            continue;
        };
        buffer.clear();
        match case {
            Case::Lower => buffer.extend(value.chars().flat_map(char::to_lowercase)),
            Case::Upper => buffer.extend(value.chars().flat_map(char::to_uppercase)),
        }
        out.append_value(&buffer);
    }
    Ok(Arc::new(out.finish()))
}

/// SQL `trim`: strips leading and trailing spaces (not tabs or newlines).
fn trim(input: &StringArray) -> StringArray {
    input
        .iter()
        .map(|value| value.map(|value| value.trim_matches(' ')))
        .collect()
}

/// The length in characters, not bytes.
fn char_length(input: &StringArray) -> Int64Array {
    Int64Array::from_unary(input, |value| {
        i64::try_from(value.chars().count()).unwrap_or(i64::MAX)
    })
}

fn abs(input: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    match input.data_type() {
        // The smallest Int64 has no positive counterpart and wraps to itself.
        DataType::Int64 => Ok(Arc::new(
            input
                .as_primitive::<Int64Type>()
                .unary::<_, Int64Type>(i64::wrapping_abs),
        )),
        DataType::Float64 => Ok(Arc::new(
            input
                .as_primitive::<Float64Type>()
                .unary::<_, Float64Type>(f64::abs),
        )),
        other => Err(ArrowError::InvalidArgumentError(format!("abs of {other}"))),
    }
}

/// `substr(s, start[, length])` row by row; null if any argument is null.
fn substr(strings: &StringArray, starts: &Int64Array, lengths: Option<&Int64Array>) -> StringArray {
    let mut out = StringBuilder::with_capacity(strings.len(), strings.values().len());
    for row in 0..strings.len() {
        let length = match lengths {
            Some(lengths) if lengths.is_null(row) => {
                out.append_null();
                continue;
            }
            Some(lengths) => Some(lengths.value(row)),
            None => None,
        };
        if strings.is_null(row) || starts.is_null(row) {
            out.append_null();
        } else {
            out.append_value(sql_substr(strings.value(row), starts.value(row), length));
        }
    }
    out.finish()
}

/// The characters of `value` at 1-based positions `start ..= start + length - 1` that exist,
/// as in SQL: `substr('hello', 0, 2)` is `'h'`; a negative length gives `''`.
fn sql_substr(value: &str, start: i64, length: Option<i64>) -> &str {
    let first = start.max(1);
    // The 1-based position just past the end, never before `first`.
    let end = length.map(|length| start.saturating_add(length.max(0)).max(first));
    let byte_at = |position: i64| {
        let skip = usize::try_from(position - 1).unwrap_or(usize::MAX);
        value
            .char_indices()
            .nth(skip)
            .map_or(value.len(), |(byte, _)| byte)
    };
    let from = byte_at(first);
    let to = end.map_or(value.len(), byte_at);
    &value[from..to]
}

/// The first non-null argument per row; later arguments are only read where still needed.
fn coalesce(args: &[Value]) -> Result<Value, ArrowError> {
    let Some((first, rest)) = args.split_first() else {
        return Err(ArrowError::InvalidArgumentError(
            "`coalesce` needs an argument".into(),
        ));
    };
    let mut result = first.clone();
    if result.array().data_type() == &DataType::Null {
        // Every argument is an untyped null, so is the answer.
        return Ok(result);
    }
    for next in rest {
        if result.array().logical_null_count() == 0 {
            break;
        }
        result = match &result {
            Value::Scalar(_) => next.clone(),
            Value::Array(array) => Value::Array(zip(&is_not_null(array)?, &result, next)?),
        };
    }
    Ok(result)
}

/// Integer `/` (truncating) or `%` on `Int64` operands of `len` rows; a zero divisor gives null.
///
/// `i64::MIN / -1` wraps to `i64::MIN` rather than failing.
pub(super) fn integer_division(
    op: BinaryOp,
    left: &Value,
    right: &Value,
    len: usize,
) -> Result<ArrayRef, ArrowError> {
    let divide: fn(i64, i64) -> i64 = if op == BinaryOp::Modulo {
        i64::wrapping_rem
    } else {
        i64::wrapping_div
    };
    let dividends = left.to_array(len)?;
    let dividends = dividends.as_primitive::<Int64Type>();
    if let Value::Scalar(divisor) = right {
        let divisor = divisor.as_primitive::<Int64Type>();
        if divisor.is_null(0) || divisor.value(0) == 0 {
            return Ok(new_null_array(&DataType::Int64, len));
        }
        let divisor = divisor.value(0);
        return Ok(Arc::new(
            dividends.unary::<_, Int64Type>(|dividend| divide(dividend, divisor)),
        ));
    }
    let divisors = right.array().as_primitive::<Int64Type>();
    let quotients: Int64Array = binary(
        dividends,
        divisors,
        |n, d| if d == 0 { 0 } else { divide(n, d) },
    )?;
    let by_zero = cmp::eq(divisors, &Int64Array::new_scalar(0))?;
    nullif(&quotients, &by_zero)
}

#[cfg(test)]
mod tests {
    use arrow::array::RecordBatch;

    use super::super::{Expr, ExprError};
    use super::*;

    /// A batch with `s` (Utf8) = ["Hello", null, "  ÉtÉ  ", ""] and `n` (Int64) = [2, 3, null, 1].
    fn batch() -> Result<RecordBatch, ExprError> {
        let s = StringArray::from(vec![Some("Hello"), None, Some("  ÉtÉ  "), Some("")]);
        let n = Int64Array::from(vec![Some(2), Some(3), None, Some(1)]);
        RecordBatch::try_from_iter([
            ("s", Arc::new(s) as ArrayRef),
            ("n", Arc::new(n) as ArrayRef),
        ])
        .map_err(|source| ExprError::Evaluate {
            expr: "batch".into(),
            source,
        })
    }

    fn strings(text: &str) -> Result<Vec<Option<String>>, ExprError> {
        let array = Expr::parse(text)?.evaluate(&batch()?)?;
        Ok(array
            .as_string::<i32>()
            .iter()
            .map(|value| value.map(str::to_string))
            .collect())
    }

    fn ints(text: &str) -> Result<Vec<Option<i64>>, ExprError> {
        Ok(Expr::parse(text)?
            .evaluate(&batch()?)?
            .as_primitive::<Int64Type>()
            .iter()
            .collect())
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|value| Some(value.to_string())).collect()
    }

    #[test]
    fn lower_and_upper_handle_ascii_and_unicode() -> Result<(), ExprError> {
        assert_eq!(
            strings("lower(s)")?,
            vec![
                Some("hello".into()),
                None,
                Some("  été  ".into()),
                Some(String::new())
            ]
        );
        assert_eq!(
            strings("upper(s)")?,
            vec![
                Some("HELLO".into()),
                None,
                Some("  ÉTÉ  ".into()),
                Some(String::new())
            ]
        );
        assert_eq!(
            strings("upper('MiXed 1')")?,
            some(&["MIXED 1"; 4]),
            "ASCII fast path"
        );
        assert_eq!(strings("lower('ÀB')")?, some(&["àb"; 4]));
        Ok(())
    }

    #[test]
    fn trim_strips_spaces_only() -> Result<(), ExprError> {
        assert_eq!(
            strings("trim(s)")?,
            vec![
                Some("Hello".into()),
                None,
                Some("ÉtÉ".into()),
                Some(String::new())
            ]
        );
        assert_eq!(strings("trim(' \tx ')")?, some(&["\tx"; 4]));
        Ok(())
    }

    #[test]
    fn length_counts_characters() -> Result<(), ExprError> {
        assert_eq!(ints("length(s)")?, vec![Some(5), None, Some(7), Some(0)]);
        assert_eq!(ints("length('héllo')")?, vec![Some(5); 4]);
        Ok(())
    }

    #[test]
    fn concat_joins_and_propagates_nulls() -> Result<(), ExprError> {
        assert_eq!(
            strings("concat(s, '!', 'x')")?,
            vec![
                Some("Hello!x".into()),
                None,
                Some("  ÉtÉ  !x".into()),
                Some("!x".into())
            ]
        );
        assert_eq!(strings("concat('a', 'b')")?, some(&["ab"; 4]));
        assert_eq!(strings("concat(s, null)")?, vec![None; 4]);
        assert_eq!(strings("concat(s)")?, strings("s")?);
        Ok(())
    }

    #[test]
    fn substr_follows_sql_positions() -> Result<(), ExprError> {
        assert_eq!(strings("substr('hello', 2, 3)")?, some(&["ell"; 4]));
        assert_eq!(strings("substr('hello', 0, 2)")?, some(&["h"; 4]));
        assert_eq!(strings("substr('hello', -1)")?, some(&["hello"; 4]));
        assert_eq!(strings("substr('hello', 4)")?, some(&["lo"; 4]));
        assert_eq!(strings("substr('hello', 9)")?, some(&[""; 4]));
        assert_eq!(strings("substr('hello', 2, -1)")?, some(&[""; 4]));
        assert_eq!(strings("substr('héllo', 2, 2)")?, some(&["él"; 4]));
        assert_eq!(
            strings("substr(s, n)")?,
            vec![Some("ello".into()), None, None, Some(String::new())]
        );
        assert_eq!(
            strings("substr(s, 1, n)")?,
            vec![Some("He".into()), None, None, Some(String::new())]
        );
        assert_eq!(strings("substr('abc', 1, null)")?, vec![None; 4]);
        Ok(())
    }

    #[test]
    fn abs_of_ints_and_floats() -> Result<(), ExprError> {
        assert_eq!(ints("abs(n - 2)")?, vec![Some(0), Some(1), None, Some(1)]);
        assert_eq!(ints("abs(-9223372036854775808)")?, vec![Some(i64::MIN); 4]);
        let floats = Expr::parse("abs(-1.5)")?.evaluate(&batch()?)?;
        assert_eq!(
            floats.as_primitive::<Float64Type>().values().to_vec(),
            vec![1.5; 4]
        );
        Ok(())
    }

    #[test]
    fn coalesce_takes_the_first_non_null() -> Result<(), ExprError> {
        assert_eq!(
            ints("coalesce(n, 0)")?,
            vec![Some(2), Some(3), Some(0), Some(1)]
        );
        assert_eq!(
            ints("coalesce(null, n, length(s), 9)")?,
            vec![Some(2), Some(3), Some(7), Some(1)]
        );
        assert_eq!(ints("coalesce(null, 4, n)")?, vec![Some(4); 4]);
        assert_eq!(
            strings("coalesce(s, 'none')")?,
            some(&["Hello", "none", "  ÉtÉ  ", ""])
        );
        let floats = Expr::parse("coalesce(n, 0.5)")?.evaluate(&batch()?)?;
        let floats: Vec<_> = floats.as_primitive::<Float64Type>().iter().collect();
        assert_eq!(floats, vec![Some(2.0), Some(3.0), Some(0.5), Some(1.0)]);
        Ok(())
    }

    #[test]
    fn casts_convert_or_give_null() -> Result<(), ExprError> {
        assert_eq!(
            strings("cast(n as string)")?,
            vec![Some("2".into()), Some("3".into()), None, Some("1".into())]
        );
        assert_eq!(ints("cast('12' as int)")?, vec![Some(12); 4]);
        assert_eq!(
            ints("cast(s as bigint)")?,
            vec![None; 4],
            "text that is no number becomes null"
        );
        assert_eq!(ints("cast(2.9 as int64)")?, vec![Some(2); 4]);
        assert_eq!(ints("cast(true as int)")?, vec![Some(1); 4]);
        let ts = Expr::parse("cast(n * 1000 as timestamp)")?.evaluate(&batch()?)?;
        assert_eq!(
            ts.data_type(),
            &super::super::CastType::Timestamp.data_type()
        );
        let millis: Vec<_> = ts
            .as_primitive::<arrow::datatypes::TimestampMillisecondType>()
            .iter()
            .collect();
        assert_eq!(millis, vec![Some(2000), Some(3000), None, Some(1000)]);
        Ok(())
    }

    #[test]
    fn sql_substr_edges() {
        assert_eq!(
            sql_substr("abc", i64::MIN, Some(i64::MAX)),
            "",
            "positions up to -2 hold nothing"
        );
        assert_eq!(sql_substr("abc", i64::MAX, None), "");
        assert_eq!(sql_substr("abc", 2, Some(i64::MAX)), "bc");
        assert_eq!(sql_substr("", 1, Some(1)), "");
    }
}
