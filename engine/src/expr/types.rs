//! Type rules: which operand types each operator and function accepts, and what it returns.
//!
//! The same rules serve [`Expr::data_type`] (job validation, no data) and evaluation (which
//! applies them to the arrays it meets), so the two can never disagree.

use std::sync::Arc;

use arrow::compute::can_cast_types;
use arrow::datatypes::{DataType, Schema, TimeUnit};

use super::{BinaryOp, CastType, Expr, ExprError, Function, Literal};

/// The logical type family of an Arrow type; everything in a family is computed as one type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
    /// Only nulls (an untyped `null` literal).
    Null,
    Bool,
    /// Any signed or unsigned integer, computed as `Int64`.
    Int,
    /// `Float32` or `Float64`, computed as `Float64`.
    Float,
    /// `Utf8`, `LargeUtf8`, `Utf8View` or a dictionary of strings, computed as `Utf8`.
    Str,
    /// A timestamp of any unit, computed as epoch milliseconds in this time zone.
    Timestamp(Option<Arc<str>>),
    /// A span of time (`INTERVAL '5' SECOND`), `Duration(Millisecond)`.
    Interval,
}

impl Kind {
    /// The family of `data_type`, or `None` when expressions cannot read it.
    pub(super) fn of(data_type: &DataType) -> Option<Kind> {
        let kind = match data_type {
            DataType::Null => Kind::Null,
            DataType::Boolean => Kind::Bool,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Kind::Int,
            DataType::Float32 | DataType::Float64 => Kind::Float,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Str,
            DataType::Dictionary(_, values) => match Kind::of(values)? {
                Kind::Str => Kind::Str,
                _ => return None,
            },
            DataType::Timestamp(_, tz) => Kind::Timestamp(tz.clone()),
            DataType::Duration(TimeUnit::Millisecond) => Kind::Interval,
            _ => return None,
        };
        Some(kind)
    }

    /// The one Arrow type this family is computed in.
    pub(super) fn data_type(&self) -> DataType {
        match self {
            Kind::Null => DataType::Null,
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Str => DataType::Utf8,
            Kind::Timestamp(tz) => DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
            Kind::Interval => DataType::Duration(TimeUnit::Millisecond),
        }
    }
}

/// The family of a type that has already passed [`column`] or a rule below.
fn kind(data_type: &DataType) -> Kind {
    // Every type reaching the rules came from a checked column or from a rule's own output,
    // so the fallback is never taken; `Null` keeps it harmless if it ever is.
    Kind::of(data_type).unwrap_or(Kind::Null)
}

/// The family both operands fit in, if any; `Null` joins anything, integers join timestamps
/// (as epoch milliseconds) and floats.
fn unify(left: &Kind, right: &Kind) -> Option<Kind> {
    let kind = match (left, right) {
        (Kind::Null, other) | (other, Kind::Null) => other.clone(),
        (Kind::Int, Kind::Int) => Kind::Int,
        (Kind::Int | Kind::Float, Kind::Int | Kind::Float) => Kind::Float,
        (Kind::Str, Kind::Str) => Kind::Str,
        (Kind::Bool, Kind::Bool) => Kind::Bool,
        (Kind::Interval, Kind::Interval) => Kind::Interval,
        (Kind::Timestamp(tz), Kind::Timestamp(_) | Kind::Int)
        | (Kind::Int, Kind::Timestamp(tz)) => Kind::Timestamp(tz.clone()),
        _ => return None,
    };
    Some(kind)
}

/// How to evaluate a binary operator: cast both sides to `operand`, the kernel returns `result`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BinaryPlan {
    pub operand: DataType,
    pub result: DataType,
}

