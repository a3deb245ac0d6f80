//! Splits a script into statements, each with the place it starts at.

use sluice_engine::dialect::{self, SyntaxError};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, Tokenizer};

use super::create_table::{self, CreateTable};
use super::error::SqlError;

/// One statement of a script.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a script holds a handful of statements; boxing buys nothing"
)]
pub enum Statement {
    /// `CREATE [TEMPORARY] TABLE ... WITH (...)`, in Flink's form.
    CreateTable(CreateTable),
    /// Every other statement, as sqlparser reads it: views, `INSERT`, `SET`, `EXPLAIN`, queries.
    Other(sqlparser::ast::Statement),
}

/// A statement and where it starts in the script.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptStatement {
    /// The statement.
    pub statement: Statement,
    /// Its first token's place.
    pub start: Location,
}

/// Parses every statement of `text`; the first error stops it.
///
/// Flink's statement-set blocks (`EXECUTE STATEMENT SET BEGIN ... END;` and the SQL client's
/// `BEGIN STATEMENT SET; ... END;`) are read as their `INSERT`s: a script's INSERTs all run
/// as one job whether or not a block groups them, so the block only checks that it holds
/// nothing else.
pub fn parse_script(text: &str) -> Result<Vec<ScriptStatement>, SqlError> {
    let mut parser = dialect::parser(text).map_err(|err| SqlError::syntax(text, err))?;
    let mut statements = Vec::new();
    // Where the open statement-set block began.
    let mut set_begins: Option<Location> = None;
    loop {
        while parser.consume_token(&Token::SemiColon) {}
        let start = parser.peek_token();
        if start.token == Token::EOF {
            return match set_begins {
                Some(at) => Err(SqlError::at(
                    text,
                    at,
                    "this statement set has no END".to_string(),
                )),
                None => Ok(statements),
            };
        }
        if set_begins.is_none()
            && (parser.parse_keywords(&[
                Keyword::EXECUTE,
                Keyword::STATEMENT,
                Keyword::SET,
                Keyword::BEGIN,
            ]) || parser.parse_keywords(&[Keyword::BEGIN, Keyword::STATEMENT, Keyword::SET]))
        {
            set_begins = Some(start.span.start);
            continue;
        }
        if set_begins.is_some() && parser.parse_keyword(Keyword::END) {
            set_begins = None;
            expect_end_of_statement(text, &parser)?;
            continue;
        }
        let statement = if is_create_table(&parser) {
            create_table::parse(&mut parser)
                .map(Statement::CreateTable)
                .map_err(|err| SqlError::syntax(text, err))?
        } else {
            Statement::Other(
                parser
                    .parse_statement()
                    .map_err(|err| syntax(text, &parser, err))?,
            )
        };
        if set_begins.is_some()
            && !matches!(
                statement,
                Statement::Other(sqlparser::ast::Statement::Insert(_))
            )
        {
            return Err(SqlError::at(
                text,
                start.span.start,
                "a statement set holds INSERT INTO statements only".to_string(),
            ));
        }
        statements.push(ScriptStatement {
            statement,
            start: start.span.start,
        });
        expect_end_of_statement(text, &parser)?;
    }
}

/// Refuses anything but `;` or the end of the script after a statement.
fn expect_end_of_statement(text: &str, parser: &Parser) -> Result<(), SqlError> {
    let after = parser.peek_token();
    if matches!(after.token, Token::SemiColon | Token::EOF) {
        return Ok(());
    }
    Err(SqlError::syntax(
        text,
        SyntaxError::unexpected(&after, "expected `;` or the end of the script"),
    ))
}

/// The statements of `text` as written, split at the `;` between them (not those in strings
/// or comments); statements that are only comments or blank are left out. A statement-set
/// block (`EXECUTE STATEMENT SET BEGIN ... END`, `BEGIN STATEMENT SET; ... END`) is one
/// statement, its inner `;`s included.
pub fn split_statements(text: &str) -> Result<Vec<&str>, SqlError> {
    Ok(split(text)?.0)
}

/// Whether `text` ends at the end of a statement: its last token is a `;` outside any open
/// statement-set block (what a prompt waits for before running what was typed).
pub fn ends_statement(text: &str) -> bool {
    split(text).is_ok_and(|(_, rest)| rest.is_none())
        && Tokenizer::new(&dialect::FLINK, text)
            .tokenize()
            .is_ok_and(|tokens| {
                tokens
                    .iter()
                    .rev()
                    .find(|t| !matches!(t, Token::Whitespace(_)))
                    .is_some_and(|t| *t == Token::SemiColon)
            })
}

/// The statements of `text`, and the unfinished one at its end (words after the last `;`,
/// or an open statement-set block), which is also the last of the statements.
fn split(text: &str) -> Result<(Vec<&str>, Option<&str>), SqlError> {
    let tokens = Tokenizer::new(&dialect::FLINK, text)
        .tokenize_with_location()
        .map_err(|err| SqlError::at(text, err.location, err.message))?;
    let mut statements = Vec::new();
    let mut start = 0;
    let mut has_words = false;
    // The statement's first words and the words since the last `;`, upper-cased.
    let mut lead: Vec<String> = Vec::new();
    let mut since: Vec<String> = Vec::new();
    let mut in_set = false;
    for token in &tokens {
        match &token.token {
            Token::SemiColon => {
                let closes = !in_set || since == ["END"];
                since.clear();
                if !closes {
                    continue;
                }
                let end = byte_offset(text, token.span.start);
                if has_words {
                    statements.push(text[start..end].trim());
                }
                start = end + 1;
                has_words = false;
                in_set = false;
                lead.clear();
            }
            Token::Whitespace(_) => {}
            other => {
                has_words = true;
                let word = match other {
                    Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
                    _ => String::new(),
                };
                if since.len() < 2 {
                    since.push(word.clone());
                }
                if lead.len() < 4 {
                    lead.push(word);
                    in_set |= lead == ["EXECUTE", "STATEMENT", "SET", "BEGIN"]
                        || lead == ["BEGIN", "STATEMENT", "SET"];
                }
            }
        }
    }
    let rest = has_words.then(|| text[start..].trim());
    statements.extend(rest);
    Ok((statements, rest))
}

