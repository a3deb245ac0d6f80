//! The SQL dialect both front ends parse with (`sqlparser` and Flink's rules), and where its errors point.
//!
//! Job files' `filter` and `project` expressions and SQL scripts go through the same
//! [`FlinkDialect`], so an expression means the same in both. Flink quotes identifiers with
//! backticks; job files have always used double quotes, so both are accepted. Strings are
//! single-quoted, `--` starts a comment, and keywords are case-insensitive.
//!
//! sqlparser reports a place only inside its message text (`... at Line: 1, Column: 5`);
//! [`SyntaxError`] takes it apart so that callers can point at the line and column.

use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident,
    ObjectName, ObjectNamePart,
};
use sqlparser::dialect::Dialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// How deep sqlparser may recurse; expressions are further bounded by the expression module.
///
/// sqlparser grows its stack on demand (its `recursive-protection` feature), so the bound is
/// about refusing absurd input, not about the stack.
const RECURSION_LIMIT: usize = 256;

/// Flink SQL as sluice reads it.
#[derive(Debug, Default, Clone, Copy)]
pub struct FlinkDialect;

impl Dialect for FlinkDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn identifier_quote_style(&self, _identifier: &str) -> Option<char> {
        Some('`')
    }

    /// `COUNT(*) FILTER (WHERE ...)`, as in Flink.
    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }

    /// `JOIN dim FOR SYSTEM_TIME AS OF s.proc_time`: Flink's lookup join.
    fn supports_table_versioning(&self) -> bool {
        true
    }

    /// `TABLE name [PARTITION BY key | PARTITION BY (keys)]` as an argument of a window function
    /// (`TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '1' MINUTE)`), which stock sqlparser
    /// does not parse; read it back with [`TableArgument::of`].
    fn parse_prefix(&self, parser: &mut Parser) -> Option<Result<Expr, ParserError>> {
        let is_table_argument = parser.peek_keyword(Keyword::TABLE)
            && matches!(parser.peek_nth_token_ref(1).token, Token::Word(_));
        is_table_argument.then(|| parse_table_argument(parser))
    }
}

/// The name a [`TableArgument`] is carried under in sqlparser's tree: a call of a function
/// whose name no SQL text can produce (`TABLE` is reserved there).
const TABLE_ARGUMENT: &str = "TABLE";

/// Parses `TABLE name [PARTITION BY a | PARTITION BY (a, b)]`, `TABLE` being next.
fn parse_table_argument(parser: &mut Parser) -> Result<Expr, ParserError> {
    parser.expect_keyword_is(Keyword::TABLE)?;
    let name = parser.parse_object_name(false)?;
    let mut args = vec![Expr::CompoundIdentifier(
        name.0
            .iter()
            .filter_map(ObjectNamePart::as_ident)
            .cloned()
            .collect(),
    )];
    // One key, or several in parentheses: a bare comma ends the argument, as in Calcite.
    if parser.parse_keywords(&[Keyword::PARTITION, Keyword::BY]) {
        if parser.consume_token(&Token::LParen) {
            args.extend(parser.parse_comma_separated(Parser::parse_expr)?);
            parser.expect_token(&Token::RParen)?;
        } else {
            args.push(parser.parse_expr()?);
        }
    }
    Ok(Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(TABLE_ARGUMENT)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|arg| FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    }))
}

/// A window function's `TABLE name [PARTITION BY keys]` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct TableArgument {
    /// The table or view, as written (`bids`, `db.bids`).
    pub name: Vec<Ident>,
    /// The `PARTITION BY` keys (`SESSION` windows), empty when absent.
    pub partition_by: Vec<Expr>,
}

impl TableArgument {
    /// The table argument `expr` carries, if it is one.
    pub fn of(expr: &Expr) -> Option<TableArgument> {
        let Expr::Function(function) = expr else {
            return None;
        };
        let [ObjectNamePart::Identifier(ident)] = function.name.0.as_slice() else {
            return None;
        };
        // sqlparser keeps a quoted name's quotes: a user's `"TABLE"(x)` is not one of ours.
        if ident.value != TABLE_ARGUMENT || ident.quote_style.is_some() {
            return None;
        }
        let FunctionArguments::List(list) = &function.args else {
            return None;
        };
        let mut args = list.args.iter().map(|arg| match arg {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr.clone()),
            _ => None,
        });
        let Some(Some(Expr::CompoundIdentifier(name))) = args.next() else {
            return None;
        };
        let partition_by = args.collect::<Option<Vec<_>>>()?;
        Some(TableArgument { name, partition_by })
    }
}

/// The dialect value parsers borrow.
pub static FLINK: FlinkDialect = FlinkDialect;

