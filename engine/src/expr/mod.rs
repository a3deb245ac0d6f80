//! The expression language of `filter` and `project`: syntax tree, errors and public API.
//!
//! An expression is SQL-like text such as `amount * 1.1 > 100 and lower(country) = 'fr'`.
//! It is [parsed](Expr::parse) once, [type-checked](Expr::data_type) against the input
//! schema when the job is validated (before any data moves), and then
//! [evaluated](Expr::evaluate) column-at-a-time on every batch with Arrow compute kernels.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::{Array, BooleanArray, Int64Array, RecordBatch};
//! # use arrow::datatypes::{DataType, Field, Schema};
//! use sluice_engine::expr::Expr;
//!
//! let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
//! let batch = RecordBatch::try_new(
//!     schema.clone(),
//!     vec![Arc::new(Int64Array::from(vec![Some(1), None, Some(7)]))],
//! )?;
//! let keep = Expr::parse("n % 2 = 1 and n > 3")?;
//! assert_eq!(keep.data_type(&schema)?, DataType::Boolean);
//! let mask = keep.evaluate(&batch)?;
//! let expected = BooleanArray::from(vec![Some(false), None, Some(true)]);
//! assert_eq!(mask.as_ref(), &expected as &dyn Array);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Semantics
//! - **Types.** Integer columns of any width (and `UInt64`, cast with overflow to null) are
//!   widened to `Int64`, floats to `Float64`; an integer meeting a float becomes `Float64`.
//!   `LargeUtf8`, `Utf8View` and dictionary-encoded strings are read as `Utf8`. Timestamp
//!   columns compare with each other and with integers, which count epoch milliseconds.
//!   Mixing a string with a number is a type error found by [`Expr::data_type`].
//! - **Nulls.** Nulls propagate through arithmetic, comparisons and functions (including
//!   `concat`, as in Flink); only `coalesce`, `is null` and `is not null` look through them.
//!   `and`, `or` and `not` follow SQL three-valued (Kleene) logic: `null and false` is
//!   `false`, `null or true` is `true`.
//! - **Arithmetic.** `Int64` `+ - *` wrap on overflow (they never panic or fail the job).
//!   `/` on integers truncates towards zero like SQL and Flink; integer `/` and `%` by zero
//!   give null. Float arithmetic follows IEEE 754 (`1.0 / 0` is infinity).
//! - **Casts.** `cast(x as TYPE)` turns a value that does not convert (`cast('abc' as int)`)
//!   into null, like Flink's `TRY_CAST`, rather than failing the job. A timestamp is an
//!   instant in epoch milliseconds whatever its zone label; text converts to and from it as
//!   UTC (`'2024-05-01T12:00:00+02:00'` is 10:00 UTC).
//! - **Filtering.** A `filter` keeps the rows whose predicate is `true`; `false` and null
//!   both drop the row, as in a SQL `WHERE` clause.
//! - **Names.** Keywords and function names are case-insensitive; column names are matched
//!   exactly. Double quotes or Flink's backticks name any column: `"order id" > 0`; a dotted
//!   name (`payments.amount_cents`) is one column, as a join names them.
//! - **Conditionals.** `case when c then v ... [else e] end` (and `case x when a then ...`)
//!   takes the first branch whose condition is true; `x between a and b` is
//!   `x >= a and x <= b`; `x in (a, b)` is `x = a or x = b` with `x` evaluated once (so a
//!   null in the list makes a non-match null, as in SQL); `s like 'a%'` and `ilike` match SQL patterns.
//! - **Syntax.** Text is parsed by `sqlparser` with sluice's [Flink dialect](crate::dialect),
//!   the same parser as SQL scripts: `--` starts a comment, `||` binds like `*`, and valid SQL
//!   the expression IR has no node for is refused naming the construct
//!   ([`ExprError::Unsupported`]).

mod display;
mod eval;
mod functions;
mod interval;
mod parse;
mod regexp;
mod temporal;
mod types;