/// The byte offset of `location` (1-based line and character column) in `text`.
fn byte_offset(text: &str, location: Location) -> usize {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == location.line as usize {
            return offset
                + line
                    .char_indices()
                    .nth(location.column.saturating_sub(1) as usize)
                    .map_or(line.len(), |(at, _)| at);
        }
        offset += line.len();
    }
    text.len()
}

/// Whether the next tokens are `CREATE [TEMPORARY] TABLE`.
fn is_create_table(parser: &Parser) -> bool {
    let keyword = |n: usize, keyword: Keyword| matches!(&parser.peek_nth_token_ref(n).token, Token::Word(w) if w.keyword == keyword);
    keyword(0, Keyword::CREATE)
        && (keyword(1, Keyword::TABLE)
            || (keyword(1, Keyword::TEMPORARY) && keyword(2, Keyword::TABLE)))
}

fn syntax(text: &str, parser: &Parser, err: ParserError) -> SqlError {
    SqlError::syntax(text, SyntaxError::from_parser(err, &parser.peek_token()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_split_and_placed() -> Result<(), SqlError> {
        let text = "SET 'parallelism.default' = '2';\n\n\
                    CREATE TABLE t (a BIGINT) WITH ('connector' = 'blackhole');\n\
                    -- a comment\n\
                    INSERT INTO t SELECT 1;;";
        let statements = parse_script(text)?;
        let starts: Vec<(u64, u64)> = statements
            .iter()
            .map(|s| (s.start.line, s.start.column))
            .collect();
        assert_eq!(starts, vec![(1, 1), (3, 1), (5, 1)]);
        assert!(matches!(statements[1].statement, Statement::CreateTable(_)));
        assert!(matches!(
            &statements[2].statement,
            Statement::Other(sqlparser::ast::Statement::Insert(_))
        ));
        assert!(parse_script("  -- nothing\n")?.is_empty());
        Ok(())
    }

    #[test]
    fn scripts_split_at_semicolons_outside_strings_and_comments() -> Result<(), SqlError> {
        let text = "SET 'a' = 'x;y';\n-- a comment; still one\nSELECT 'é;' FROM t\n;\n  -- end;\n";
        assert_eq!(
            split_statements(text)?,
            vec![
                "SET 'a' = 'x;y'",
                "-- a comment; still one\nSELECT 'é;' FROM t"
            ]
        );
        assert_eq!(split_statements("SELECT 1")?, vec!["SELECT 1"]);
        assert!(split_statements(" ;; -- nothing\n")?.is_empty());
        // A statement-set block is one statement.
        let set = "SET 'a' = 'b';\nEXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\n\
                   INSERT INTO b SELECT 2;\nEND;\nBEGIN STATEMENT SET;\nINSERT INTO c SELECT 3;\nEND;";
        assert_eq!(
            split_statements(set)?,
            vec![
                "SET 'a' = 'b'",
                "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND",
                "BEGIN STATEMENT SET;\nINSERT INTO c SELECT 3;\nEND",
            ]
        );
        assert!(ends_statement("SELECT 1;\n"));
        assert!(!ends_statement("SELECT 1"));
        assert!(!ends_statement("SELECT ';'"));
        assert!(!ends_statement(
            "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;"
        ));
        assert!(ends_statement(
            "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\nEND;"
        ));
        Ok(())
    }

    #[test]
    fn statement_set_blocks_read_as_their_inserts() -> Result<(), SqlError> {
        let inserts = |text: &str| -> Result<Vec<u64>, SqlError> {
            Ok(parse_script(text)?
                .iter()
                .map(|s| {
                    assert!(matches!(
                        &s.statement,
                        Statement::Other(sqlparser::ast::Statement::Insert(_))
                    ));
                    s.start.line
                })
                .collect())
        };
        let flink =
            "EXECUTE STATEMENT SET\nBEGIN\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND;";
        assert_eq!(inserts(flink)?, vec![3, 4]);
        let client = "BEGIN STATEMENT SET;\nINSERT INTO a SELECT 1;\nEND;\nINSERT INTO c SELECT 3";
        assert_eq!(inserts(client)?, vec![2, 4]);
        let err = |text: &str| parse_script(text).err().map(|e| (e.line, e.message));
        assert_eq!(
            err("EXECUTE STATEMENT SET BEGIN\nSET 'a' = 'b';\nEND;"),
            Some((
                2,
                "a statement set holds INSERT INTO statements only".to_string()
            ))
        );
        assert_eq!(
            err("BEGIN STATEMENT SET;\nINSERT INTO a SELECT 1;"),
            Some((1, "this statement set has no END".to_string()))
        );
        Ok(())
    }

    #[test]
    fn errors_point_into_the_script() {
        let err = parse_script("SET 'a' = 'b';\nSELECT a FROM t WHERE;").err();
        assert_eq!(
            err.map(|err| (err.line, err.column, err.message)),
            Some((2, 22, "expected an expression, found `;`".to_string()))
        );
        let err = parse_script("SELECT 1 SELECT 2").err();
        assert_eq!(
            err.map(|err| (err.line, err.column, err.message)),
            Some((
                1,
                10,
                "expected `;` or the end of the script, found `SELECT`".to_string()
            ))
        );
    }
}
