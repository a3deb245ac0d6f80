//! Flink's `CREATE TABLE`: columns (physical, computed, metadata), `WATERMARK FOR`, a primary
//! key and the `WITH ('key' = 'value')` connector options.
//!
//! ```sql
//! CREATE TEMPORARY TABLE txns (
//!     card_id BIGINT,
//!     amount_cents BIGINT,
//!     ts TIMESTAMP(3),
//!     amount_eur AS amount_cents / 100.0,
//!     WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
//! ) WITH ('connector' = 'transactions', 'number-of-rows' = '100000');
//! ```

use sluice_engine::dialect::SyntaxError;
use sqlparser::ast::{DataType, Expr, Ident, ObjectName};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan};

/// A parsed `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    /// The table's name.
    pub name: ObjectName,
    /// `CREATE TEMPORARY TABLE` (sluice's tables all live for the script).
    pub temporary: bool,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
    /// The columns, in order.
    pub columns: Vec<TableColumn>,
    /// `WATERMARK FOR column AS expression`.
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY (...) NOT ENFORCED`, on a column or the table.
    pub primary_key: Vec<Ident>,
    /// The `WITH` options in order, with where each key was written.
    pub options: Vec<TableOption>,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// Its name.
    pub name: Ident,
    /// What it holds.
    pub kind: ColumnKind,
}

/// Where a column's values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnKind {
    /// Read from the connector: `name TYPE [NOT NULL]`.
    Physical { data_type: DataType, nullable: bool },
    /// `name AS expression`, computed from the other columns.
    Computed(Box<Expr>),
    /// `name TYPE METADATA [FROM 'key'] [VIRTUAL]`: a connector's metadata (a Kafka
    /// message's partition, offset, timestamp).
    Metadata {
        data_type: DataType,
        key: Option<String>,
        is_virtual: bool,
    },
}

/// `WATERMARK FOR column AS expression`.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: Ident,
    /// The watermark strategy (`ts - INTERVAL '5' SECOND`).
    pub expr: Expr,
}

/// `'key' = 'value'` in `WITH (...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOption {
    /// The option's name.
    pub key: String,
    /// Its value, always text as in Flink.
    pub value: String,
    /// Where the key was written, for errors about the option.
    pub at: Location,
}

/// Parses a `CREATE [TEMPORARY] TABLE` statement; the parser stands before `CREATE`.
pub(super) fn parse(parser: &mut Parser) -> Result<CreateTable, SyntaxError> {
    let sql =
        |parser: &Parser, err: ParserError| SyntaxError::from_parser(err, &parser.peek_token());
    parser
        .expect_keyword_is(Keyword::CREATE)
        .map_err(|e| sql(parser, e))?;
    let temporary = parser.parse_keyword(Keyword::TEMPORARY);
    parser
        .expect_keyword_is(Keyword::TABLE)
        .map_err(|e| sql(parser, e))?;
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser
        .parse_object_name(false)
        .map_err(|e| sql(parser, e))?;
    let mut table = CreateTable {
        name,
        temporary,
        if_not_exists,
        columns: Vec::new(),
        watermark: None,
        primary_key: Vec::new(),
        options: Vec::new(),
    };
    // The column list is optional for a table that is only written to (sluice's extension:
    // the sink then takes the query's columns).
    if parser.consume_token(&Token::LParen) {
        loop {
            element(parser, &mut table)?;
            if parser.consume_token(&Token::Comma) {
                continue;
            }
            if parser.consume_token(&Token::RParen) {
                break;
            }
            return Err(unexpected(parser, "expected `,` or `)` after a column"));
        }
    }
    if parser.parse_keyword(Keyword::COMMENT) {
        string(parser, "expected the table comment as a quoted string")?;
    }
    if parser.peek_keyword(Keyword::PARTITIONED) || parser.peek_keyword(Keyword::LIKE) {
        return Err(unexpected(
            parser,
            "PARTITIONED BY and LIKE are not supported in CREATE TABLE",
        ));
    }
    if !parser.parse_keyword(Keyword::WITH) {
        return Err(unexpected(
            parser,
            "expected WITH ('connector' = '...') after the columns",
        ));
    }
    table.options = options(parser)?;
    Ok(table)
}

/// One entry between the parentheses: a column, the watermark or a primary key.
fn element(parser: &mut Parser, table: &mut CreateTable) -> Result<(), SyntaxError> {
    let sql =
        |parser: &Parser, err: ParserError| SyntaxError::from_parser(err, &parser.peek_token());
    // `WATERMARK` is not among sqlparser's keywords: a plain word, then `FOR`.
    let is_watermark = matches!(&parser.peek_token_ref().token,
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("watermark"))
        && matches!(&parser.peek_nth_token_ref(1).token, Token::Word(w) if w.keyword == Keyword::FOR);
    if is_watermark {
        let at = parser.peek_token();
        parser.next_token();
        parser
            .expect_keyword_is(Keyword::FOR)
            .map_err(|e| sql(parser, e))?;
        let column = parser.parse_identifier().map_err(|e| sql(parser, e))?;
        parser
            .expect_keyword_is(Keyword::AS)
            .map_err(|e| sql(parser, e))?;
        let expr = parser.parse_expr().map_err(|e| sql(parser, e))?;
        if table.watermark.is_some() {
            return Err(SyntaxError::unexpected(&at, "a table has one WATERMARK"));
        }
        table.watermark = Some(WatermarkDef { column, expr });
        return Ok(());
    }
    if parser.parse_keyword(Keyword::CONSTRAINT) {
        parser.parse_identifier().map_err(|e| sql(parser, e))?;
    }
    if parser.peek_keyword(Keyword::PRIMARY) {
        let at = parser.peek_token();
        parser.next_token();
        parser
            .expect_keyword_is(Keyword::KEY)
            .map_err(|e| sql(parser, e))?;
        parser
            .expect_token(&Token::LParen)
            .map_err(|e| sql(parser, e))?;
        let keys = parser
            .parse_comma_separated(Parser::parse_identifier)
            .map_err(|e| sql(parser, e))?;
        parser
            .expect_token(&Token::RParen)
            .map_err(|e| sql(parser, e))?;
        not_enforced(parser)?;
        return set_primary_key(table, keys, &at);
    }
    let name = parser.parse_identifier().map_err(|e| sql(parser, e))?;
    if parser.parse_keyword(Keyword::AS) {
        let expr = parser.parse_expr().map_err(|e| sql(parser, e))?;
        comment(parser)?;
        table.columns.push(TableColumn {
            name,
            kind: ColumnKind::Computed(Box::new(expr)),
        });
        return Ok(());
    }
    let data_type = parser.parse_data_type().map_err(|e| sql(parser, e))?;
    let mut nullable = true;
    let mut kind = None;
    loop {
        if parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            nullable = false;
        } else if parser.parse_keyword(Keyword::NULL) {
            nullable = true;
        } else if parser.parse_keyword(Keyword::METADATA) {
            let key = if parser.parse_keyword(Keyword::FROM) {
                Some(string(
                    parser,
                    "expected the metadata key as a quoted string",
                )?)
            } else {
                None
            };
            let is_virtual = parser.parse_keyword(Keyword::VIRTUAL);
            kind = Some(ColumnKind::Metadata {
                data_type: data_type.clone(),
                key,
                is_virtual,
            });
        } else if parser.peek_keyword(Keyword::PRIMARY) {
            let at = parser.peek_token();
            parser.next_token();
            parser
                .expect_keyword_is(Keyword::KEY)
                .map_err(|e| sql(parser, e))?;
            not_enforced(parser)?;
            set_primary_key(table, vec![name.clone()], &at)?;
        } else if parser.peek_keyword(Keyword::COMMENT) {
            comment(parser)?;
        } else {
            break;
        }
    }
    table.columns.push(TableColumn {
        name,
        kind: kind.unwrap_or(ColumnKind::Physical {
            data_type,
            nullable,
        }),
    });
    Ok(())
}