pub use interval::interval_millis;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Schema, TimeUnit};
use arrow::error::ArrowError;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the input batch, by exact name.
    Column(String),
    /// A constant.
    Literal(Literal),
    /// `left op right`.
    Binary {
        left: Box<Expr>,
        op: BinaryOp,
        right: Box<Expr>,
    },
    /// `not expr` (three-valued: `not null` is null).
    Not(Box<Expr>),
    /// `-expr`.
    Negate(Box<Expr>),
    /// `expr is null`, or `expr is not null` when `negated`.
    IsNull { expr: Box<Expr>, negated: bool },
    /// A function call such as `lower(name)`.
    Call { function: Function, args: Vec<Expr> },
    /// `cast(expr as type)`.
    Cast { expr: Box<Expr>, to: CastType },
    /// `expr [not] in (a, b, ...)`: `expr = a or expr = b ...` with `expr` evaluated once
    /// (a null in the list makes a non-match null, as in SQL).
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `case when c1 then v1 [when ...] [else e] end`: the value of the first branch whose
    /// condition is true (null counts as false), else `otherwise` (null when absent).
    Case {
        branches: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
}

/// A constant value in an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`, of no type until it meets another operand.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An `Int64` such as `42` or `-3`.
    Int(i64),
    /// A `Float64` such as `1.5` or `2e3`.
    Float(f64),
    /// A `Utf8` string such as `'it''s'`.
    Str(String),
    /// A span of time such as `INTERVAL '5' SECOND`, in milliseconds (may be negative), typed
    /// `Duration(Millisecond)`: it adds to and subtracts from timestamps.
    Interval(i64),
}

/// An infix operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `or` (three-valued).
    Or,
    /// `and` (three-valued).
    And,
    /// `=` or `==`.
    Eq,
    /// `!=` or `<>`.
    NotEq,
    /// `<`.
    Lt,
    /// `<=`.
    LtEq,
    /// `>`.
    Gt,
    /// `>=`.
    GtEq,
    /// `+`.
    Plus,
    /// `-`.
    Minus,
    /// `*`.
    Multiply,
    /// `/`: truncating on integers, null when dividing by integer zero.
    Divide,
    /// `%`: remainder with the sign of the dividend, null for integer zero.
    Modulo,
    /// `||`: string concatenation.
    Concat,
    /// `like`: SQL pattern match (`%` any run, `_` one character, `\\` escapes).
    Like,
    /// `ilike`: `like` ignoring case.
    ILike,
}

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `lower(s)`.
    Lower,
    /// `upper(s)`.
    Upper,
    /// `length(s)`: the number of characters (not bytes), as `Int64`.
    Length,
    /// `trim(s)`: removes leading and trailing spaces (`' '` only, as in SQL).
    Trim,
    /// `concat(a, b, ...)`: null if any argument is null.
    Concat,
    /// `substr(s, start[, len])`: 1-based, SQL rules (`substr('hello', 0, 2)` is `'h'`).
    Substr,
    /// `abs(x)`; `abs` of the smallest `Int64` wraps to itself.
    Abs,
    /// `coalesce(a, b, ...)`: the first non-null argument.
    Coalesce,
    /// `year(ts)`, also `extract(year from ts)`: fields of a timestamp in its time zone
    /// (UTC for timestamps without one), as `Int64`.
    Year,
    /// `month(ts)`: 1 to 12.
    Month,
    /// `day(ts)` (or `dayofmonth`): 1 to 31.
    Day,
    /// `hour(ts)`: 0 to 23.
    Hour,
    /// `minute(ts)`: 0 to 59.
    Minute,
    /// `second(ts)`: 0 to 59.
    Second,
    /// `regexp(s, pattern)`: whether some substring of `s` matches `pattern` (Flink's `REGEXP`).
    Regexp,
    /// `regexp_extract(s, pattern[, group])`: the text of capture `group` (0, the whole match,
    /// by default) of the first match, null when nothing matches or the group took no part.
    RegexpExtract,
    /// `regexp_replace(s, pattern, replacement)`: every match replaced (`$1` names a capture).
    RegexpReplace,
    /// `date_format(ts[, pattern])`: the timestamp as text in its time zone, with a Java
    /// `SimpleDateFormat` pattern as Flink takes (`'yyyy-MM-dd HH:mm:ss'` by default).
    DateFormat,
    /// `to_timestamp(s[, pattern])`: text read as a UTC timestamp, with the same patterns as
    /// `date_format` (any ISO 8601 form without one); null when it does not parse.
    ToTimestamp,
    /// `floor(ts to unit)`: the timestamp rounded down to a whole `unit` (day to millisecond,
    /// the second argument as an interval of one unit), in UTC.
    FloorTime,
    /// `ceil(ts to unit)`: rounded up to a whole `unit`.
    CeilTime,
    /// `timestampdiff(unit, a, b)`: whole `unit`s from `a` to `b` (negative when `b` is
    /// earlier), truncated towards zero; the first argument an interval of one unit.
    TimestampDiff,
}

