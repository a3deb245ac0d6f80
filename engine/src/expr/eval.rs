//! Evaluates an [`Expr`] on a batch, one Arrow kernel call per node.
//!
//! Literals stay one-row [`Value::Scalar`]s, which the `cmp` and `numeric` kernels broadcast
//! for free; a scalar is only expanded to full length where a kernel has no scalar form
//! (`and_kleene`, string concatenation) or at the very end.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Datum, DurationMillisecondArray, Float64Array,
    Int64Array, NullArray, RecordBatch, StringArray, UInt64Array, new_null_array,
};
use arrow::buffer::BooleanBuffer;
use arrow::compute::kernels::comparison::{ilike, like};
use arrow::compute::kernels::concat_elements::concat_elements_utf8;
use arrow::compute::kernels::zip::zip;
use arrow::compute::kernels::{cast::cast, cmp, numeric};
use arrow::compute::{
    and_kleene, is_not_null, is_null, not, or_kleene, prep_null_mask_filter, take,
};
use arrow::datatypes::{DataType, Float64Type, Int64Type, TimeUnit, TimestampMillisecondType};
use arrow::error::ArrowError;

use super::{BinaryOp, Expr, ExprError, Literal, functions, types};

/// An intermediate result: one value per row, or one value standing for every row.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Array(ArrayRef),
    /// A one-row array that kernels apply to every row (literals and what is computed from them).
    Scalar(ArrayRef),
}

impl Datum for Value {
    fn get(&self) -> (&dyn Array, bool) {
        match self {
            Value::Array(array) => (array.as_ref(), false),
            Value::Scalar(array) => (array.as_ref(), true),
        }
    }
}

impl Value {
    pub(super) fn new(array: ArrayRef, scalar: bool) -> Value {
        if scalar {
            Value::Scalar(array)
        } else {
            Value::Array(array)
        }
    }

    pub(super) fn array(&self) -> &ArrayRef {
        match self {
            Value::Array(array) | Value::Scalar(array) => array,
        }
    }

    pub(super) fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    fn data_type(&self) -> &DataType {
        self.array().data_type()
    }

    /// Applies the element-wise `f`; a scalar stays a scalar.
    pub(super) fn map(
        &self,
        f: impl FnOnce(&ArrayRef) -> Result<ArrayRef, ArrowError>,
    ) -> Result<Value, ArrowError> {
        Ok(Value::new(f(self.array())?, self.is_scalar()))
    }

    /// Casts to `to`, a no-op when the type already matches.
    pub(super) fn coerce(&self, to: &DataType) -> Result<Value, ArrowError> {
        self.map(|array| convert(array, to))
    }

    /// The values as an array of `len` rows, repeating a scalar `len` times.
    pub(super) fn to_array(&self, len: usize) -> Result<ArrayRef, ArrowError> {
        match self {
            Value::Array(array) => Ok(Arc::clone(array)),
            Value::Scalar(array) if array.len() == len => Ok(Arc::clone(array)),
            Value::Scalar(array) => broadcast(array, len),
        }
    }
}

/// Casts `array` to `to`, treating every timestamp as an instant counted from the epoch.
///
/// A time zone is only a label here: converting a timestamp rescales its unit and swaps the
/// label, and text converts as UTC (`'2024-05-01T12:00:00+02:00'` is 10:00 UTC; text without an
/// offset is read as UTC; a timestamp becomes text as zone-less UTC time). Arrow's own cast would
/// instead shift a zone-less timestamp onto the target zone's wall clock, and needs its
/// `chrono-tz` feature to look up zone names such as `"UTC"`, which this crate does not enable.
fn convert(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let zoneless_millis = |array: &ArrayRef| -> Result<ArrayRef, ArrowError> {
        let array = match array.data_type() {
            // Dropping a zone is a pure relabel in Arrow; only adding one shifts values.
            DataType::Timestamp(unit, Some(_)) => cast(array, &DataType::Timestamp(*unit, None))?,
            _ => Arc::clone(array),
        };
        cast(&array, &DataType::Timestamp(TimeUnit::Millisecond, None))
    };
    match (array.data_type(), to) {
        (from, to) if from == to => Ok(Arc::clone(array)),
        (_, DataType::Timestamp(TimeUnit::Millisecond, zone)) => {
            let millis = zoneless_millis(array)?;
            Ok(Arc::new(
                millis
                    .as_primitive::<TimestampMillisecondType>()
                    .clone()
                    .with_timezone_opt(zone.clone()),
            ))
        }
        (DataType::Timestamp(..), _) => cast(&zoneless_millis(array)?, to),
        _ => cast(array, to),
    }
}

