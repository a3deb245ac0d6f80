//! Parses expression text with sqlparser's Flink dialect and lowers its tree to sluice's [`Expr`].
//!
//! sqlparser knows far more SQL than the expression IR: what the IR has no node for is refused
//! here with [`ExprError::Unsupported`], naming the construct and its place, never dropped.

use sqlparser::ast::{
    self, CastKind, DataType as SqlType, FunctionArg, FunctionArgExpr, FunctionArguments,
    ObjectNamePart, Spanned, UnaryOperator, Value,
};
use sqlparser::tokenizer::{Location, Token};

use super::interval::{interval_millis, unit_length};
use super::types::check_arity;
use super::{BinaryOp, CastType, Expr, ExprError, Function, Literal, regexp, temporal};
use crate::dialect::{self, SyntaxError};

/// Deeper trees are refused: evaluation recurses once per level, and a job's filter has no
/// business nesting hundreds of levels deep.
const MAX_DEPTH: usize = 200;

/// Parses a whole expression; trailing text is an error.
pub(super) fn parse(text: &str) -> Result<Expr, ExprError> {
    let mut parser = dialect::parser(text)?;
    let ast = parser
        .parse_expr()
        .map_err(|err| SyntaxError::from_parser(err, &parser.peek_token()))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(SyntaxError::unexpected(
            &next,
            "expected an operator or the end of the expression",
        )
        .into());
    }
    lower(&ast)
}

/// Lowers one sqlparser expression (from a job file or a SQL statement) to the IR.
pub(super) fn lower(ast: &ast::Expr) -> Result<Expr, ExprError> {
    lower_at(ast, 1)
}