/// A parser over `text`, tokenized with places kept for error messages.
pub fn parser(text: &str) -> Result<Parser<'static>, SyntaxError> {
    let mut tokens = Tokenizer::new(&FLINK, text)
        .tokenize_with_location()
        .map_err(|err| SyntaxError::at(err.location, found_at(text, err.location), err.message))?;
    // sqlparser's own end token has no place; one just past the text lets an error about a
    // missing `)` point at the end rather than at line 1, column 1.
    let end = end_of(text);
    tokens.push(TokenWithSpan::new(Token::EOF, end.span_to(end)));
    Ok(Parser::new(&FLINK)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(tokens))
}

/// What is wrong and where, with positions counted from 1 in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line.
    pub line: u64,
    /// The 1-based column, in characters.
    pub column: u64,
    /// The text found there, or `end of input`.
    pub found: String,
    /// What was expected, starting in lower case.
    pub message: String,
}

impl SyntaxError {
    /// An error at `location` about `found`.
    pub fn at(location: Location, found: impl Into<String>, message: impl Into<String>) -> Self {
        SyntaxError {
            line: location.line.max(1),
            column: location.column.max(1),
            found: found.into(),
            message: lower_first(message.into()),
        }
    }

    /// An error about `token`, as found where something else was expected.
    pub fn unexpected(token: &TokenWithSpan, message: impl Into<String>) -> Self {
        SyntaxError::at(token.span.start, token_text(&token.token), message)
    }

    /// Takes sqlparser's error apart; `next` is the token the parser stopped at, which is what
    /// an error without a place in its text is about (the recursion limit).
    pub fn from_parser(err: ParserError, next: &TokenWithSpan) -> Self {
        let text = match err {
            ParserError::RecursionLimitExceeded => {
                return SyntaxError::unexpected(
                    next,
                    format!("nested more than {RECURSION_LIMIT} levels deep"),
                );
            }
            ParserError::ParserError(text) | ParserError::TokenizerError(text) => text,
        };
        let (message, location) = split_location(&text);
        let location = location.unwrap_or(next.span.start);
        // "Expected: an expression, found: *" → message "expected an expression", found "*".
        let (expected, found) = match message.split_once(", found: ") {
            Some((expected, found)) => (expected.replacen("Expected: ", "expected ", 1), found),
            None => (message.to_string(), ""),
        };
        let found = match found.trim() {
            "" | "EOF" => "end of input".to_string(),
            found => found.to_string(),
        };
        SyntaxError::at(location, found, expected)
    }
}

/// The text a token was written as, `end of input` for the end.
pub fn token_text(token: &Token) -> String {
    match token {
        Token::EOF => "end of input".to_string(),
        token => token.to_string(),
    }
}

/// Splits `... at Line: 3, Column: 7` off sqlparser's message text.
fn split_location(text: &str) -> (&str, Option<Location>) {
    let Some(at) = text.rfind(" at Line: ") else {
        return (text, None);
    };
    let place = &text[at + " at Line: ".len()..];
    let parsed = place.split_once(", Column: ").and_then(|(line, column)| {
        Some(Location::new(
            line.trim().parse().ok()?,
            column.trim().parse().ok()?,
        ))
    });
    match parsed {
        Some(location) => (&text[..at], Some(location)),
        None => (text, None),
    }
}

/// The place just past the last character of `text`.
fn end_of(text: &str) -> Location {
    let line = text.split('\n').count() as u64;
    let last = text.rsplit('\n').next().unwrap_or_default();
    Location::new(line, last.chars().count() as u64 + 1)
}

/// The character at `location` in `text` (for tokenizer errors, which name no token).
fn found_at(text: &str, location: Location) -> String {
    let line = text.lines().nth(location.line.saturating_sub(1) as usize);
    let rest: String = line
        .map(|line| {
            line.chars()
                .skip(location.column.saturating_sub(1) as usize)
        })
        .into_iter()
        .flatten()
        .take_while(|c| !c.is_whitespace())
        .collect();
    if rest.is_empty() {
        "end of input".to_string()
    } else {
        rest
    }
}