/// The plan for `left op right`, or the type error that names both types.
pub(super) fn binary(
    op: BinaryOp,
    left: &DataType,
    right: &DataType,
) -> Result<BinaryPlan, ExprError> {
    let mismatch = || ExprError::Mismatch {
        operator: op.symbol().to_string(),
        left: left.clone(),
        right: right.clone(),
    };
    if let Some(plan) = time_arithmetic(op, &kind(left), &kind(right)) {
        return Ok(plan);
    }
    let joined = unify(&kind(left), &kind(right)).ok_or_else(mismatch)?;
    let (operand, result) = match op {
        BinaryOp::And | BinaryOp::Or => match joined {
            Kind::Null | Kind::Bool => (DataType::Boolean, DataType::Boolean),
            _ => return Err(mismatch()),
        },
        BinaryOp::Concat => match joined {
            Kind::Null | Kind::Str => (DataType::Utf8, DataType::Utf8),
            _ => return Err(mismatch()),
        },
        BinaryOp::Like | BinaryOp::ILike => match joined {
            Kind::Null | Kind::Str => (DataType::Utf8, DataType::Boolean),
            _ => return Err(mismatch()),
        },
        // Timestamps compare as epoch milliseconds, so that zones and integer literals agree.
        _ if op.is_comparison() => match joined {
            Kind::Null | Kind::Timestamp(_) | Kind::Interval => {
                (DataType::Int64, DataType::Boolean)
            }
            other => (other.data_type(), DataType::Boolean),
        },
        _ => match joined {
            Kind::Null | Kind::Int => (DataType::Int64, DataType::Int64),
            Kind::Float => (DataType::Float64, DataType::Float64),
            _ => return Err(mismatch()),
        },
    };
    Ok(BinaryPlan { operand, result })
}

/// Arithmetic on timestamps and intervals, computed on epoch milliseconds: `ts ± interval` and
/// `interval + ts` are timestamps in `ts`'s zone, `interval ± interval`, `interval * n`,
/// `n * interval` and `interval / n` intervals. `None` for every other pairing.
fn time_arithmetic(op: BinaryOp, left: &Kind, right: &Kind) -> Option<BinaryPlan> {
    let result = match (left, op, right) {
        (Kind::Timestamp(tz), BinaryOp::Plus | BinaryOp::Minus, Kind::Interval)
        | (Kind::Interval, BinaryOp::Plus, Kind::Timestamp(tz)) => Kind::Timestamp(tz.clone()),
        (Kind::Interval, BinaryOp::Plus | BinaryOp::Minus, Kind::Interval)
        | (Kind::Interval, BinaryOp::Multiply | BinaryOp::Divide, Kind::Int)
        | (Kind::Int, BinaryOp::Multiply, Kind::Interval) => Kind::Interval,
        _ => return None,
    };
    Some(BinaryPlan {
        operand: DataType::Int64,
        result: result.data_type(),
    })
}

/// The type of `not input`.
pub(super) fn not(input: &DataType) -> Result<DataType, ExprError> {
    match kind(input) {
        Kind::Null | Kind::Bool => Ok(DataType::Boolean),
        _ => Err(argument("not", "a boolean", input)),
    }
}

/// The type of `-input` (and of `abs(input)`).
pub(super) fn negate(operator: &str, input: &DataType) -> Result<DataType, ExprError> {
    match kind(input) {
        Kind::Null | Kind::Int => Ok(DataType::Int64),
        Kind::Float => Ok(DataType::Float64),
        Kind::Interval if operator == "-" => Ok(Kind::Interval.data_type()),
        _ => Err(argument(operator, "a number", input)),
    }
}

/// The type of `cast(input as to)`; a value that does not convert becomes null at run time.
pub(super) fn cast(input: &DataType, to: CastType) -> Result<DataType, ExprError> {
    let target = to.data_type();
    if can_cast_types(&kind(input).data_type(), &target) {
        Ok(target)
    } else {
        Err(argument(
            &format!("cast(.. as {})", to.name()),
            "a value convertible to it",
            input,
        ))
    }
}

/// How to evaluate a call: cast argument `i` to `args[i]`, the function returns `result`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CallPlan {
    pub args: Vec<DataType>,
    pub result: DataType,
}

/// Checks the argument count alone, so the parser can report it at the call's position.
pub(super) fn check_arity(function: Function, found: usize) -> Result<(), ExprError> {
    let (min, max, expected) = match function {
        Function::Lower
        | Function::Upper
        | Function::Length
        | Function::Trim
        | Function::Abs
        | Function::Year
        | Function::Month
        | Function::Day
        | Function::Hour
        | Function::Minute
        | Function::Second => (1, 1, "1"),
        Function::Regexp => (2, 2, "2"),
        Function::RegexpReplace => (3, 3, "3"),
        Function::Substr | Function::RegexpExtract => (2, 3, "2 or 3"),
        Function::DateFormat | Function::ToTimestamp => (1, 2, "1 or 2"),
        Function::FloorTime | Function::CeilTime => (2, 2, "2"),
        Function::TimestampDiff => (3, 3, "3"),
        Function::Concat | Function::Coalesce => (1, usize::MAX, "1 or more"),
    };
    if (min..=max).contains(&found) {
        Ok(())
    } else {
        Err(ExprError::ArgumentCount {
            function: function.name().to_string(),
            expected: expected.to_string(),
            found,
        })
    }
}