/// Lowers `ast`, which sits `depth` levels down the tree (the root is level 1).
fn lower_at(ast: &ast::Expr, depth: usize) -> Result<Expr, ExprError> {
    if depth > MAX_DEPTH {
        return Err(SyntaxError::at(
            start(ast),
            ast.to_string(),
            format!("expression nested more than {MAX_DEPTH} levels deep"),
        )
        .into());
    }
    let child = |ast: &ast::Expr| lower_at(ast, depth + 1).map(Box::new);
    let expr = match ast {
        ast::Expr::Identifier(ident) => column(&[ident])?,
        ast::Expr::CompoundIdentifier(parts) => column(&parts.iter().collect::<Vec<_>>())?,
        ast::Expr::Value(value) => Expr::Literal(literal(&value.value, false, ast)?),
        ast::Expr::Nested(inner) => lower_at(inner, depth + 1)?,
        ast::Expr::UnaryOp { op, expr } => match (op, expr.as_ref()) {
            // A minus sign directly before a number is part of the literal, so that `-3` is
            // `Int(-3)` and the smallest `Int64` can be written at all.
            (UnaryOperator::Minus, ast::Expr::Value(value))
                if matches!(value.value, Value::Number(..)) =>
            {
                Expr::Literal(literal(&value.value, true, ast)?)
            }
            (UnaryOperator::Minus, operand) => Expr::Negate(child(operand)?),
            (UnaryOperator::Plus, operand) => lower_at(operand, depth + 1)?,
            (UnaryOperator::Not, operand) => Expr::Not(child(operand)?),
            _ => return Err(unsupported(ast, "this operator")),
        },
        ast::Expr::BinaryOp { left, op, right } => Expr::Binary {
            left: child(left)?,
            op: binary_op(op).ok_or_else(|| unsupported(ast, &format!("the operator `{op}`")))?,
            right: child(right)?,
        },
        ast::Expr::IsNull(expr) => Expr::IsNull {
            expr: child(expr)?,
            negated: false,
        },
        ast::Expr::IsNotNull(expr) => Expr::IsNull {
            expr: child(expr)?,
            negated: true,
        },
        ast::Expr::Cast {
            kind: CastKind::Cast | CastKind::TryCast | CastKind::SafeCast,
            expr,
            data_type,
            format: None,
        } => Expr::Cast {
            expr: child(expr)?,
            to: cast_type(data_type, ast)?,
        },
        ast::Expr::Function(function) => call(function, depth)?,
        ast::Expr::Interval(_) => Expr::Literal(Literal::Interval(
            interval_millis(ast).map_err(|message| syntax(ast, &ast.to_string(), &message))?,
        )),
        ast::Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut args = vec![lower_at(expr, depth + 1)?];
            for arg in [substring_from, substring_for].into_iter().flatten() {
                args.push(lower_at(arg, depth + 1)?);
            }
            check_arity(Function::Substr, args.len())?;
            Expr::Call {
                function: Function::Substr,
                args,
            }
        }
        ast::Expr::Trim {
            expr,
            trim_where: None,
            trim_what: None,
            trim_characters: None,
        } => Expr::Call {
            function: Function::Trim,
            args: vec![lower_at(expr, depth + 1)?],
        },
        ast::Expr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        }
        | ast::Expr::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => {
            let op = match ast {
                ast::Expr::ILike { .. } => BinaryOp::ILike,
                _ => BinaryOp::Like,
            };
            negate_if(
                *negated,
                Expr::binary(
                    lower_at(expr, depth + 1)?,
                    op,
                    lower_at(pattern, depth + 1)?,
                ),
            )
        }
        ast::Expr::Extract { field, expr, .. } => {
            let function = match field {
                ast::DateTimeField::Year | ast::DateTimeField::Years => Function::Year,
                ast::DateTimeField::Month | ast::DateTimeField::Months => Function::Month,
                ast::DateTimeField::Day | ast::DateTimeField::Days => Function::Day,
                ast::DateTimeField::Hour | ast::DateTimeField::Hours => Function::Hour,
                ast::DateTimeField::Minute | ast::DateTimeField::Minutes => Function::Minute,
                ast::DateTimeField::Second | ast::DateTimeField::Seconds => Function::Second,
                _ => return Err(unsupported(ast, &format!("EXTRACT of {field}"))),
            };
            Expr::Call {
                function,
                args: vec![lower_at(expr, depth + 1)?],
            }
        }
        ast::Expr::Floor {
            expr,
            field: ast::CeilFloorKind::DateTimeField(field),
        }
        | ast::Expr::Ceil {
            expr,
            field: ast::CeilFloorKind::DateTimeField(field),
        } => {
            let function = match ast {
                ast::Expr::Floor { .. } => Function::FloorTime,
                _ => Function::CeilTime,
            };
            let unit = unit_length(&field.to_string()).ok_or_else(|| {
                unsupported(
                    ast,
                    &format!("rounding to {field} (it has no fixed length)"),
                )
            })?;
            Expr::Call {
                function,
                args: vec![
                    lower_at(expr, depth + 1)?,
                    Expr::Literal(Literal::Interval(unit)),
                ],
            }
        }
        ast::Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let value = lower_at(expr, depth + 2)?;
            let at_least = Expr::binary(value.clone(), BinaryOp::GtEq, lower_at(low, depth + 2)?);
            let at_most = Expr::binary(value, BinaryOp::LtEq, lower_at(high, depth + 2)?);
            negate_if(*negated, Expr::binary(at_least, BinaryOp::And, at_most))
        }
        ast::Expr::In {
            expr,
            target: ast::InTarget::List(list),
            negated,
            global: false,
        } => {
            if list.is_empty() {
                return Err(unsupported(ast, "an empty IN list"));
            }
            Expr::InList {
                expr: child(expr)?,
                list: list
                    .iter()
                    .map(|item| lower_at(item, depth + 1))
                    .collect::<Result<_, _>>()?,
                negated: *negated,
            }
        }
        ast::Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let operand = operand
                .as_deref()
                .map(|o| lower_at(o, depth + 2))
                .transpose()?;
            let branches = conditions
                .iter()
                .map(|when| {
                    let condition = lower_at(&when.condition, depth + 2)?;
                    // `case x when a then ...` tests `x = a`.
                    let condition = match &operand {
                        Some(operand) => Expr::binary(operand.clone(), BinaryOp::Eq, condition),
                        None => condition,
                    };
                    Ok((condition, lower_at(&when.result, depth + 1)?))
                })
                .collect::<Result<Vec<_>, ExprError>>()?;
            Expr::Case {
                branches,
                otherwise: else_result.as_deref().map(child).transpose()?,
            }
        }
        _ => return Err(unsupported(ast, "this construct")),
    };
    Ok(expr)
}