/// Repeats the single value of `scalar` `len` times, without a per-row branch for common types.
fn broadcast(scalar: &ArrayRef, len: usize) -> Result<ArrayRef, ArrowError> {
    if scalar.logical_null_count() == scalar.len() {
        return Ok(new_null_array(scalar.data_type(), len));
    }
    let array: ArrayRef = match scalar.data_type() {
        DataType::Boolean => {
            let values = match scalar.as_boolean().value(0) {
                true => BooleanBuffer::new_set(len),
                false => BooleanBuffer::new_unset(len),
            };
            Arc::new(BooleanArray::new(values, None))
        }
        DataType::Int64 => Arc::new(Int64Array::from_value(
            scalar.as_primitive::<Int64Type>().value(0),
            len,
        )),
        DataType::Float64 => Arc::new(Float64Array::from_value(
            scalar.as_primitive::<Float64Type>().value(0),
            len,
        )),
        DataType::Utf8 => Arc::new(StringArray::new_repeated(
            scalar.as_string::<i32>().value(0),
            len,
        )),
        // Rarer types (timestamps from a cast) go through `take`, which costs one index per row.
        _ => take(scalar, &UInt64Array::from_value(0, len), None)?,
    };
    Ok(array)
}

/// Evaluates `expr` on every row of `batch` (see [`Expr::evaluate`]).
pub(super) fn evaluate(expr: &Expr, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
    eval(expr, batch)?
        .to_array(batch.num_rows())
        .map_err(ExprError::evaluate(expr))
}

fn eval(expr: &Expr, batch: &RecordBatch) -> Result<Value, ExprError> {
    let failed = ExprError::evaluate(expr);
    match expr {
        Expr::Column(name) => {
            let index = types::column(name, batch.schema_ref())?;
            Ok(Value::Array(Arc::clone(batch.column(index))))
        }
        Expr::Literal(value) => Ok(Value::Scalar(literal(value))),
        Expr::Binary { left, op, right } => {
            let (left, right) = (eval(left, batch)?, eval(right, batch)?);
            let plan = types::binary(*op, left.data_type(), right.data_type())?;
            binary(*op, &left, &right, &plan.operand, batch.num_rows())
                // Time arithmetic runs on epoch milliseconds and is labelled afterwards.
                .and_then(|value| value.coerce(&plan.result))
                .map_err(failed)
        }
        Expr::Not(input) => {
            let input = eval(input, batch)?;
            types::not(input.data_type())?;
            let input = input
                .coerce(&DataType::Boolean)
                .map_err(ExprError::evaluate(expr))?;
            input
                .map(|array| Ok(Arc::new(not(array.as_boolean())?)))
                .map_err(failed)
        }
        Expr::Negate(input) => {
            let input = eval(input, batch)?;
            let to = types::negate("-", input.data_type())?;
            // An interval is negated as milliseconds (arrow negates no durations).
            let operand = match to {
                DataType::Duration(_) => DataType::Int64,
                _ => to.clone(),
            };
            input
                .coerce(&operand)
                .and_then(|input| input.map(|array| numeric::neg_wrapping(array)))
                .and_then(|negated| negated.coerce(&to))
                .map_err(failed)
        }
        Expr::IsNull {
            expr: input,
            negated,
        } => {
            let test = if *negated { is_not_null } else { is_null };
            eval(input, batch)?
                .map(|array| Ok(Arc::new(test(array)?)))
                .map_err(failed)
        }
        Expr::Call { function, args } => {
            let args = args
                .iter()
                .map(|arg| eval(arg, batch))
                .collect::<Result<Vec<_>, _>>()?;
            let arg_types: Vec<DataType> = args.iter().map(|arg| arg.data_type().clone()).collect();
            let plan = types::call(*function, &arg_types)?;
            let coerced = args.iter().zip(&plan.args).map(|(arg, to)| arg.coerce(to));
            let args = coerced
                .collect::<Result<Vec<_>, _>>()
                .map_err(ExprError::evaluate(expr))?;
            functions::call(*function, &args, batch.num_rows()).map_err(failed)
        }
        Expr::Cast { expr: input, to } => {
            let input = eval(input, batch)?;
            let to = types::cast(input.data_type(), *to)?;
            input.coerce(&to).map_err(failed)
        }
        Expr::InList {
            expr: input,
            list,
            negated,
        } => in_list(expr, input, list, *negated, batch),
        Expr::Case {
            branches,
            otherwise,
        } => case(branches, otherwise.as_deref(), batch).map_err(|err| match err {
            CaseError::Expr(err) => err,
            CaseError::Arrow(err) => failed(err),
        }),
    }
}