fn set_primary_key(
    table: &mut CreateTable,
    keys: Vec<Ident>,
    at: &TokenWithSpan,
) -> Result<(), SyntaxError> {
    if !table.primary_key.is_empty() {
        return Err(SyntaxError::unexpected(at, "a table has one PRIMARY KEY"));
    }
    table.primary_key = keys;
    Ok(())
}

/// Flink accepts only unenforced keys: the engine does not check them, and says so.
fn not_enforced(parser: &mut Parser) -> Result<(), SyntaxError> {
    if parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]) {
        Ok(())
    } else {
        Err(unexpected(
            parser,
            "expected NOT ENFORCED: a primary key is not checked, as in Flink",
        ))
    }
}

fn comment(parser: &mut Parser) -> Result<(), SyntaxError> {
    if parser.parse_keyword(Keyword::COMMENT) {
        string(parser, "expected the comment as a quoted string")?;
    }
    Ok(())
}

/// `('key' = 'value', ...)`; a key given twice is an error.
fn options(parser: &mut Parser) -> Result<Vec<TableOption>, SyntaxError> {
    let sql =
        |parser: &Parser, err: ParserError| SyntaxError::from_parser(err, &parser.peek_token());
    parser
        .expect_token(&Token::LParen)
        .map_err(|e| sql(parser, e))?;
    let mut options: Vec<TableOption> = Vec::new();
    loop {
        let at = parser.peek_token();
        let key = string(
            parser,
            "expected an option name as a quoted string ('connector')",
        )?;
        if options.iter().any(|option| option.key == key) {
            return Err(SyntaxError::unexpected(
                &at,
                format!("option '{key}' is given twice"),
            ));
        }
        parser
            .expect_token(&Token::Eq)
            .map_err(|e| sql(parser, e))?;
        let value = string(parser, "expected the option's value as a quoted string")?;
        options.push(TableOption {
            key,
            value,
            at: at.span.start,
        });
        if parser.consume_token(&Token::Comma) {
            continue;
        }
        parser
            .expect_token(&Token::RParen)
            .map_err(|e| sql(parser, e))?;
        return Ok(options);
    }
}