/// `not expr` when `negated`.
fn negate_if(negated: bool, expr: Expr) -> Expr {
    if negated {
        Expr::Not(Box::new(expr))
    } else {
        expr
    }
}

/// A column named by one identifier, or by a dotted name (`payments.amount_cents`), which is
/// how a join names a column both of its streams have.
fn column(parts: &[&ast::Ident]) -> Result<Expr, ExprError> {
    if let Some(empty) = parts.iter().find(|ident| ident.value.is_empty()) {
        return Err(SyntaxError::at(
            empty.span.start,
            "\"\"",
            "a quoted column name cannot be empty",
        )
        .into());
    }
    let names: Vec<&str> = parts.iter().map(|ident| ident.value.as_str()).collect();
    Ok(Expr::Column(names.join(".")))
}

/// The constant `value`, negated when a minus sign stood before it.
fn literal(value: &Value, negative: bool, ast: &ast::Expr) -> Result<Literal, ExprError> {
    let literal = match value {
        Value::Null => Literal::Null,
        Value::Boolean(value) => Literal::Bool(*value),
        Value::SingleQuotedString(text) => Literal::Str(text.clone()),
        Value::Number(digits, _) => {
            let sign = if negative { "-" } else { "" };
            let text = format!("{sign}{digits}");
            if digits.contains(['.', 'e', 'E']) {
                match text.parse::<f64>() {
                    Ok(value) if value.is_finite() => Literal::Float(value),
                    _ => return Err(syntax(ast, digits, "float literal out of range")),
                }
            } else {
                text.parse()
                    .map(Literal::Int)
                    .map_err(|_| syntax(ast, digits, "integer literal out of the Int64 range"))?
            }
        }
        _ => return Err(unsupported(ast, "this kind of literal")),
    };
    Ok(literal)
}

fn binary_op(op: &ast::BinaryOperator) -> Option<BinaryOp> {
    use ast::BinaryOperator as Sql;
    let op = match op {
        Sql::Or => BinaryOp::Or,
        Sql::And => BinaryOp::And,
        Sql::Eq => BinaryOp::Eq,
        Sql::NotEq => BinaryOp::NotEq,
        Sql::Lt => BinaryOp::Lt,
        Sql::LtEq => BinaryOp::LtEq,
        Sql::Gt => BinaryOp::Gt,
        Sql::GtEq => BinaryOp::GtEq,
        Sql::Plus => BinaryOp::Plus,
        Sql::Minus => BinaryOp::Minus,
        Sql::Multiply => BinaryOp::Multiply,
        Sql::Divide => BinaryOp::Divide,
        Sql::Modulo => BinaryOp::Modulo,
        Sql::StringConcat => BinaryOp::Concat,
        _ => return None,
    };
    Some(op)
}

/// The IR's cast target for SQL type `data_type`; precision and length are ignored
/// (`TIMESTAMP(3)`, `VARCHAR(10)`).
fn cast_type(data_type: &SqlType, ast: &ast::Expr) -> Result<CastType, ExprError> {
    let to = match data_type {
        SqlType::TinyInt(_)
        | SqlType::SmallInt(_)
        | SqlType::Int(_)
        | SqlType::Integer(_)
        | SqlType::BigInt(_)
        | SqlType::Int64 => Some(CastType::Int),
        SqlType::Float(_)
        | SqlType::Real
        | SqlType::Double(_)
        | SqlType::DoublePrecision
        | SqlType::Float64 => Some(CastType::Float),
        SqlType::String(_)
        | SqlType::Varchar(_)
        | SqlType::Char(_)
        | SqlType::Character(_)
        | SqlType::CharVarying(_)
        | SqlType::Text => Some(CastType::String),
        SqlType::Bool | SqlType::Boolean => Some(CastType::Bool),
        SqlType::Timestamp(..) => Some(CastType::Timestamp),
        SqlType::Custom(name, _) => CastType::from_name(&name.to_string()),
        _ => None,
    };
    to.ok_or_else(|| {
        syntax(
            ast,
            &data_type.to_string().to_ascii_lowercase(),
            "expected a type: int, bigint, int64, double, float, float64, string, varchar, \
             utf8, bool, boolean or timestamp",
        )
    })
}