/// The target of `cast(x as TYPE)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CastType {
    /// `int`, `bigint`, `int64`: `Int64`.
    Int,
    /// `double`, `float`, `float64`: `Float64`.
    Float,
    /// `string`, `varchar`, `utf8`: `Utf8`.
    String,
    /// `bool`, `boolean`: `Boolean`.
    Bool,
    /// `timestamp`: `Timestamp(Millisecond, "UTC")`.
    Timestamp,
}

/// Why an expression could not be parsed, type-checked or evaluated.
///
/// Every variant except [`ExprError::Evaluate`] is the user's to fix in the job file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExprError {
    /// The text is not a valid expression; `line` and `column` are 1-based, in characters.
    #[error("syntax error at {} near `{found}`: {message}", place(*line, *column))]
    Parse {
        line: usize,
        column: usize,
        found: String,
        message: String,
    },

    /// Valid SQL that expressions do not support (yet), such as `x BETWEEN 1 AND 2`.
    #[error("{what} is not supported in expressions: `{construct}` at {}", place(*line, *column))]
    Unsupported {
        construct: String,
        what: String,
        line: usize,
        column: usize,
    },

    /// A call names a function that does not exist.
    #[error("unknown function `{name}` at {}; known functions: {}", place(*line, *column), Function::NAMES.join(", "))]
    UnknownFunction {
        name: String,
        line: usize,
        column: usize,
    },

    /// A constant argument that cannot mean anything: a bad regular expression, a date pattern
    /// letter with no translation, a column where a constant pattern must stand.
    #[error("`{function}` at {}: {message}", place(*line, *column))]
    BadArgument {
        function: String,
        message: String,
        line: usize,
        column: usize,
    },

    /// A column the input schema does not have.
    #[error("unknown column `{column}`; available columns: {}", available.join(", "))]
    UnknownColumn {
        column: String,
        available: Vec<String>,
    },

    /// A column whose Arrow type expressions cannot read (a list, a struct, ...).
    #[error("column `{column}` has type {data_type}, which expressions do not support")]
    UnsupportedColumn { column: String, data_type: DataType },

    /// An operator was applied to two types it cannot combine.
    #[error("type error: cannot apply `{operator}` to {left} and {right}")]
    Mismatch {
        operator: String,
        left: DataType,
        right: DataType,
    },

    /// An operand or function argument has the wrong type.
    #[error("type error: `{function}` expects {expected}, found {found}")]
    Argument {
        function: String,
        expected: String,
        found: DataType,
    },

    /// A function was called with the wrong number of arguments.
    #[error("`{function}` takes {expected} argument(s), found {found}")]
    ArgumentCount {
        function: String,
        expected: String,
        found: usize,
    },

    /// An Arrow kernel failed while evaluating `expr` (the text of the failing sub-expression).
    #[error("evaluating `{expr}`: {source}")]
    Evaluate {
        expr: String,
        #[source]
        source: ArrowError,
    },
}