/// `input [not] in (list)` (the whole node is `expr`): `input` evaluated once, compared with
/// each item, the comparisons joined with three-valued `or`.
fn in_list(
    expr: &Expr,
    input: &Expr,
    list: &[Expr],
    negated: bool,
    batch: &RecordBatch,
) -> Result<Value, ExprError> {
    let value = eval(input, batch)?;
    let rows = batch.num_rows();
    let mut any: Option<Value> = None;
    for item in list {
        let item = eval(item, batch)?;
        let plan = types::binary(BinaryOp::Eq, value.data_type(), item.data_type())?;
        let equal = binary(BinaryOp::Eq, &value, &item, &plan.operand, rows)
            .map_err(ExprError::evaluate(expr))?;
        any = Some(match any {
            None => equal,
            Some(so_far) => binary(BinaryOp::Or, &so_far, &equal, &DataType::Boolean, rows)
                .map_err(ExprError::evaluate(expr))?,
        });
    }
    let any = any.ok_or_else(|| {
        ExprError::evaluate(expr)(ArrowError::InvalidArgumentError("an empty IN list".into()))
    })?;
    if negated {
        any.map(|array| Ok(Arc::new(not(array.as_boolean())?)))
            .map_err(ExprError::evaluate(expr))
    } else {
        Ok(any)
    }
}

enum CaseError {
    Expr(ExprError),
    Arrow(ArrowError),
}

impl From<ExprError> for CaseError {
    fn from(err: ExprError) -> Self {
        CaseError::Expr(err)
    }
}

impl From<ArrowError> for CaseError {
    fn from(err: ArrowError) -> Self {
        CaseError::Arrow(err)
    }
}

/// `case`: from the last branch to the first, each true condition picks its value over what
/// the later branches (and `else`) chose, with Arrow's `zip`.
fn case(
    branches: &[(Expr, Expr)],
    otherwise: Option<&Expr>,
    batch: &RecordBatch,
) -> Result<Value, CaseError> {
    let rows = batch.num_rows();
    let mut conditions = Vec::with_capacity(branches.len());
    let mut values = Vec::with_capacity(branches.len() + 1);
    for (condition, value) in branches {
        let condition = eval(condition, batch)?;
        types::condition_type(condition.data_type())?;
        conditions.push(condition);
        values.push(eval(value, batch)?);
    }
    let otherwise = otherwise.map(|e| eval(e, batch)).transpose()?;
    let mut types_seen: Vec<DataType> = values.iter().map(|v| v.data_type().clone()).collect();
    types_seen.extend(otherwise.iter().map(|v| v.data_type().clone()));
    let result = types::case(&types_seen)?;
    if result == DataType::Null {
        return Ok(Value::Array(new_null_array(&DataType::Null, rows)));
    }
    let mut chosen = match otherwise {
        Some(value) => value.coerce(&result)?.to_array(rows)?,
        None => new_null_array(&result, rows),
    };
    for (condition, value) in conditions.iter().zip(&values).rev() {
        let condition = condition.coerce(&DataType::Boolean)?.to_array(rows)?;
        // A null condition is not true: it never picks its branch.
        let condition = condition.as_boolean();
        let mask = match condition.nulls() {
            Some(_) => prep_null_mask_filter(condition),
            None => condition.clone(),
        };
        let value = value.coerce(&result)?.to_array(rows)?;
        chosen = zip(&mask, &value, &chosen)?;
    }
    Ok(Value::Array(chosen))
}