/// `name(args)`: a scalar function call with plain arguments.
fn call(function: &ast::Function, depth: usize) -> Result<Expr, ExprError> {
    let ident = match function.name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => ident,
        _ => return Err(unsupported_span(function, "a qualified function name")),
    };
    if ident.value.eq_ignore_ascii_case("timestampdiff") {
        return timestampdiff(function, depth);
    }
    let Some(known) = Function::from_name(&ident.value) else {
        return Err(ExprError::UnknownFunction {
            name: ident.value.clone(),
            line: ident.span.start.line.max(1) as usize,
            column: ident.span.start.column.max(1) as usize,
        });
    };
    if function.filter.is_some()
        || function.over.is_some()
        || function.null_treatment.is_some()
        || !function.within_group.is_empty()
        || !matches!(function.parameters, FunctionArguments::None)
    {
        return Err(unsupported_span(
            function,
            &format!("`{}` with FILTER, OVER or WITHIN GROUP", known.name()),
        ));
    }
    let list = match &function.args {
        FunctionArguments::List(list)
            if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
        {
            list.args.as_slice()
        }
        FunctionArguments::List(_) => {
            return Err(unsupported_span(
                function,
                "DISTINCT or clauses in a function call",
            ));
        }
        FunctionArguments::None | FunctionArguments::Subquery(_) => &[],
    };
    let args = list
        .iter()
        .map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => lower_at(arg, depth + 1),
            _ => Err(unsupported_span(function, "named or wildcard arguments")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_arity(known, args.len())?;
    check_constants(known, &args, list)?;
    Ok(Expr::Call {
        function: known,
        args,
    })
}

/// Checks the pattern arguments, which must be constants: a regular expression compiles, a
/// date pattern translates. Done here so that a bad pattern is reported at its place.
fn check_constants(
    function: Function,
    args: &[Expr],
    list: &[FunctionArg],
) -> Result<(), ExprError> {
    let check: fn(&str) -> Result<(), String> = match function {
        Function::Regexp | Function::RegexpExtract | Function::RegexpReplace => {
            |pattern| regexp::compile(pattern).map(drop)
        }
        Function::DateFormat | Function::ToTimestamp => {
            |pattern| temporal::strftime(pattern).map(drop)
        }
        _ => return Ok(()),
    };
    let (Some(pattern), Some(arg)) = (args.get(1), list.get(1)) else {
        return Ok(());
    };
    let result = match pattern {
        Expr::Literal(Literal::Str(pattern)) => check(pattern),
        Expr::Literal(Literal::Null) => Ok(()),
        _ => Err("the pattern must be a constant string".to_string()),
    };
    result.map_err(|message| {
        let place = start(arg);
        ExprError::BadArgument {
            function: function.name().to_string(),
            message,
            line: place.line.max(1) as usize,
            column: place.column.max(1) as usize,
        }
    })
}

/// `timestampdiff(UNIT, a, b)`: the unit is a keyword, which sqlparser reads as a column name.
fn timestampdiff(function: &ast::Function, depth: usize) -> Result<Expr, ExprError> {
    let args = match &function.args {
        FunctionArguments::List(list) if list.duplicate_treatment.is_none() => list.args.as_slice(),
        _ => &[],
    };
    let exprs: Vec<&ast::Expr> = args
        .iter()
        .filter_map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
            _ => None,
        })
        .collect();
    check_arity(Function::TimestampDiff, exprs.len())?;
    let unit = match exprs[0] {
        ast::Expr::Identifier(ident) => unit_length(&ident.value).ok_or_else(|| {
            unsupported(
                exprs[0],
                "timestampdiff's unit: use DAY, HOUR, MINUTE, SECOND or MILLISECOND; this unit",
            )
        })?,
        other => {
            return Err(unsupported(
                other,
                "timestampdiff's unit: use DAY, HOUR, MINUTE, SECOND or MILLISECOND; this unit",
            ));
        }
    };
    Ok(Expr::Call {
        function: Function::TimestampDiff,
        args: vec![
            Expr::Literal(Literal::Interval(unit)),
            lower_at(exprs[1], depth + 1)?,
            lower_at(exprs[2], depth + 1)?,
        ],
    })
}

fn start(ast: &impl Spanned) -> Location {
    ast.span().start
}

