//! Prints an [`Expr`] as text that parses back to the same tree, with only the needed parentheses.

use std::fmt::{self, Display, Formatter};

use sqlparser::keywords::ALL_KEYWORDS;

use super::{BinaryOp, Expr, Function, Literal};

// Binding powers as sqlparser's Flink dialect parses them (a higher number binds tighter):
// `or`; `and`; prefix `not`; `is [not] null`; `like`; comparisons; `+ -`; `* / % ||`;
// prefix `-`.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const IS: u8 = 4;
const LIKE: u8 = 5;
const COMPARE: u8 = 6;
const SUM: u8 = 7;
const PRODUCT: u8 = 8;
const PREFIX_MINUS: u8 = 9;
/// Literals, columns, calls, `case` and parenthesised expressions.
const ATOM: u8 = 10;

/// The binding power of `op`.
fn binding_power(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => OR,
        BinaryOp::And => AND,
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => COMPARE,
        BinaryOp::Like | BinaryOp::ILike => LIKE,
        BinaryOp::Plus | BinaryOp::Minus => SUM,
        BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Modulo | BinaryOp::Concat => PRODUCT,
    }
}

/// How tightly `expr`'s outermost operator binds.
fn power(expr: &Expr) -> u8 {
    match expr {
        Expr::Binary { op, .. } => binding_power(*op),
        Expr::Not(_) => NOT,
        Expr::IsNull { .. } => IS,
        Expr::InList { .. } => COMPARE,
        Expr::Negate(_) => PREFIX_MINUS,
        _ => ATOM,
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(name) => write_column(f, name),
            Expr::Literal(value) => write!(f, "{value}"),
            Expr::Binary { left, op, right } => {
                // Left associative: a left operand of equal power needs no parentheses, a right one does.
                let power = binding_power(*op);
                write_operand(f, left, power)?;
                write!(f, " {} ", op.symbol())?;
                write_operand(f, right, power + 1)
            }
            Expr::Not(expr) => {
                f.write_str("not ")?;
                match expr.as_ref() {
                    Expr::Not(_) => write!(f, "{expr}"),
                    _ => write_operand(f, expr, IS),
                }
            }
            Expr::Negate(expr) => {
                f.write_str("-")?;
                match expr.as_ref() {
                    // `-3` would parse back as the literal `Int(-3)`, not as a negation, and
                    // `--a` as a comment.
                    Expr::Literal(Literal::Int(_) | Literal::Float(_)) | Expr::Negate(_) => {
                        write!(f, "({expr})")
                    }
                    _ => write_operand(f, expr, power(self)),
                }
            }
            Expr::IsNull { expr, negated } => {
                write_operand(f, expr, power(self))?;
                f.write_str(if *negated { " is not null" } else { " is null" })
            }
            // Their units are keywords, written from the interval the parser made of them.
            Expr::Call {
                function: function @ (Function::FloorTime | Function::CeilTime),
                args,
            } if matches!(args.as_slice(), [_, Expr::Literal(Literal::Interval(_))]) => {
                let unit = unit_name(&args[1]);
                write!(f, "{}({} to {unit})", function.name(), args[0])
            }
            Expr::Call {
                function: Function::TimestampDiff,
                args,
            } if matches!(args.as_slice(), [Expr::Literal(Literal::Interval(_)), _, _]) => {
                let unit = unit_name(&args[0]);
                write!(f, "timestampdiff({unit}, {}, {})", args[1], args[2])
            }
            Expr::Call { function, args } => {
                write!(f, "{}(", function.name())?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Expr::Cast { expr, to } => write!(f, "cast({expr} as {})", to.name()),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                write_operand(f, expr, COMPARE + 1)?;
                f.write_str(if *negated { " not in (" } else { " in (" })?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            Expr::Case {
                branches,
                otherwise,
            } => {
                f.write_str("case")?;
                for (condition, value) in branches {
                    write!(f, " when {condition} then {value}")?;
                }
                if let Some(otherwise) = otherwise {
                    write!(f, " else {otherwise}")?;
                }
                f.write_str(" end")
            }
        }
    }
}