/// `column 5` in one-line text, `line 2, column 5` past the first line.
fn place(line: usize, column: usize) -> String {
    if line <= 1 {
        format!("column {column}")
    } else {
        format!("line {line}, column {column}")
    }
}

impl ExprError {
    /// The 1-based line and column the error is about, when it is about a place in the text.
    pub fn place(&self) -> Option<(usize, usize)> {
        match self {
            ExprError::Parse { line, column, .. }
            | ExprError::Unsupported { line, column, .. }
            | ExprError::UnknownFunction { line, column, .. }
            | ExprError::BadArgument { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }

    /// The message without its place, for a caller that shows the place itself (the SQL front
    /// end points a caret at it).
    pub fn message(&self) -> String {
        match self {
            ExprError::Parse { found, message, .. } => {
                format!("syntax error near `{found}`: {message}")
            }
            ExprError::Unsupported {
                construct, what, ..
            } => format!("{what} is not supported in expressions: `{construct}`"),
            ExprError::UnknownFunction { name, .. } => format!(
                "unknown function `{name}`; known functions: {}",
                Function::NAMES.join(", ")
            ),
            ExprError::BadArgument {
                function, message, ..
            } => format!("`{function}`: {message}"),
            other => other.to_string(),
        }
    }

    fn evaluate(expr: &Expr) -> impl FnOnce(ArrowError) -> Self + '_ {
        move |source| ExprError::Evaluate {
            expr: expr.to_string(),
            source,
        }
    }
}

impl Expr {
    /// Parses expression text; see the [module docs](self) for the grammar's semantics.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        parse::parse(text)
    }

    /// Lowers an expression of a parsed SQL statement (the SQL front end's entry point).
    pub fn from_sql(ast: &sqlparser::ast::Expr) -> Result<Expr, ExprError> {
        parse::lower(ast)
    }

    /// The Arrow type [`evaluate`](Self::evaluate) returns for batches of `schema`.
    ///
    /// This is the full type check: call it when validating a job, so that a bad column name
    /// or a `'text' + 1` is reported before any data moves.
    pub fn data_type(&self, schema: &Schema) -> Result<DataType, ExprError> {
        types::data_type(self, schema)
    }

    /// Evaluates the expression on every row of `batch`, one kernel call per node.
    ///
    /// The result has `batch.num_rows()` rows and the type [`data_type`](Self::data_type)
    /// reports. A bare column comes back unchanged (same type, no copy).
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef, ExprError> {
        eval::evaluate(self, batch)
    }

    /// The columns the expression reads, in order of first appearance, without repeats.
    pub fn columns(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_columns(&mut out);
        out
    }