fn syntax(ast: &ast::Expr, found: &str, message: &str) -> ExprError {
    SyntaxError::at(start(ast), found, message).into()
}

fn unsupported(ast: &ast::Expr, what: &str) -> ExprError {
    unsupported_span(ast, what)
}

fn unsupported_span(node: &(impl Spanned + std::fmt::Display), what: &str) -> ExprError {
    let place = start(node);
    ExprError::Unsupported {
        construct: node.to_string(),
        what: what.to_string(),
        line: place.line.max(1) as usize,
        column: place.column.max(1) as usize,
    }
}

impl From<SyntaxError> for ExprError {
    fn from(err: SyntaxError) -> Self {
        ExprError::Parse {
            line: err.line as usize,
            column: err.column as usize,
            found: err.found,
            message: err.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str) -> Expr {
        Expr::column(name)
    }

    fn int(value: i64) -> Expr {
        Expr::Literal(Literal::Int(value))
    }

    /// The column, the text found there and the message of `text`'s syntax error.
    fn parse_error(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ExprError::Parse {
                column,
                found,
                message,
                ..
            }) => (column, found, message),
            other => panic!("expected a syntax error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn products_bind_tighter_than_sums() -> Result<(), ExprError> {
        let expected = Expr::binary(
            col("a"),
            BinaryOp::Plus,
            Expr::binary(col("b"), BinaryOp::Multiply, col("c")),
        );
        assert_eq!(parse("a + b * c")?, expected);
        let expected = Expr::binary(
            Expr::binary(col("a"), BinaryOp::Minus, col("b")),
            BinaryOp::Minus,
            col("c"),
        );
        assert_eq!(parse("a - b - c")?, expected, "left associative");
        let expected = Expr::binary(
            Expr::binary(col("a"), BinaryOp::Plus, col("b")),
            BinaryOp::Multiply,
            col("c"),
        );
        assert_eq!(parse("(a + b) * c")?, expected);
        let expected = Expr::binary(
            col("a"),
            BinaryOp::Plus,
            Expr::binary(col("b"), BinaryOp::Concat, col("c")),
        );
        assert_eq!(parse("a + b || c")?, expected, "`||` binds like `*`");
        Ok(())
    }

    #[test]
    fn not_binds_looser_than_comparison_and_tighter_than_and() -> Result<(), ExprError> {
        let eq = Expr::binary(col("a"), BinaryOp::Eq, int(1));
        let expected = Expr::binary(Expr::Not(Box::new(eq)), BinaryOp::And, col("b"));
        assert_eq!(parse("not a = 1 and b")?, expected);
        assert_eq!(
            parse("NOT a == 1 AND b")?,
            expected,
            "keywords ignore case, == is ="
        );
        Ok(())
    }

    #[test]
    fn is_not_null_binds_tighter_than_or_and_looser_than_comparison() -> Result<(), ExprError> {
        let test = Expr::IsNull {
            expr: Box::new(col("x")),
            negated: true,
        };
        assert_eq!(
            parse("x is not null or y")?,
            Expr::binary(test, BinaryOp::Or, col("y"))
        );
        let sum = Expr::binary(col("a"), BinaryOp::Plus, int(1));
        assert_eq!(
            parse("a + 1 IS NULL")?,
            Expr::IsNull {
                expr: Box::new(sum),
                negated: false
            }
        );
        let eq = Expr::binary(col("a"), BinaryOp::Eq, col("b"));
        assert_eq!(
            parse("a = b is null")?,
            Expr::IsNull {
                expr: Box::new(eq),
                negated: false
            }
        );
        Ok(())
    }

    #[test]
    fn and_binds_tighter_than_or() -> Result<(), ExprError> {
        let and = Expr::binary(col("b"), BinaryOp::And, col("c"));
        assert_eq!(
            parse("a or b and c")?,
            Expr::binary(col("a"), BinaryOp::Or, and)
        );
        Ok(())
    }

    #[test]
    fn literals() -> Result<(), ExprError> {
        assert_eq!(parse("42")?, int(42));
        assert_eq!(parse("-3")?, int(-3));
        assert_eq!(parse("-9223372036854775808")?, int(i64::MIN));
        assert_eq!(parse("1.5")?, Expr::Literal(Literal::Float(1.5)));
        assert_eq!(parse("2e3")?, Expr::Literal(Literal::Float(2000.0)));
        assert_eq!(parse(".5E-1")?, Expr::Literal(Literal::Float(0.05)));
        assert_eq!(
            parse("'it''s'")?,
            Expr::Literal(Literal::Str("it's".into()))
        );
        assert_eq!(parse("''")?, Expr::Literal(Literal::Str(String::new())));
        assert_eq!(parse("TRUE")?, Expr::Literal(Literal::Bool(true)));
        assert_eq!(parse("false")?, Expr::Literal(Literal::Bool(false)));
        assert_eq!(parse("Null")?, Expr::Literal(Literal::Null));
        let expected = Expr::binary(int(2), BinaryOp::Minus, int(-3));
        assert_eq!(parse("2 - -3")?, expected);
        assert_eq!(parse("2--3")?, int(2), "`--` starts a comment, as in SQL");
        assert_eq!(parse("-a")?, Expr::Negate(Box::new(col("a"))));
        assert_eq!(parse("- (3)")?, Expr::Negate(Box::new(int(3))));
        assert_eq!(parse("+a")?, col("a"));
        Ok(())
    }

    #[test]
    fn identifiers_and_calls() -> Result<(), ExprError> {
        assert_eq!(parse("\"order id\"")?, col("order id"));
        assert_eq!(parse("`order id`")?, col("order id"), "Flink's quotes");
        assert_eq!(parse("\"say \"\"hi\"\"\"")?, col("say \"hi\""));
        assert_eq!(parse("\"and\"")?, col("and"));
        assert_eq!(parse("_x1")?, col("_x1"));
        assert_eq!(parse("é")?, col("é"));
        assert_eq!(
            parse("payments.amount_cents")?,
            col("payments.amount_cents"),
            "a joined stream's column"
        );
        assert_eq!(
            parse("lower")?,
            col("lower"),
            "a function name alone is a column"
        );
        assert_eq!(
            parse("UPPER(s)")?,
            Expr::Call {
                function: Function::Upper,
                args: vec![col("s")]
            }
        );
        let expected = Expr::Call {
            function: Function::Substr,
            args: vec![col("s"), int(1), int(2)],
        };
        assert_eq!(parse("substr(s, 1, 2)")?, expected);
        assert_eq!(parse("SUBSTRING(s FROM 1 FOR 2)")?, expected);
        assert_eq!(
            parse("trim(s)")?,
            Expr::Call {
                function: Function::Trim,
                args: vec![col("s")]
            }
        );
        let expected = Expr::Cast {
            expr: Box::new(col("x")),
            to: CastType::Float,
        };
        assert_eq!(parse("CAST(x AS Float64)")?, expected);
        assert_eq!(parse("cast(x as DOUBLE)")?, expected);
        let expected = Expr::Cast {
            expr: Box::new(col("ts")),
            to: CastType::Timestamp,
        };
        assert_eq!(parse("CAST(ts AS TIMESTAMP(3))")?, expected);
        Ok(())
    }

    #[test]
    fn all_comparison_spellings() -> Result<(), ExprError> {
        for (text, op) in [
            ("=", BinaryOp::Eq),
            ("==", BinaryOp::Eq),
            ("!=", BinaryOp::NotEq),
            ("<>", BinaryOp::NotEq),
            ("<", BinaryOp::Lt),
            ("<=", BinaryOp::LtEq),
            (">", BinaryOp::Gt),
            (">=", BinaryOp::GtEq),
            ("||", BinaryOp::Concat),
            ("%", BinaryOp::Modulo),
        ] {
            assert_eq!(
                parse(&format!("a {text} b"))?,
                Expr::binary(col("a"), op, col("b")),
                "{text}"
            );
        }
        Ok(())
    }

    #[test]
    fn syntax_errors_point_at_the_offending_text() {
        assert_eq!(
            parse_error("a b"),
            (
                3,
                "b".into(),
                "expected an operator or the end of the expression".into()
            )
        );
        assert_eq!(
            parse_error("(a + 1"),
            (7, "end of input".into(), "expected )".into())
        );
        assert_eq!(
            parse_error("x = 'abc"),
            (5, "'abc".into(), "unterminated string literal".into())
        );
        assert_eq!(parse_error("12ab + 1").0, 3);
        assert_eq!(parse_error("x is 3").0, 6);
        assert_eq!(
            parse_error("9223372036854775808").2,
            "integer literal out of the Int64 range"
        );
        assert_eq!(parse_error("1e999").2, "float literal out of range");
        assert_eq!(parse_error("cast(x as date)").1, "date");
        // sqlparser reads a keyword where a name fits as the name: `or` is a column here.
        assert_eq!(
            parse_error("a and or b"),
            (
                10,
                "b".into(),
                "expected an operator or the end of the expression".into()
            )
        );
        assert_eq!(
            parse_error("\"\" > 1").2,
            "a quoted column name cannot be empty"
        );
        assert_eq!(parse_error("").1, "end of input");
        assert_eq!(parse_error("-- just a comment").1, "end of input");
        let text = format!("{}1{}", "(".repeat(300), ")".repeat(300));
        assert!(parse_error(&text).2.contains("nested"));
        let text = format!("1{}", " + 1".repeat(300));
        assert!(parse_error(&text).2.contains("nested"));
        let text = format!("{}1", "- ".repeat(100_000));
        assert!(parse_error(&text).2.contains("nested"));
    }

    #[test]
    fn errors_past_the_first_line_name_the_line() {
        let err = parse("a > 1\n  and b = ").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some("syntax error at line 2, column 11 near `end of input`: expected an expression")
        );
    }