/// The unit keyword of a one-unit interval literal (`HOUR` for an hour).
fn unit_name(unit: &Expr) -> &'static str {
    let Expr::Literal(Literal::Interval(millis)) = unit else {
        return "MILLISECOND";
    };
    super::interval::UNITS
        .iter()
        .find(|(_, length)| length == millis)
        .map_or("MILLISECOND", |(name, _)| name)
}

/// Writes `expr`, in parentheses when it binds more loosely than `min_power`.
fn write_operand(f: &mut Formatter<'_>, expr: &Expr, min_power: u8) -> fmt::Result {
    if power(expr) < min_power {
        write!(f, "({expr})")
    } else {
        write!(f, "{expr}")
    }
}

fn write_column(f: &mut Formatter<'_>, name: &str) -> fmt::Result {
    let mut chars = name.chars();
    let plain = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && ALL_KEYWORDS
            .binary_search(&name.to_ascii_uppercase().as_str())
            .is_err();
    if plain {
        f.write_str(name)
    } else {
        write!(f, "\"{}\"", name.replace('"', "\"\""))
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::Bool(value) => write!(f, "{value}"),
            Literal::Int(value) => write!(f, "{value}"),
            // `Debug` always writes a `.` or an exponent, so `2000.0` stays a float.
            Literal::Float(value) if value.is_finite() => write!(f, "{value:?}"),
            // The grammar has no NaN or infinity literals; a cast from text produces them.
            Literal::Float(value) => write!(f, "cast('{value}' as double)"),
            Literal::Str(value) => write!(f, "'{}'", value.replace('\'', "''")),
            Literal::Interval(millis) => super::interval::write(f, *millis),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BinaryOp, CastType, ExprError, Function};
    use super::*;

    /// Parses `text`, checks that it prints as `printed`, and that the print parses back to the same tree.
    fn round_trip(text: &str, printed: &str) -> Result<(), ExprError> {
        let expr = Expr::parse(text)?;
        assert_eq!(expr.to_string(), printed, "printing {text:?}");
        assert_eq!(Expr::parse(printed)?, expr, "re-parsing {printed:?}");
        Ok(())
    }

    #[test]
    fn prints_only_the_needed_parentheses() -> Result<(), ExprError> {
        round_trip("a + b * c", "a + b * c")?;
        round_trip("(a + b) * c", "(a + b) * c")?;
        round_trip("a - (b - c)", "a - (b - c)")?;
        round_trip("(a - b) - c", "a - b - c")?;
        round_trip("not a = 1 and b", "not a = 1 and b")?;
        round_trip("not (a and b)", "not (a and b)")?;
        round_trip("(not a) = b", "(not a) = b")?;
        round_trip("NOT NOT a", "not not a")?;
        round_trip("x is not null or y", "x is not null or y")?;
        round_trip("a = (b is null)", "a = (b is null)")?;
        round_trip("a = b is null", "a = b is null")?;
        round_trip("(a or b) and c", "(a or b) and c")?;
        round_trip("-(a + 1) * -b", "-(a + 1) * -b")?;
        round_trip("- - a", "-(-a)")?;
        round_trip("not a is null", "not a is null")?;
        round_trip("(not a) is null", "(not a) is null")?;
        round_trip("a + b || c", "a + b || c")?;
        round_trip("(a + b) || c", "(a + b) || c")?;
        round_trip("a <> b", "a != b")?;
        round_trip("a == b", "a = b")?;
        round_trip("s || 'x' || t", "s || 'x' || t")?;
        round_trip(
            "s NOT LIKE 'a%' or s ilike t",
            "not s like 'a%' or s ilike t",
        )?;
        round_trip(
            "CASE WHEN a > 1 THEN 'big' WHEN a IS NULL THEN NULL ELSE lower(s) END || 'x'",
            "case when a > 1 then 'big' when a is null then null else lower(s) end || 'x'",
        )?;
        round_trip("x between 1 and 2", "x >= 1 and x <= 2")?;
        round_trip(
            "x IN (1, 2) AND NOT y NOT IN ('a')",
            "x in (1, 2) and not y not in ('a')",
        )?;
        round_trip("(a + 1) in (b) = true", "a + 1 in (b) = true")?;
        Ok(())
    }

    #[test]
    fn prints_literals_and_names_so_they_parse_back() -> Result<(), ExprError> {
        round_trip("2e3 + -1.5", "2000.0 + -1.5")?;
        round_trip("2 - -3", "2 - -3")?;
        round_trip("-9223372036854775808", "-9223372036854775808")?;
        round_trip("'it''s'", "'it''s'")?;
        round_trip("\"order id\" > \"and\"", "\"order id\" > \"and\"")?;
        round_trip("\"say \"\"hi\"\"\" = NULL", "\"say \"\"hi\"\"\" = null")?;
        round_trip("TRUE or False", "true or false")?;
        round_trip("1e-7 * 3", "1e-7 * 3")?;
        round_trip("ts + interval '90' seconds", "ts + INTERVAL '90' SECOND")?;
        round_trip("INTERVAL '3600' SECOND", "INTERVAL '1' HOUR")?;
        round_trip("INTERVAL '1500' MILLISECOND", "INTERVAL '1500' MILLISECOND")?;
        round_trip("INTERVAL '-2' DAY * 3", "INTERVAL '-2' DAY * 3")?;
        round_trip("ts - -INTERVAL '1' MINUTE", "ts - -INTERVAL '1' MINUTE")?;
        Ok(())
    }

    #[test]
    fn prints_calls_and_casts() -> Result<(), ExprError> {
        round_trip("LOWER(s)", "lower(s)")?;
        round_trip(
            "FLOOR(ts TO hour) + INTERVAL '1' DAY",
            "floor(ts to HOUR) + INTERVAL '1' DAY",
        )?;
        round_trip("Ceil(a TO SECOND)", "ceil(a to SECOND)")?;
        round_trip(
            "TIMESTAMPDIFF(minute, a, b) > 5",
            "timestampdiff(MINUTE, a, b) > 5",
        )?;
        round_trip(
            "REGEXP_EXTRACT(s, '(a)''b', 1) || Date_Format(ts, 'yyyy')",
            "regexp_extract(s, '(a)''b', 1) || date_format(ts, 'yyyy')",
        )?;
        round_trip("substr(s, 1 + 1, 2)", "substr(s, 1 + 1, 2)")?;
        round_trip("coalesce(a, b, 0) + abs(-x)", "coalesce(a, b, 0) + abs(-x)")?;
        round_trip(
            "concat(trim(a), upper(b), length(c))",
            "concat(trim(a), upper(b), length(c))",
        )?;
        round_trip(
            "cast(x as INT) = cast(y as utf8)",
            "cast(x as bigint) = cast(y as varchar)",
        )?;
        round_trip("cast(ts as timestamp)", "cast(ts as timestamp)")?;
        round_trip(
            "cast(f as float) > cast(b as bool)",
            "cast(f as double) > cast(b as boolean)",
        )?;
        Ok(())
    }

    #[test]
    fn trees_built_in_code_print_unambiguously() -> Result<(), ExprError> {
        let trees = [
            Expr::Negate(Box::new(Expr::Literal(Literal::Int(3)))),
            Expr::Negate(Box::new(Expr::Literal(Literal::Int(-3)))),
            Expr::binary(
                Expr::column("a"),
                BinaryOp::Minus,
                Expr::Literal(Literal::Float(-0.5)),
            ),
            Expr::Not(Box::new(Expr::IsNull {
                expr: Box::new(Expr::column("a")),
                negated: false,
            })),
            Expr::Call {
                function: Function::Concat,
                args: vec![Expr::column("NULL"), Expr::column("1x")],
            },
            Expr::Cast {
                expr: Box::new(Expr::Literal(Literal::Null)),
                to: CastType::Timestamp,
            },
        ];
        for tree in trees {
            assert_eq!(Expr::parse(&tree.to_string())?, tree, "{tree}");
        }
        assert_eq!(
            Expr::Negate(Box::new(Expr::Literal(Literal::Int(3)))).to_string(),
            "-(3)"
        );
        assert_eq!(
            Expr::Literal(Literal::Float(f64::INFINITY)).to_string(),
            "cast('inf' as double)"
        );
        Ok(())
    }
}