fn literal(value: &Literal) -> ArrayRef {
    match value {
        Literal::Null => Arc::new(NullArray::new(1)),
        Literal::Bool(value) => Arc::new(BooleanArray::from(vec![*value])),
        Literal::Int(value) => Arc::new(Int64Array::from_value(*value, 1)),
        Literal::Float(value) => Arc::new(Float64Array::from_value(*value, 1)),
        Literal::Str(value) => Arc::new(StringArray::from_iter_values([value])),
        Literal::Interval(millis) => Arc::new(DurationMillisecondArray::from(vec![*millis])),
    }
}

/// Applies `op` once both sides are cast to `operand`; `rows` is the batch length.
fn binary(
    op: BinaryOp,
    left: &Value,
    right: &Value,
    operand: &DataType,
    rows: usize,
) -> Result<Value, ArrowError> {
    let (left, right) = (left.coerce(operand)?, right.coerce(operand)?);
    let scalar = left.is_scalar() && right.is_scalar();
    let len = if scalar { 1 } else { rows };
    let array: ArrayRef = match op {
        // Int64 overflow wraps rather than failing the job; floats follow IEEE 754.
        BinaryOp::Plus => numeric::add_wrapping(&left, &right)?,
        BinaryOp::Minus => numeric::sub_wrapping(&left, &right)?,
        BinaryOp::Multiply => numeric::mul_wrapping(&left, &right)?,
        BinaryOp::Divide | BinaryOp::Modulo if *operand == DataType::Int64 => {
            functions::integer_division(op, &left, &right, len)?
        }
        BinaryOp::Divide => numeric::div(&left, &right)?,
        BinaryOp::Modulo => numeric::rem(&left, &right)?,
        BinaryOp::Eq => Arc::new(cmp::eq(&left, &right)?),
        BinaryOp::NotEq => Arc::new(cmp::neq(&left, &right)?),
        BinaryOp::Lt => Arc::new(cmp::lt(&left, &right)?),
        BinaryOp::LtEq => Arc::new(cmp::lt_eq(&left, &right)?),
        BinaryOp::Gt => Arc::new(cmp::gt(&left, &right)?),
        BinaryOp::GtEq => Arc::new(cmp::gt_eq(&left, &right)?),
        BinaryOp::And => Arc::new(and_kleene(
            left.to_array(len)?.as_boolean(),
            right.to_array(len)?.as_boolean(),
        )?),
        BinaryOp::Or => Arc::new(or_kleene(
            left.to_array(len)?.as_boolean(),
            right.to_array(len)?.as_boolean(),
        )?),
        BinaryOp::Like => Arc::new(like(&left, &right)?),
        BinaryOp::ILike => Arc::new(ilike(&left, &right)?),
        BinaryOp::Concat => Arc::new(concat_elements_utf8(
            left.to_array(len)?.as_string::<i32>(),
            right.to_array(len)?.as_string::<i32>(),
        )?),
    };
    Ok(Value::new(array, scalar))
}

#[cfg(test)]
mod tests {
    use arrow::array::{
        DictionaryArray, Int32Array, TimestampMillisecondArray, TimestampSecondArray, UInt64Array,
    };
    use arrow::datatypes::{Field, Int32Type, Schema};

    use super::*;