    #[test]
    fn conditionals_lower_to_the_ir() -> Result<(), ExprError> {
        let between = Expr::binary(
            Expr::binary(col("x"), BinaryOp::GtEq, int(1)),
            BinaryOp::And,
            Expr::binary(col("x"), BinaryOp::LtEq, int(2)),
        );
        assert_eq!(parse("x BETWEEN 1 AND 2")?, between);
        assert_eq!(
            parse("x not between 1 and 2")?,
            Expr::Not(Box::new(between))
        );
        let expected = Expr::InList {
            expr: Box::new(col("x")),
            list: vec![int(1), int(2), int(3)],
            negated: false,
        };
        assert_eq!(parse("x IN (1, 2, 3)")?, expected);
        let long = format!(
            "x in ({})",
            (0..1000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(
            parse(&long).is_ok(),
            "a long IN list stays within the depth bound"
        );
        assert_eq!(
            parse("s NOT LIKE 'a%'")?,
            Expr::Not(Box::new(Expr::binary(
                col("s"),
                BinaryOp::Like,
                Expr::Literal(Literal::Str("a%".into()))
            )))
        );
        let case = Expr::Case {
            branches: vec![(Expr::binary(col("x"), BinaryOp::Eq, int(1)), int(10))],
            otherwise: Some(Box::new(int(0))),
        };
        assert_eq!(parse("CASE x WHEN 1 THEN 10 ELSE 0 END")?, case);
        assert_eq!(parse("case when x = 1 then 10 else 0 end")?, case);
        Ok(())
    }

    #[test]
    fn valid_sql_the_ir_lacks_is_named_not_dropped() {
        for (text, what) in [
            ("x similar to 'a'", "this construct"),
            ("s like 'a!%' escape '!'", "this construct"),
            ("a & b", "the operator `&`"),
            ("lower(x) filter (where x > 0)", "FILTER"),
        ] {
            match parse(text) {
                Err(ExprError::Unsupported { what: found, .. }) => {
                    assert!(found.contains(what), "{text}: {found}")
                }
                other => panic!("{text}: expected an unsupported error, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_functions_and_wrong_arity_are_named() {
        let err = parse("a + frobnicate(x)").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "unknown function `frobnicate` at column 5; known functions: lower, upper, length, \
                 trim, concat, substr, abs, coalesce, year, month, day, hour, minute, second, regexp, regexp_extract, regexp_replace, date_format, to_timestamp, cast"
            )
        );
        assert!(matches!(
            parse("lower(a, b)"),
            Err(ExprError::ArgumentCount { found: 2, .. })
        ));
        assert!(matches!(
            parse("coalesce()"),
            Err(ExprError::ArgumentCount { found: 0, .. })
        ));
    }
}