/// The plan for `function(args)`, or the error naming the function and the offending type.
pub(super) fn call(function: Function, args: &[DataType]) -> Result<CallPlan, ExprError> {
    check_arity(function, args.len())?;
    let name = function.name();
    let expect = |data_type: &DataType, want: Kind, what: &str| match kind(data_type) {
        Kind::Null => Ok(want.data_type()),
        found if found == want => Ok(want.data_type()),
        _ => Err(argument(name, what, data_type)),
    };
    let (args, result) = match function {
        Function::Lower | Function::Upper | Function::Trim | Function::Concat => {
            let args = args
                .iter()
                .map(|arg| expect(arg, Kind::Str, "string arguments"));
            (args.collect::<Result<_, _>>()?, DataType::Utf8)
        }
        Function::Length => (
            vec![expect(&args[0], Kind::Str, "a string")?],
            DataType::Int64,
        ),
        Function::Substr => {
            let mut planned = vec![expect(&args[0], Kind::Str, "a string to cut")?];
            for arg in &args[1..] {
                planned.push(expect(arg, Kind::Int, "integer positions and lengths")?);
            }
            (planned, DataType::Utf8)
        }
        Function::Regexp | Function::RegexpExtract | Function::RegexpReplace => {
            let mut planned = vec![
                expect(&args[0], Kind::Str, "a string to search")?,
                expect(&args[1], Kind::Str, "a pattern string")?,
            ];
            match args.get(2) {
                Some(group) if function == Function::RegexpExtract => {
                    planned.push(expect(group, Kind::Int, "an integer group number")?);
                }
                Some(replacement) => {
                    planned.push(expect(replacement, Kind::Str, "a replacement string")?);
                }
                None => {}
            }
            let result = match function {
                Function::Regexp => DataType::Boolean,
                _ => DataType::Utf8,
            };
            (planned, result)
        }
        Function::DateFormat => {
            let time = match kind(&args[0]) {
                Kind::Timestamp(_) => args[0].clone(),
                Kind::Null => Kind::Timestamp(None).data_type(),
                _ => return Err(argument(name, "a timestamp", &args[0])),
            };
            let mut planned = vec![time];
            if let Some(pattern) = args.get(1) {
                planned.push(expect(pattern, Kind::Str, "a pattern string")?);
            }
            (planned, DataType::Utf8)
        }
        Function::FloorTime | Function::CeilTime => {
            let time = match kind(&args[0]) {
                Kind::Timestamp(tz) if utc(tz.as_deref()) => Kind::Timestamp(tz).data_type(),
                Kind::Null => Kind::Timestamp(None).data_type(),
                _ => return Err(argument(name, "a timestamp in UTC", &args[0])),
            };
            (vec![time.clone(), Kind::Interval.data_type()], time)
        }
        Function::TimestampDiff => {
            let mut planned = vec![Kind::Interval.data_type()];
            for arg in &args[1..] {
                planned.push(match kind(arg) {
                    Kind::Timestamp(tz) => Kind::Timestamp(tz).data_type(),
                    Kind::Null => Kind::Timestamp(None).data_type(),
                    _ => return Err(argument(name, "timestamps", arg)),
                });
            }
            (planned, DataType::Int64)
        }
        Function::ToTimestamp => {
            let planned = args
                .iter()
                .map(|arg| expect(arg, Kind::Str, "string arguments"));
            (
                planned.collect::<Result<_, _>>()?,
                super::CastType::Timestamp.data_type(),
            )
        }
        Function::Abs => {
            let result = negate(name, &args[0])?;
            (vec![result.clone()], result)
        }
        Function::Year
        | Function::Month
        | Function::Day
        | Function::Hour
        | Function::Minute
        | Function::Second => match kind(&args[0]) {
            Kind::Timestamp(_) => (vec![args[0].clone()], DataType::Int64),
            Kind::Null => (vec![Kind::Timestamp(None).data_type()], DataType::Int64),
            _ => return Err(argument(name, "a timestamp", &args[0])),
        },
        Function::Coalesce => {
            let mut joined = Kind::Null;
            for arg in args {
                joined = unify(&joined, &kind(arg)).ok_or_else(|| ExprError::Mismatch {
                    operator: name.to_string(),
                    left: joined.data_type(),
                    right: arg.clone(),
                })?;
            }
            (vec![joined.data_type(); args.len()], joined.data_type())
        }
    };
    Ok(CallPlan { args, result })
}