fn lower_first(message: String) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) if first.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            first
                .to_lowercase()
                .chain(message.chars().skip(1))
                .collect()
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_error(text: &str) -> SyntaxError {
        let mut parser = match parser(text) {
            Ok(parser) => parser,
            Err(err) => return err,
        };
        match parser.parse_statements() {
            Ok(statements) => panic!("{text:?} parsed as {statements:?}"),
            Err(err) => SyntaxError::from_parser(err, &parser.peek_token()),
        }
    }

    #[test]
    fn errors_are_taken_apart_into_place_found_and_message() {
        let err = first_error("SELECT a\n  FROM t WHERE");
        assert_eq!((err.line, err.column), (2, 15));
        assert_eq!(err.found, "end of input");
        assert_eq!(err.message, "expected an expression");
        let err = first_error("SELECT 'abc");
        assert_eq!((err.line, err.column), (1, 8));
        assert_eq!(err.found, "'abc");
        assert_eq!(err.message, "unterminated string literal");
    }

    fn statement(text: &str) -> sqlparser::ast::Statement {
        let mut parser = match parser(text) {
            Ok(parser) => parser,
            Err(err) => panic!("{text}: {err:?}"),
        };
        match parser.parse_statement() {
            Ok(statement) => statement,
            Err(err) => panic!(
                "{text}: {:?}",
                SyntaxError::from_parser(err, &parser.peek_token())
            ),
        }
    }

    /// The arguments of the function in the first `FROM TABLE(...)` of `text`.
    fn window_arguments(text: &str) -> Vec<FunctionArg> {
        let printed = statement(text).to_string();
        let sqlparser::ast::Statement::Query(query) = statement(text) else {
            panic!("{printed} is not a query");
        };
        let sqlparser::ast::SetExpr::Select(select) = *query.body else {
            panic!("{printed} is not a select");
        };
        let sqlparser::ast::TableFactor::TableFunction { expr, .. } = &select.from[0].relation
        else {
            panic!("{printed}: no TABLE(...) in FROM");
        };
        let Expr::Function(Function {
            args: FunctionArguments::List(list),
            ..
        }) = expr
        else {
            panic!("{printed}: TABLE(...) holds no call");
        };
        list.args.clone()
    }

    #[test]
    fn window_functions_take_a_table_argument() {
        let args = window_arguments(
            "SELECT * FROM TABLE(TUMBLE(TABLE bids, DESCRIPTOR(ts), INTERVAL '10' MINUTES))",
        );
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(first)) = &args[0] else {
            panic!("{args:?}");
        };
        let table = TableArgument::of(first);
        assert_eq!(
            table.map(|t| (t.name, t.partition_by.len())),
            Some((vec![Ident::new("bids")], 0))
        );
        assert_eq!(args.len(), 3);

        let args = window_arguments(
            "SELECT * FROM TABLE(SESSION(TABLE db.clicks PARTITION BY (user_id, page), \
             DESCRIPTOR(ts), INTERVAL '5' MINUTES))",
        );
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(first)) = &args[0] else {
            panic!("{args:?}");
        };
        let table = TableArgument::of(first).map(|t| {
            let keys: Vec<String> = t.partition_by.iter().map(ToString::to_string).collect();
            (t.name.len(), keys)
        });
        assert_eq!(
            table,
            Some((2, vec!["user_id".to_string(), "page".to_string()]))
        );

        let args = window_arguments(
            "SELECT * FROM TABLE(HOP(DATA => TABLE bids, TIMECOL => DESCRIPTOR(ts), \
             SLIDE => INTERVAL '5' MINUTES, SIZE => INTERVAL '10' MINUTES))",
        );
        let FunctionArg::Named {
            name,
            arg: FunctionArgExpr::Expr(first),
            ..
        } = &args[0]
        else {
            panic!("{args:?}");
        };
        assert_eq!(name.value, "DATA");
        assert!(TableArgument::of(first).is_some());
        assert!(TableArgument::of(&Expr::Identifier(Ident::new("TABLE"))).is_none());

        let args = window_arguments(
            "SELECT * FROM TABLE(SESSION(TABLE clicks PARTITION BY user_id, DESCRIPTOR(ts), \
             INTERVAL '5' MINUTES))",
        );
        let FunctionArg::Unnamed(FunctionArgExpr::Expr(first)) = &args[0] else {
            panic!("{args:?}");
        };
        let keys = TableArgument::of(first).map(|t| t.partition_by.len());
        assert_eq!(
            (keys, args.len()),
            (Some(1), 3),
            "one bare key, then the other arguments"
        );
    }

    #[test]
    fn lookup_joins_parse() {
        let text = "SELECT * FROM orders AS o JOIN rates FOR SYSTEM_TIME AS OF o.proc_time AS r \
                    ON o.currency = r.currency";
        assert!(
            statement(text)
                .to_string()
                .contains("FOR SYSTEM_TIME AS OF o.proc_time")
        );
    }

    #[test]
    fn both_quotes_name_identifiers() -> Result<(), SyntaxError> {
        for text in ["`order id` + 1", "\"order id\" + 1"] {
            let mut parser = parser(text)?;
            let expr = parser
                .parse_expr()
                .map_err(|err| SyntaxError::from_parser(err, &parser.peek_token()))?;
            assert!(expr.to_string().contains("order id"), "{expr}");
        }
        Ok(())
    }
}
