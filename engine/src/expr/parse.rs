//! Turns tokens into an [`Expr`] by precedence climbing (a Pratt parser).
//!
//! Binding power, loosest first: `or`; `and`; prefix `not`; comparisons and `is [not] null`;
//! `+ - ||`; `* / %`; prefix `-`. Binary operators associate to the left.

use super::lex::{Spanned, Token, column, syntax_error, tokenize};
use super::types::check_arity;
use super::{BinaryOp, CastType, Expr, ExprError, Function, Literal};

/// Deeper trees are refused: evaluation recurses once per level, and a job's filter has no
/// business nesting hundreds of levels deep.
const MAX_DEPTH: usize = 200;

/// Binding powers; a higher number binds tighter.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
pub(super) const COMPARE: u8 = 4;
const SUM: u8 = 5;
const PRODUCT: u8 = 6;
const PREFIX_MINUS: u8 = 7;
/// Literals, columns, calls and parenthesised expressions.
const ATOM: u8 = 8;

/// The binding power of `op`.
pub(super) fn binding_power(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => OR,
        BinaryOp::And => AND,
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => COMPARE,
        BinaryOp::Plus | BinaryOp::Minus | BinaryOp::Concat => SUM,
        BinaryOp::Multiply | BinaryOp::Divide | BinaryOp::Modulo => PRODUCT,
    }
}

/// How tightly `expr`'s outermost operator binds, as the printer needs it.
pub(super) fn power(expr: &Expr) -> u8 {
    match expr {
        Expr::Binary { op, .. } => binding_power(*op),
        Expr::Not(_) => NOT,
        Expr::IsNull { .. } => COMPARE,
        Expr::Negate(_) => PREFIX_MINUS,
        _ => ATOM,
    }
}

/// Words with a meaning of their own; a column with such a name must be double-quoted.
pub(super) const KEYWORDS: [&str; 7] = ["and", "or", "not", "is", "null", "true", "false"];

/// Parses a whole expression; trailing text is an error.
pub(super) fn parse(text: &str) -> Result<Expr, ExprError> {
    let mut parser = Parser {
        text,
        tokens: tokenize(text)?,
        next: 0,
        nesting: 0,
    };
    let (expr, _) = parser.expr(0)?;
    match parser.peek() {
        Token::End => Ok(expr),
        _ => Err(parser.error_here("expected an operator or the end of the expression")),
    }
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Spanned>,
    next: usize,
    /// How many `expr` calls are active, bounded so that `((((...` cannot overflow the stack.
    nesting: usize,
}