    /// A batch with: i (Int32), f (Float64), s (Utf8), b (Boolean), n (all-null Int64).
    fn batch() -> RecordBatch {
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "i",
                Arc::new(Int32Array::from(vec![Some(7), Some(-7), None, Some(0)])),
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![
                    Some(0.5),
                    None,
                    Some(-2.0),
                    Some(3.0),
                ])),
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    None,
                    Some("B"),
                ])),
            ),
            (
                "b",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                ])),
            ),
            ("n", Arc::new(Int64Array::from(vec![None::<i64>; 4]))),
        ];
        RecordBatch::try_from_iter(columns).expect("the test batch is well formed")
    }

    fn run(text: &str) -> Result<ArrayRef, ExprError> {
        let batch = batch();
        let expr = Expr::parse(text)?;
        let result = expr.evaluate(&batch)?;
        assert_eq!(result.len(), batch.num_rows(), "{text}");
        assert_eq!(
            result.data_type(),
            &expr.data_type(batch.schema_ref())?,
            "{text}: type matches data_type"
        );
        Ok(result)
    }

    fn ints(text: &str) -> Result<Vec<Option<i64>>, ExprError> {
        Ok(run(text)?.as_primitive::<Int64Type>().iter().collect())
    }

    fn floats(text: &str) -> Result<Vec<Option<f64>>, ExprError> {
        Ok(run(text)?.as_primitive::<Float64Type>().iter().collect())
    }

    fn bools(text: &str) -> Result<Vec<Option<bool>>, ExprError> {
        Ok(run(text)?.as_boolean().iter().collect())
    }

    #[test]
    fn arithmetic_widens_and_propagates_nulls() -> Result<(), ExprError> {
        assert_eq!(ints("i + 1")?, vec![Some(8), Some(-6), None, Some(1)]);
        assert_eq!(ints("i * i - 2")?, vec![Some(47), Some(47), None, Some(-2)]);
        assert_eq!(floats("i + f")?, vec![Some(7.5), None, None, Some(3.0)]);
        assert_eq!(
            floats("f / 2")?,
            vec![Some(0.25), None, Some(-1.0), Some(1.5)]
        );
        assert_eq!(ints("-i")?, vec![Some(-7), Some(7), None, Some(0)]);
        assert_eq!(ints("i + n")?, vec![None; 4]);
        assert_eq!(ints("i + null")?, vec![None; 4]);
        assert_eq!(
            ints("1 + 2 * 3")?,
            vec![Some(7); 4],
            "a constant is broadcast to every row"
        );
        Ok(())
    }

    #[test]
    fn integer_division_truncates_and_gives_null_for_zero() -> Result<(), ExprError> {
        assert_eq!(ints("i / 2")?, vec![Some(3), Some(-3), None, Some(0)]);
        assert_eq!(ints("i % 2")?, vec![Some(1), Some(-1), None, Some(0)]);
        assert_eq!(ints("i / 0")?, vec![None; 4]);
        assert_eq!(ints("i % 0")?, vec![None; 4]);
        assert_eq!(ints("10 / i")?, vec![Some(1), Some(-1), None, None]);
        assert_eq!(ints("10 % i")?, vec![Some(3), Some(3), None, None]);
        assert_eq!(ints("i / i")?, vec![Some(1), Some(1), None, None]);
        assert_eq!(ints("7 / 0")?, vec![None; 4]);
        assert_eq!(
            floats("1.0 / 0")?,
            vec![Some(f64::INFINITY); 4],
            "floats follow IEEE 754"
        );
        Ok(())
    }

    #[test]
    fn int64_overflow_wraps_instead_of_failing() -> Result<(), ExprError> {
        let max = i64::MAX;
        assert_eq!(ints(&format!("{max} + 1"))?, vec![Some(i64::MIN); 4]);
        assert_eq!(ints("-9223372036854775808 / -1")?, vec![Some(i64::MIN); 4]);
        assert_eq!(ints("-9223372036854775808 % -1")?, vec![Some(0); 4]);
        assert_eq!(ints("-(-9223372036854775808)")?, vec![Some(i64::MIN); 4]);
        Ok(())
    }

    #[test]
    fn comparisons_widen_numbers_and_order_strings() -> Result<(), ExprError> {
        assert_eq!(
            bools("i > 0")?,
            vec![Some(true), Some(false), None, Some(false)]
        );
        assert_eq!(
            bools("i = 7.0")?,
            vec![Some(true), Some(false), None, Some(false)]
        );
        assert_eq!(bools("f <= i")?, vec![Some(true), None, None, Some(false)]);
        assert_eq!(
            bools("s < 'b'")?,
            vec![Some(true), Some(false), None, Some(true)],
            "'B' < 'a' bytewise"
        );
        assert_eq!(
            bools("s != 'a'")?,
            vec![Some(false), Some(true), None, Some(true)]
        );
        assert_eq!(
            bools("s || 'x' = 'ax'")?,
            vec![Some(true), Some(false), None, Some(false)]
        );
        assert_eq!(bools("i = null")?, vec![None; 4]);
        assert_eq!(
            bools("b = true")?,
            vec![Some(true), Some(false), None, Some(true)]
        );
        Ok(())
    }

    #[test]
    fn logic_is_three_valued() -> Result<(), ExprError> {
        let batch = RecordBatch::try_from_iter([
            (
                "p",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(true),
                    Some(true),
                    Some(false),
                    Some(false),
                    Some(false),
                    None,
                    None,
                    None,
                ])) as ArrayRef,
            ),
            (
                "q",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                    None,
                ])),
            ),
        ])
        .map_err(|source| ExprError::Evaluate {
            expr: "batch".into(),
            source,
        })?;
        let eval = |text: &str| -> Result<Vec<Option<bool>>, ExprError> {
            Ok(Expr::parse(text)?
                .evaluate(&batch)?
                .as_boolean()
                .iter()
                .collect())
        };
        let (t, f, n) = (Some(true), Some(false), None);
        assert_eq!(eval("p and q")?, vec![t, f, n, f, f, f, n, f, n]);
        assert_eq!(eval("p or q")?, vec![t, t, t, t, f, n, t, n, n]);
        assert_eq!(eval("not p")?, vec![f, f, f, t, t, t, n, n, n]);
        assert_eq!(eval("p and null")?, vec![n, n, n, f, f, f, n, n, n]);
        assert_eq!(eval("q or true")?, vec![t; 9]);
        assert_eq!(eval("p is null")?, vec![f, f, f, f, f, f, t, t, t]);
        assert_eq!(
            eval("not (p and q) is not null")?,
            vec![f, f, t, f, f, f, t, f, t]
        );
        Ok(())
    }

    #[test]
    fn is_null_sees_every_kind_of_null() -> Result<(), ExprError> {
        assert_eq!(
            bools("s is null")?,
            vec![Some(false), Some(false), Some(true), Some(false)]
        );
        assert_eq!(bools("i / 0 is not null")?, vec![Some(false); 4]);
        assert_eq!(bools("null is null")?, vec![Some(true); 4]);
        Ok(())
    }

    #[test]
    fn bare_columns_and_literals_come_back_whole() -> Result<(), ExprError> {
        assert_eq!(run("i")?.data_type(), &DataType::Int32);
        assert_eq!(run("null")?.logical_null_count(), 4);
        assert_eq!(
            run("'x'")?.as_string::<i32>().iter().collect::<Vec<_>>(),
            vec![Some("x"); 4]
        );
        assert_eq!(bools("false")?, vec![Some(false); 4]);
        assert_eq!(floats("1.5")?, vec![Some(1.5); 4]);
        Ok(())
    }

    #[test]
    fn dictionary_strings_are_read_as_strings() -> Result<(), ExprError> {
        let dict: DictionaryArray<Int32Type> = vec![Some("fr"), None, Some("de"), Some("fr")]
            .into_iter()
            .collect();
        let batch = RecordBatch::try_from_iter([("country", Arc::new(dict) as ArrayRef)]).map_err(
            |source| ExprError::Evaluate {
                expr: "batch".into(),
                source,
            },
        )?;
        let keep = Expr::parse("country = 'fr' or upper(country) = 'DE'")?;
        assert_eq!(keep.data_type(batch.schema_ref())?, DataType::Boolean);
        let kept: Vec<_> = keep.evaluate(&batch)?.as_boolean().iter().collect();
        assert_eq!(kept, vec![Some(true), None, Some(true), Some(true)]);
        let lengths = Expr::parse("length(country)")?.evaluate(&batch)?;
        assert_eq!(
            lengths
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>(),
            vec![Some(2), None, Some(2), Some(2)]
        );
        Ok(())
    }

    #[test]
    fn timestamps_compare_with_integer_milliseconds_and_each_other() -> Result<(), ExprError> {
        let millis = TimestampMillisecondArray::from(vec![Some(1_000), Some(2_500), None])
            .with_timezone("UTC");
        let seconds = TimestampSecondArray::from(vec![Some(1), Some(2), Some(3)]);
        let batch = RecordBatch::try_from_iter([
            ("ts", Arc::new(millis) as ArrayRef),
            ("secs", Arc::new(seconds) as ArrayRef),
        ])
        .map_err(|source| ExprError::Evaluate {
            expr: "batch".into(),
            source,
        })?;
        let eval = |text: &str| -> Result<Vec<Option<bool>>, ExprError> {
            let expr = Expr::parse(text)?;
            assert_eq!(expr.data_type(batch.schema_ref())?, DataType::Boolean);
            Ok(expr.evaluate(&batch)?.as_boolean().iter().collect())
        };
        assert_eq!(eval("ts >= 2000")?, vec![Some(false), Some(true), None]);
        assert_eq!(eval("1000 = ts")?, vec![Some(true), Some(false), None]);
        assert_eq!(
            eval("ts > secs")?,
            vec![Some(false), Some(true), None],
            "seconds are scaled to ms"
        );
        assert_eq!(
            eval("secs = 3000")?,
            vec![Some(false), Some(false), Some(true)]
        );
        assert_eq!(
            eval("ts < cast('1970-01-01T00:00:02Z' as timestamp)")?,
            vec![Some(true), Some(false), None]
        );
        assert_eq!(
            eval("ts = cast('1970-01-01T02:00:01+02:00' as timestamp)")?,
            vec![Some(true), Some(false), None]
        );
        assert_eq!(
            eval("secs = cast('1970-01-01 00:00:03' as timestamp)")?,
            vec![Some(false), Some(false), Some(true)]
        );
        let text = Expr::parse("cast(ts as string)")?.evaluate(&batch)?;
        let text: Vec<_> = text.as_string::<i32>().iter().collect();
        assert_eq!(
            text,
            vec![
                Some("1970-01-01T00:00:01"),
                Some("1970-01-01T00:00:02.500"),
                None
            ]
        );
        let millis = Expr::parse("cast(secs as int)")?.evaluate(&batch)?;
        assert_eq!(
            millis.as_primitive::<Int64Type>().values().to_vec(),
            vec![1000, 2000, 3000]
        );
        let zoned = Expr::parse("coalesce(secs, ts)")?.evaluate(&batch)?;
        assert_eq!(
            zoned.data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(
            zoned
                .as_primitive::<TimestampMillisecondType>()
                .values()
                .to_vec(),
            vec![1000, 2000, 3000]
        );
        Ok(())
    }

    #[test]
    fn unsigned_columns_widen_to_int64() -> Result<(), ExprError> {
        let batch = RecordBatch::try_from_iter([(
            "u",
            Arc::new(UInt64Array::from(vec![1, u64::MAX])) as ArrayRef,
        )])
        .map_err(|source| ExprError::Evaluate {
            expr: "batch".into(),
            source,
        })?;
        let result = Expr::parse("u + 1")?.evaluate(&batch)?;
        assert_eq!(
            result
                .as_primitive::<Int64Type>()
                .iter()
                .collect::<Vec<_>>(),
            vec![Some(2), None],
            "out of range is null"
        );
        Ok(())
    }

    #[test]
    fn evaluation_reports_unknown_columns_and_type_errors() {
        let err = run("amount > 1").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown column `amount`; available columns: i, f, s, b, n")
        );
        let err = run("s + 1").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("type error: cannot apply `+` to Utf8 and Int64")
        );
    }

    #[test]
    fn empty_batches_evaluate_to_empty_arrays() -> Result<(), ExprError> {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let batch = RecordBatch::new_empty(schema);
        for text in [
            "x / 0 + 1",
            "'a' || 'b'",
            "coalesce(x, 1) > 0 and true",
            "substr('abc', 2)",
        ] {
            assert_eq!(Expr::parse(text)?.evaluate(&batch)?.len(), 0, "{text}");
        }
        Ok(())
    }

    #[test]
    fn case_picks_the_first_true_branch_and_nulls_never_match() -> Result<(), ExprError> {
        // i = 7, -7, null, 0
        assert_eq!(
            ints("case when i > 0 then 1 when i < 0 then -1 end")?,
            vec![Some(1), Some(-1), None, None]
        );
        assert_eq!(
            ints("case when i >= 0 then i when true then 100 else 5 end")?,
            vec![Some(7), Some(100), Some(100), Some(0)]
        );
        let strings = run("case i when 7 then 'seven' else s end")?;
        let strings: Vec<Option<&str>> = strings.as_string::<i32>().iter().collect();
        assert_eq!(strings, vec![Some("seven"), Some("b"), None, Some("B")]);
        let mixed = run("case when b then i else f end")?;
        assert_eq!(mixed.data_type(), &DataType::Float64, "branches unify");
        assert!(matches!(
            run("case when i then 1 end"),
            Err(ExprError::Argument { .. })
        ));
        assert!(matches!(
            run("case when b then 1 else 'x' end"),
            Err(ExprError::Mismatch { .. })
        ));
        Ok(())
    }

    #[test]
    fn like_in_and_between_follow_sql() -> Result<(), ExprError> {
        let bools = |text: &str| -> Result<Vec<Option<bool>>, ExprError> {
            Ok(run(text)?.as_boolean().iter().collect())
        };
        // s = "a", "b", null, "B"
        assert_eq!(
            bools("s like 'a%'")?,
            vec![Some(true), Some(false), None, Some(false)]
        );
        assert_eq!(
            bools("s ilike 'b'")?,
            vec![Some(false), Some(true), None, Some(true)]
        );
        assert_eq!(
            bools("s not like '_'")?,
            vec![Some(false), Some(false), None, Some(false)]
        );
        // i = 7, -7, null, 0; a null in the list makes a non-match null.
        assert_eq!(
            bools("i in (7, 0)")?,
            vec![Some(true), Some(false), None, Some(true)]
        );
        assert_eq!(bools("i in (7, null)")?, vec![Some(true), None, None, None]);
        assert_eq!(
            bools("i not in (7, 8)")?,
            vec![Some(false), Some(true), None, Some(true)]
        );
        assert_eq!(
            bools("i between -7 and 0")?,
            vec![Some(false), Some(true), None, Some(true)]
        );
        assert!(matches!(run("i like 'x'"), Err(ExprError::Mismatch { .. })));
        Ok(())
    }

    #[test]
    fn timestamp_fields_come_from_the_time_zone_of_the_value() -> Result<(), ExprError> {
        let at = "cast('2026-03-02T13:45:30+02:00' as timestamp)";
        for (function, want) in [
            ("year", 2026),
            ("month", 3),
            ("day", 2),
            ("hour", 11),
            ("minute", 45),
            ("second", 30),
        ] {
            assert_eq!(
                ints(&format!("{function}({at})"))?,
                vec![Some(want); 4],
                "{function}"
            );
        }
        assert_eq!(
            ints(&format!("extract(hour from {at}) * 100"))?,
            vec![Some(1100); 4]
        );
        assert_eq!(ints("hour(null)")?, vec![None; 4]);
        assert!(matches!(run("hour(i)"), Err(ExprError::Argument { .. })));
        Ok(())
    }
}