    fn collect_columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Column(name) => {
                if !out.contains(name) {
                    out.push(name.clone());
                }
            }
            Expr::Literal(_) => {}
            Expr::Binary { left, right, .. } => {
                left.collect_columns(out);
                right.collect_columns(out);
            }
            Expr::Not(expr) | Expr::Negate(expr) | Expr::IsNull { expr, .. } => {
                expr.collect_columns(out);
            }
            Expr::Cast { expr, .. } => expr.collect_columns(out),
            Expr::Call { args, .. } => args.iter().for_each(|arg| arg.collect_columns(out)),
            Expr::InList { expr, list, .. } => {
                expr.collect_columns(out);
                list.iter().for_each(|item| item.collect_columns(out));
            }
            Expr::Case {
                branches,
                otherwise,
            } => {
                for (condition, value) in branches {
                    condition.collect_columns(out);
                    value.collect_columns(out);
                }
                if let Some(otherwise) = otherwise {
                    otherwise.collect_columns(out);
                }
            }
        }
    }

    /// The expression with each column `rename` maps renamed (the others unchanged).
    pub fn rename_columns(&self, rename: &impl Fn(&str) -> Option<String>) -> Expr {
        let go = |expr: &Expr| Box::new(expr.rename_columns(rename));
        match self {
            Expr::Column(name) => Expr::Column(rename(name).unwrap_or_else(|| name.clone())),
            Expr::Literal(_) => self.clone(),
            Expr::Binary { left, op, right } => Expr::Binary {
                left: go(left),
                op: *op,
                right: go(right),
            },
            Expr::Not(expr) => Expr::Not(go(expr)),
            Expr::Negate(expr) => Expr::Negate(go(expr)),
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: go(expr),
                negated: *negated,
            },
            Expr::Call { function, args } => Expr::Call {
                function: *function,
                args: args.iter().map(|arg| arg.rename_columns(rename)).collect(),
            },
            Expr::Cast { expr, to } => Expr::Cast {
                expr: go(expr),
                to: *to,
            },
            Expr::InList {
                expr,
                list,
                negated,
            } => Expr::InList {
                expr: go(expr),
                list: list
                    .iter()
                    .map(|item| item.rename_columns(rename))
                    .collect(),
                negated: *negated,
            },
            Expr::Case {
                branches,
                otherwise,
            } => Expr::Case {
                branches: branches
                    .iter()
                    .map(|(c, v)| (c.rename_columns(rename), v.rename_columns(rename)))
                    .collect(),
                otherwise: otherwise.as_deref().map(go),
            },
        }
    }

    /// A reference to column `name`.
    pub fn column(name: impl Into<String>) -> Expr {
        Expr::Column(name.into())
    }

    /// `left op right`.
    pub fn binary(left: Expr, op: BinaryOp, right: Expr) -> Expr {
        Expr::Binary {
            left: Box::new(left),
            op,
            right: Box::new(right),
        }
    }
}

impl BinaryOp {
    /// The operator as written in expression text (`=` for [`BinaryOp::Eq`]).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::Plus => "+",
            BinaryOp::Minus => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Concat => "||",
            BinaryOp::Like => "like",
            BinaryOp::ILike => "ilike",
        }
    }

    /// Whether the operator compares its operands and yields a boolean.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

impl Function {
    /// Every function name, as written in expression text.
    pub const NAMES: [&'static str; 20] = [
        "lower",
        "upper",
        "length",
        "trim",
        "concat",
        "substr",
        "abs",
        "coalesce",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "regexp",
        "regexp_extract",
        "regexp_replace",
        "date_format",
        "to_timestamp",
        "cast",
    ];

    /// The function's name in expression text.
    pub fn name(self) -> &'static str {
        match self {
            Function::Lower => "lower",
            Function::Upper => "upper",
            Function::Length => "length",
            Function::Trim => "trim",
            Function::Concat => "concat",
            Function::Substr => "substr",
            Function::Abs => "abs",
            Function::Coalesce => "coalesce",
            Function::Year => "year",
            Function::Month => "month",
            Function::Day => "day",
            Function::Hour => "hour",
            Function::Minute => "minute",
            Function::Second => "second",
            Function::Regexp => "regexp",
            Function::RegexpExtract => "regexp_extract",
            Function::RegexpReplace => "regexp_replace",
            Function::DateFormat => "date_format",
            Function::ToTimestamp => "to_timestamp",
            Function::FloorTime => "floor",
            Function::CeilTime => "ceil",
            Function::TimestampDiff => "timestampdiff",
        }
    }

    /// The function called `name` (any case); `cast` is syntax, not a [`Function`], and
    /// `floor(ts to unit)`, `ceil(..)` and `timestampdiff(unit, ..)` come from their own syntax.
    pub fn from_name(name: &str) -> Option<Function> {
        let function = match name.to_ascii_lowercase().as_str() {
            "lower" => Function::Lower,
            "upper" => Function::Upper,
            "length" => Function::Length,
            "trim" => Function::Trim,
            "concat" => Function::Concat,
            "substr" => Function::Substr,
            "abs" => Function::Abs,
            "coalesce" => Function::Coalesce,
            "year" => Function::Year,
            "month" => Function::Month,
            "day" | "dayofmonth" => Function::Day,
            "hour" => Function::Hour,
            "minute" => Function::Minute,
            "second" => Function::Second,
            "regexp" => Function::Regexp,
            "regexp_extract" => Function::RegexpExtract,
            "regexp_replace" => Function::RegexpReplace,
            "date_format" => Function::DateFormat,
            "to_timestamp" => Function::ToTimestamp,
            _ => return None,
        };
        Some(function)
    }
}