/// Whether a timestamp labelled `zone` counts its days in UTC (flooring to a day elsewhere
/// would need the zone's offsets).
fn utc(zone: Option<&str>) -> bool {
    matches!(zone, None | Some("UTC" | "+00:00" | "Z" | "Etc/UTC"))
}

fn argument(function: &str, expected: &str, found: &DataType) -> ExprError {
    ExprError::Argument {
        function: function.to_string(),
        expected: expected.to_string(),
        found: found.clone(),
    }
}

/// The index of column `name` in `schema`, if it exists and expressions can read its type.
pub(super) fn column(name: &str, schema: &Schema) -> Result<usize, ExprError> {
    let index = schema
        .index_of(name)
        .map_err(|_| ExprError::UnknownColumn {
            column: name.to_string(),
            available: schema
                .fields()
                .iter()
                .map(|field| field.name().clone())
                .collect(),
        })?;
    let data_type = schema.field(index).data_type();
    match Kind::of(data_type) {
        Some(_) => Ok(index),
        None => Err(ExprError::UnsupportedColumn {
            column: name.to_string(),
            data_type: data_type.clone(),
        }),
    }
}

/// The type of a literal.
pub(super) fn literal(value: &Literal) -> DataType {
    match value {
        Literal::Null => DataType::Null,
        Literal::Bool(_) => DataType::Boolean,
        Literal::Int(_) => DataType::Int64,
        Literal::Float(_) => DataType::Float64,
        Literal::Str(_) => DataType::Utf8,
        Literal::Interval(_) => Kind::Interval.data_type(),
    }
}

/// The type `expr` evaluates to on batches of `schema` (see [`Expr::data_type`]).
pub(super) fn data_type(expr: &Expr, schema: &Schema) -> Result<DataType, ExprError> {
    match expr {
        Expr::Column(name) => Ok(schema.field(column(name, schema)?).data_type().clone()),
        Expr::Literal(value) => Ok(literal(value)),
        Expr::Binary { left, op, right } => {
            Ok(binary(*op, &data_type(left, schema)?, &data_type(right, schema)?)?.result)
        }
        Expr::Not(input) => not(&data_type(input, schema)?),
        Expr::Negate(input) => negate("-", &data_type(input, schema)?),
        Expr::IsNull { expr, .. } => data_type(expr, schema).map(|_| DataType::Boolean),
        Expr::Call { function, args } => {
            let args = args
                .iter()
                .map(|arg| data_type(arg, schema))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(call(*function, &args)?.result)
        }
        Expr::Cast { expr, to } => cast(&data_type(expr, schema)?, *to),
        Expr::InList { expr, list, .. } => {
            let value = data_type(expr, schema)?;
            for item in list {
                binary(BinaryOp::Eq, &value, &data_type(item, schema)?)?;
            }
            Ok(DataType::Boolean)
        }
        Expr::Case {
            branches,
            otherwise,
        } => {
            let mut values = Vec::new();
            for (condition, value) in branches {
                condition_type(&data_type(condition, schema)?)?;
                values.push(data_type(value, schema)?);
            }
            if let Some(otherwise) = otherwise {
                values.push(data_type(otherwise, schema)?);
            }
            case(&values)
        }
    }
}

/// Checks a `case` branch's condition: a boolean (or null, which never matches).
pub(super) fn condition_type(condition: &DataType) -> Result<(), ExprError> {
    match kind(condition) {
        Kind::Null | Kind::Bool => Ok(()),
        _ => Err(argument("case when", "a boolean condition", condition)),
    }
}