/// A single-quoted string, or the error `message` at the next token.
fn string(parser: &mut Parser, message: &str) -> Result<String, SyntaxError> {
    match parser.peek_token().token {
        Token::SingleQuotedString(text) => {
            parser.next_token();
            Ok(text)
        }
        _ => Err(unexpected(parser, message)),
    }
}

fn unexpected(parser: &Parser, message: &str) -> SyntaxError {
    SyntaxError::unexpected(&parser.peek_token(), message)
}

#[cfg(test)]
mod tests {
    use super::super::{Statement, parse_script};
    use super::*;

    fn create_table(text: &str) -> CreateTable {
        match parse_script(text).map(|mut s| s.remove(0).statement) {
            Ok(Statement::CreateTable(table)) => table,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn error(text: &str) -> (u64, u64, String) {
        match parse_script(text) {
            Err(err) => (err.line, err.column, err.message),
            Ok(statements) => panic!("{text} parsed: {statements:?}"),
        }
    }

    #[test]
    fn reads_flinks_create_table() {
        let table = create_table(
            "CREATE TEMPORARY TABLE IF NOT EXISTS txns (\n\
               card_id BIGINT NOT NULL COMMENT 'the card',\n\
               amount_cents BIGINT,\n\
               ts TIMESTAMP(3),\n\
               part INT METADATA FROM 'partition' VIRTUAL,\n\
               amount_eur AS amount_cents / 100.0,\n\
               WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,\n\
               PRIMARY KEY (card_id) NOT ENFORCED\n\
             ) COMMENT 'payments' WITH ('connector' = 'transactions', 'number-of-rows' = '10')",
        );
        assert_eq!(table.name.to_string(), "txns");
        assert!(table.temporary && table.if_not_exists);
        let names: Vec<&str> = table
            .columns
            .iter()
            .map(|c| c.name.value.as_str())
            .collect();
        assert_eq!(
            names,
            ["card_id", "amount_cents", "ts", "part", "amount_eur"]
        );
        assert!(matches!(
            &table.columns[0].kind,
            ColumnKind::Physical {
                data_type: DataType::BigInt(None),
                nullable: false
            }
        ));
        assert!(matches!(
            &table.columns[3].kind,
            ColumnKind::Metadata { key: Some(key), is_virtual: true, .. } if key == "partition"
        ));
        assert!(matches!(&table.columns[4].kind, ColumnKind::Computed(expr)
            if expr.to_string() == "amount_cents / 100.0"));
        let watermark = table
            .watermark
            .as_ref()
            .map(|w| (w.column.value.as_str(), w.expr.to_string()));
        assert_eq!(
            watermark,
            Some(("ts", "ts - INTERVAL '5' SECOND".to_string()))
        );
        assert_eq!(table.primary_key, vec![Ident::new("card_id")]);
        let options: Vec<(&str, &str, u64)> = table
            .options
            .iter()
            .map(|o| (o.key.as_str(), o.value.as_str(), o.at.line))
            .collect();
        assert_eq!(
            options,
            [
                ("connector", "transactions", 9),
                ("number-of-rows", "10", 9)
            ]
        );
    }

    #[test]
    fn a_table_written_to_may_leave_out_its_columns() {
        let table = create_table("CREATE TABLE out WITH ('connector' = 'blackhole')");
        assert!(table.columns.is_empty());
    }

    #[test]
    fn a_column_primary_key_and_backticks() {
        let table = create_table(
            "CREATE TABLE `my table` (`order id` BIGINT PRIMARY KEY NOT ENFORCED) \
             WITH ('connector' = 'print')",
        );
        assert_eq!(table.primary_key[0].value, "order id");
        assert_eq!(table.name.to_string(), "`my table`");
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        assert_eq!(
            error("CREATE TABLE t (a BIGINT) WITH ('connector' = 'x', 'connector' = 'y')").1,
            52
        );
        assert_eq!(
            error("CREATE TABLE t (a BIGINT)").2,
            "expected WITH ('connector' = '...') after the columns, found the end of the script"
        );
        assert_eq!(
            error("CREATE TABLE t (a BIGINT) WITH (connector = 'x')"),
            (
                1,
                33,
                "expected an option name as a quoted string ('connector'), found `connector`"
                    .to_string()
            )
        );
        assert_eq!(
            error("CREATE TABLE t (\n  a BIGINT\n  b INT) WITH ('connector' = 'x')"),
            (
                3,
                3,
                "expected `,` or `)` after a column, found `b`".to_string()
            )
        );
        assert_eq!(
            error("CREATE TABLE t (a BIGINT PRIMARY KEY) WITH ('connector' = 'x')").1,
            37
        );
        assert!(
            error(
                "CREATE TABLE t (ts TIMESTAMP(3), WATERMARK FOR ts AS ts, WATERMARK FOR ts AS ts) \
                 WITH ('connector' = 'x')"
            )
            .2
            .starts_with("a table has one WATERMARK")
        );
    }
}