impl CastType {
    /// The Arrow type a cast to `self` produces.
    pub fn data_type(self) -> DataType {
        match self {
            CastType::Int => DataType::Int64,
            CastType::Float => DataType::Float64,
            CastType::String => DataType::Utf8,
            CastType::Bool => DataType::Boolean,
            CastType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
        }
    }

    /// The canonical type name, as [`Display`](std::fmt::Display) writes it.
    pub fn name(self) -> &'static str {
        match self {
            CastType::Int => "bigint",
            CastType::Float => "double",
            CastType::String => "varchar",
            CastType::Bool => "boolean",
            CastType::Timestamp => "timestamp",
        }
    }

    /// The cast target called `name` (any case), accepting the usual SQL and Arrow aliases.
    pub fn from_name(name: &str) -> Option<CastType> {
        let to = match name.to_ascii_lowercase().as_str() {
            "int" | "bigint" | "int64" => CastType::Int,
            "double" | "float" | "float64" => CastType::Float,
            "string" | "varchar" | "utf8" => CastType::String,
            "bool" | "boolean" => CastType::Bool,
            "timestamp" => CastType::Timestamp,
            _ => return None,
        };
        Some(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_listed_once_in_order_of_appearance() -> Result<(), ExprError> {
        let expr = Expr::parse("b + a > coalesce(b, c) and \"odd name\" is null")?;
        assert_eq!(expr.columns(), vec!["b", "a", "c", "odd name"]);
        assert!(Expr::parse("1 + 2")?.columns().is_empty());
        Ok(())
    }

    #[test]
    fn columns_are_renamed_everywhere_they_appear() -> Result<(), ExprError> {
        let expr = Expr::parse("a + coalesce(b, -a) > cast(c as double) and not b is null")?;
        let renamed = expr.rename_columns(&|name| (name != "c").then(|| format!("{name}2")));
        assert_eq!(
            renamed,
            Expr::parse("a2 + coalesce(b2, -a2) > cast(c as double) and not b2 is null")?
        );
        Ok(())
    }

    #[test]
    fn names_map_back_and_forth() {
        for name in &Function::NAMES[..Function::NAMES.len() - 1] {
            assert_eq!(Function::from_name(name).map(Function::name), Some(*name));
        }
        assert_eq!(Function::from_name("LoWeR"), Some(Function::Lower));
        assert_eq!(Function::from_name("cast"), None);
        for (alias, to) in [
            ("INT", CastType::Int),
            ("float64", CastType::Float),
            ("Utf8", CastType::String),
        ] {
            assert_eq!(CastType::from_name(alias), Some(to));
            assert_eq!(CastType::from_name(to.name()), Some(to));
        }
        assert_eq!(CastType::from_name("date"), None);
    }

    #[test]
    fn errors_name_what_went_wrong() {
        let err = ExprError::UnknownColumn {
            column: "amt".into(),
            available: vec!["amount".into(), "ts".into()],
        };
        assert_eq!(
            err.to_string(),
            "unknown column `amt`; available columns: amount, ts"
        );
        let err = ExprError::Mismatch {
            operator: "+".into(),
            left: DataType::Utf8,
            right: DataType::Int64,
        };
        assert_eq!(
            err.to_string(),
            "type error: cannot apply `+` to Utf8 and Int64"
        );
    }
}