/// The type of a `case` whose branch values have `values` types: the family they all fit in.
pub(super) fn case(values: &[DataType]) -> Result<DataType, ExprError> {
    let mut joined = Kind::Null;
    for value in values {
        joined = unify(&joined, &kind(value)).ok_or_else(|| ExprError::Mismatch {
            operator: "case".into(),
            left: joined.data_type(),
            right: value.clone(),
        })?;
    }
    Ok(joined.data_type())
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::Field;

    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("i8", DataType::Int8, true),
            Field::new("u64", DataType::UInt64, true),
            Field::new("f32", DataType::Float32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "dict",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                true,
            ),
            Field::new("b", DataType::Boolean, true),
            Field::new(
                "list",
                DataType::List(Arc::new(Field::new("x", DataType::Int64, true))),
                true,
            ),
        ])
    }

    fn type_of(text: &str) -> Result<DataType, ExprError> {
        Expr::parse(text)?.data_type(&schema())
    }

    #[test]
    fn arithmetic_widens_integers_and_floats() -> Result<(), ExprError> {
        assert_eq!(
            type_of("i8")?,
            DataType::Int8,
            "a bare column keeps its type"
        );
        assert_eq!(type_of("i8 + u64")?, DataType::Int64);
        assert_eq!(type_of("i8 / 2")?, DataType::Int64);
        assert_eq!(type_of("i8 * f32")?, DataType::Float64);
        assert_eq!(type_of("-f32")?, DataType::Float64);
        assert_eq!(type_of("null + null")?, DataType::Int64);
        assert_eq!(type_of("abs(i8)")?, DataType::Int64);
        Ok(())
    }

    #[test]
    fn comparisons_and_logic_are_boolean() -> Result<(), ExprError> {
        assert_eq!(type_of("dict = s and ts > 0 or not b")?, DataType::Boolean);
        assert_eq!(type_of("f32 >= i8")?, DataType::Boolean);
        assert_eq!(type_of("s is null")?, DataType::Boolean);
        assert_eq!(type_of("null = 1")?, DataType::Boolean);
        Ok(())
    }

    #[test]
    fn mixing_strings_and_numbers_names_the_operator_and_both_types() {
        let err = type_of("s + 1").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("type error: cannot apply `+` to Utf8 and Int64")
        );
        let err = type_of("dict < 3").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("type error: cannot apply `<` to Dictionary(Int32, Utf8) and Int64")
        );
        assert!(matches!(
            type_of("ts > 1.5"),
            Err(ExprError::Mismatch { .. })
        ));
        assert!(matches!(
            type_of("b and 1"),
            Err(ExprError::Mismatch { .. })
        ));
        assert!(matches!(type_of("s || 1"), Err(ExprError::Mismatch { .. })));
        assert!(matches!(type_of("ts + 1"), Err(ExprError::Mismatch { .. })));
    }

    #[test]
    fn operands_of_the_wrong_kind_are_named() {
        let err = type_of("not s").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("type error: `not` expects a boolean, found Utf8")
        );
        assert!(matches!(type_of("-s"), Err(ExprError::Argument { .. })));
        assert!(matches!(
            type_of("lower(i8)"),
            Err(ExprError::Argument { .. })
        ));
        assert!(matches!(
            type_of("substr(s, 'x')"),
            Err(ExprError::Argument { .. })
        ));
        assert!(matches!(
            type_of("cast(b as timestamp)"),
            Err(ExprError::Argument { .. })
        ));
    }

    #[test]
    fn functions_return_their_documented_types() -> Result<(), ExprError> {
        assert_eq!(type_of("length(dict)")?, DataType::Int64);
        assert_eq!(type_of("concat(s, dict, null)")?, DataType::Utf8);
        assert_eq!(type_of("substr(s, 1, i8)")?, DataType::Utf8);
        assert_eq!(type_of("coalesce(null, i8, f32)")?, DataType::Float64);
        assert_eq!(type_of("coalesce(null)")?, DataType::Null);
        assert_eq!(
            type_of("coalesce(ts, 0)")?,
            schema().field(5).data_type().clone()
        );
        assert_eq!(
            type_of("cast(s as timestamp)")?,
            CastType::Timestamp.data_type()
        );
        assert_eq!(type_of("cast(ts as int)")?, DataType::Int64);
        let err = type_of("coalesce(s, 1)").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("type error: cannot apply `coalesce` to Utf8 and Int64")
        );
        Ok(())
    }

    #[test]
    fn arity_is_checked() {
        let expr = Expr::Call {
            function: Function::Lower,
            args: vec![],
        };
        let err = expr.data_type(&schema()).err().map(|err| err.to_string());
        assert_eq!(err.as_deref(), Some("`lower` takes 1 argument(s), found 0"));
        assert!(check_arity(Function::Substr, 4).is_err());
        assert!(check_arity(Function::Concat, 5).is_ok());
    }

    #[test]
    fn unknown_and_unsupported_columns_are_reported() {
        let err = type_of("amount + 1").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown column `amount`; available columns: i8, u64, f32, s, dict, ts, b, list")
        );
        assert!(matches!(
            type_of("list is null"),
            Err(ExprError::UnsupportedColumn { .. })
        ));
    }
}