/// A parsed sub-expression and the depth of its tree.
type Parsed = (Expr, usize);

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens
            .get(self.next)
            .map_or(&Token::End, |spanned| &spanned.token)
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        self.next = (self.next + 1).min(self.tokens.len().saturating_sub(1));
        token
    }

    fn error_here(&self, message: impl Into<String>) -> ExprError {
        let (start, end) = self
            .tokens
            .get(self.next)
            .map_or((0, 0), |spanned| (spanned.start, spanned.end));
        syntax_error(self.text, start, end, message)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Token::Ident(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn expect(&mut self, wanted: &Token, message: &str) -> Result<(), ExprError> {
        if self.peek() == wanted {
            self.advance();
            Ok(())
        } else {
            Err(self.error_here(message))
        }
    }

    fn node(&self, expr: Expr, depth: usize) -> Result<Parsed, ExprError> {
        if depth > MAX_DEPTH {
            Err(self.too_deep())
        } else {
            Ok((expr, depth))
        }
    }

    fn too_deep(&self) -> ExprError {
        self.error_here(format!(
            "expression nested more than {MAX_DEPTH} levels deep"
        ))
    }

    /// Parses operators binding at least as tightly as `min_power`.
    fn expr(&mut self, min_power: u8) -> Result<Parsed, ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(self.too_deep());
        }
        let parsed = self.operators(min_power);
        self.nesting -= 1;
        parsed
    }

    fn operators(&mut self, min_power: u8) -> Result<Parsed, ExprError> {
        let (mut left, mut depth) = self.prefix()?;
        loop {
            if self.peek_keyword("is") {
                if COMPARE < min_power {
                    break;
                }
                self.advance();
                let negated = self.peek_keyword("not");
                if negated {
                    self.advance();
                }
                if !self.peek_keyword("null") {
                    return Err(self.error_here("expected `null` or `not null` after `is`"));
                }
                self.advance();
                (left, depth) = self.node(
                    Expr::IsNull {
                        expr: Box::new(left),
                        negated,
                    },
                    depth + 1,
                )?;
                continue;
            }
            let Some(op) = self.infix() else { break };
            let power = binding_power(op);
            if power < min_power {
                break;
            }
            self.advance();
            let (right, right_depth) = self.expr(power + 1)?;
            (left, depth) = self.node(Expr::binary(left, op, right), depth.max(right_depth) + 1)?;
        }
        Ok((left, depth))
    }

    fn infix(&self) -> Option<BinaryOp> {
        let op = match self.peek() {
            Token::Symbol(symbol) => match *symbol {
                "=" | "==" => BinaryOp::Eq,
                "!=" | "<>" => BinaryOp::NotEq,
                "<" => BinaryOp::Lt,
                "<=" => BinaryOp::LtEq,
                ">" => BinaryOp::Gt,
                ">=" => BinaryOp::GtEq,
                "+" => BinaryOp::Plus,
                "-" => BinaryOp::Minus,
                "||" => BinaryOp::Concat,
                "*" => BinaryOp::Multiply,
                "/" => BinaryOp::Divide,
                "%" => BinaryOp::Modulo,
                _ => return None,
            },
            Token::Ident(word) if word.eq_ignore_ascii_case("and") => BinaryOp::And,
            Token::Ident(word) if word.eq_ignore_ascii_case("or") => BinaryOp::Or,
            _ => return None,
        };
        Some(op)
    }

    /// Parses what may start an expression: a literal, a column, a call, `(`, `not` or `-`.
    fn prefix(&mut self) -> Result<Parsed, ExprError> {
        let start = self.next;
        match self.advance() {
            Token::Int(digits) => Ok((Expr::Literal(self.int(&digits, false)?), 1)),
            Token::Float(value) => Ok((Expr::Literal(Literal::Float(value)), 1)),
            Token::Str(value) => Ok((Expr::Literal(Literal::Str(value)), 1)),
            Token::QuotedIdent(name) => Ok((Expr::Column(name), 1)),
            Token::Symbol("(") => {
                let (inner, depth) = self.expr(0)?;
                self.expect(&Token::Symbol(")"), "expected `)`")?;
                self.node(inner, depth + 1)
            }
            // A minus sign directly before a number is part of the literal, so that `-3` is
            // `Int(-3)` and the smallest `Int64` can be written at all.
            Token::Symbol("-") => match self.peek().clone() {
                Token::Int(digits) => {
                    self.advance();
                    Ok((Expr::Literal(self.int(&digits, true)?), 1))
                }
                Token::Float(value) => {
                    self.advance();
                    Ok((Expr::Literal(Literal::Float(-value)), 1))
                }
                _ => {
                    let (operand, depth) = self.expr(PREFIX_MINUS)?;
                    self.node(Expr::Negate(Box::new(operand)), depth + 1)
                }
            },
            Token::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "null" => Ok((Expr::Literal(Literal::Null), 1)),
                    "true" => Ok((Expr::Literal(Literal::Bool(true)), 1)),
                    "false" => Ok((Expr::Literal(Literal::Bool(false)), 1)),
                    "not" => {
                        let (operand, depth) = self.expr(COMPARE)?;
                        self.node(Expr::Not(Box::new(operand)), depth + 1)
                    }
                    "and" | "or" | "is" => {
                        self.next = start;
                        Err(self.error_here("expected an expression"))
                    }
                    _ if self.peek() == &Token::Symbol("(") => self.call(start, &word),
                    _ => Ok((Expr::Column(word), 1)),
                }
            }
            Token::Symbol(_) | Token::End => {
                self.next = start;
                Err(self.error_here("expected an expression"))
            }
        }
    }

    fn int(&self, digits: &str, negative: bool) -> Result<Literal, ExprError> {
        let text = if negative {
            format!("-{digits}")
        } else {
            digits.to_string()
        };
        text.parse().map(Literal::Int).map_err(|_| {
            let spanned = &self.tokens[self.next.saturating_sub(1)];
            syntax_error(
                self.text,
                spanned.start,
                spanned.end,
                "integer literal out of the Int64 range",
            )
        })
    }

    /// Parses `name(args)` or `cast(expr as type)`; the name is token `start`, `(` is next.
    fn call(&mut self, start: usize, name: &str) -> Result<Parsed, ExprError> {
        self.advance();
        if name.eq_ignore_ascii_case("cast") {
            let (expr, depth) = self.expr(0)?;
            if !self.peek_keyword("as") {
                return Err(self.error_here("expected `as` and a type in `cast(x as TYPE)`"));
            }
            self.advance();
            let to = match self.peek() {
                Token::Ident(word) => CastType::from_name(word),
                _ => None,
            };
            let Some(to) = to else {
                return Err(self.error_here(
                    "expected a type: int, bigint, int64, double, float, float64, string, varchar, \
                     utf8, bool, boolean or timestamp",
                ));
            };
            self.advance();
            self.expect(&Token::Symbol(")"), "expected `)` after the cast type")?;
            return self.node(
                Expr::Cast {
                    expr: Box::new(expr),
                    to,
                },
                depth + 1,
            );
        }
        let column_of_name = column(self.text, self.tokens[start].start);
        let function = Function::from_name(name).ok_or_else(|| ExprError::UnknownFunction {
            name: name.to_string(),
            column: column_of_name,
        })?;
        let mut args = Vec::new();
        let mut depth = 0;
        if self.peek() != &Token::Symbol(")") {
            loop {
                let (arg, arg_depth) = self.expr(0)?;
                args.push(arg);
                depth = depth.max(arg_depth);
                if self.peek() != &Token::Symbol(",") {
                    break;
                }
                self.advance();
            }
        }
        self.expect(
            &Token::Symbol(")"),
            "expected `,` or `)` in the argument list",
        )?;
        check_arity(function, args.len())?;
        self.node(Expr::Call { function, args }, depth + 1)
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

    fn parse_error(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ExprError::Parse {
                column,
                found,
                message,
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
    fn is_not_null_binds_tighter_than_or() -> Result<(), ExprError> {
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
        assert_eq!(parse("2--3")?, expected);
        assert_eq!(parse("-a")?, Expr::Negate(Box::new(col("a"))));
        assert_eq!(parse("- (3)")?, Expr::Negate(Box::new(int(3))));
        Ok(())
    }

    #[test]
    fn identifiers_and_calls() -> Result<(), ExprError> {
        assert_eq!(parse("\"order id\"")?, col("order id"));
        assert_eq!(parse("\"say \"\"hi\"\"\"")?, col("say \"hi\""));
        assert_eq!(parse("\"and\"")?, col("and"));
        assert_eq!(parse("_x1")?, col("_x1"));
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
        let expected = Expr::Cast {
            expr: Box::new(col("x")),
            to: CastType::Float,
        };
        assert_eq!(parse("CAST(x AS Float64)")?, expected);
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
            parse_error("a + * b"),
            (5, "*".into(), "expected an expression".into())
        );
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
            (7, "end of input".into(), "expected `)`".into())
        );
        assert_eq!(
            parse_error("x = 'abc"),
            (5, "'abc".into(), "unterminated string".into())
        );
        assert_eq!(
            parse_error("a = 'é' ! b"),
            (9, "!".into(), "unexpected character".into())
        );
        assert_eq!(
            parse_error("é"),
            (1, "é".into(), "unexpected character".into())
        );
        assert_eq!(
            parse_error("12ab + 1"),
            (1, "12ab".into(), "malformed number".into())
        );
        assert_eq!(parse_error("x is 3").0, 6);
        assert_eq!(
            parse_error("9223372036854775808").2,
            "integer literal out of the Int64 range"
        );
        assert_eq!(parse_error("1e999").2, "float literal out of range");
        assert_eq!(parse_error("cast(x as date)").1, "date");
        assert_eq!(parse_error("a and or b").0, 7);
        assert_eq!(
            parse_error("\"\" > 1").2,
            "a quoted column name cannot be empty"
        );
        assert_eq!(parse_error("").1, "end of input");
        let text = format!("{}1{}", "(".repeat(300), ")".repeat(300));
        assert!(parse_error(&text).2.contains("nested"));
        let text = format!("1{}", " + 1".repeat(300));
        assert!(parse_error(&text).2.contains("nested"));
        let text = "-".repeat(100_000);
        assert!(parse_error(&text).2.contains("nested"));
    }

    #[test]
    fn unknown_functions_and_wrong_arity_are_named() {
        let err = parse("a + frobnicate(x)").err().map(|err| err.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "unknown function `frobnicate` at column 5; known functions: lower, upper, length, \
                 trim, concat, substr, abs, coalesce, cast"
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
