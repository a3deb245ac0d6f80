//! A SQL session: the tables, views and settings defined so far, and each query planned as a
//! job over them. The `sluice sql` shell and the SQL logic tests (`tests/slt.rs`) are sessions.
//!
//! Definitions (`CREATE`, `SET`) are checked by the parser when given and planned with each
//! query, so a table that cannot be read is reported by the first query that reads it.

use std::path::{Path, PathBuf};

use super::{Statement, parse_script};
use crate::job::{JobError, JobFile};

/// What a piece of SQL asks the session to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `CREATE TABLE`, `CREATE VIEW` or `SET`: remembered for later queries.
    Define,
    /// `SELECT ...`: a job whose rows go to the caller's sink.
    Query(&'a str),
    /// `EXPLAIN SELECT ...`: the plan of that query.
    Explain(&'a str),
    /// `INSERT INTO t SELECT ...` (or `EXPLAIN INSERT ...`): a job with the table's sink.
    Insert,
}

/// The definitions of a session and where relative paths in them point.
#[derive(Debug, Clone)]
pub struct Session {
    base_dir: PathBuf,
    definitions: String,
}

impl Session {
    /// An empty session whose relative paths are resolved against `base_dir`.
    pub fn new(base_dir: impl Into<PathBuf>) -> Self {
        Session {
            base_dir: base_dir.into(),
            definitions: String::new(),
        }
    }

    /// What `sql` (one statement) asks for, by its first words.
    pub fn request(sql: &str) -> Request<'_> {
        let trimmed = skip_comments(sql);
        let words: Vec<String> = trimmed
            .split_whitespace()
            .take(2)
            .map(str::to_ascii_uppercase)
            .collect();
        let word = |i: usize| words.get(i).map(String::as_str);
        match (word(0), word(1)) {
            (Some("SELECT"), _) => Request::Query(trimmed),
            (Some("EXPLAIN"), Some("SELECT")) => Request::Explain(trimmed[7..].trim_start()),
            (Some("INSERT" | "EXPLAIN"), _) | (Some("EXECUTE" | "BEGIN"), Some("STATEMENT")) => {
                Request::Insert
            }
            _ => Request::Define,
        }
    }

    /// Remembers a definition after checking that it parses and is one.
    pub fn define(&mut self, sql: &str) -> Result<(), JobError> {
        let statements = parse_script(sql).map_err(|error| self.error(error, 0))?;
        for statement in &statements {
            let definition = match &statement.statement {
                Statement::CreateTable(_) => true,
                Statement::Other(other) => matches!(
                    other,
                    sqlparser::ast::Statement::CreateView(_) | sqlparser::ast::Statement::Set(_)
                ),
            };
            if !definition {
                let error = crate::sql::SqlError::at(
                    sql,
                    statement.start,
                    "expected CREATE TABLE, CREATE VIEW, SET, SELECT, EXPLAIN or INSERT",
                );
                return Err(self.error(error, 0));
            }
        }
        self.definitions.push_str(sql.trim().trim_end_matches(';'));
        self.definitions.push_str(";\n");
        Ok(())
    }

    /// The job of `select`, writing to a table of connector `connector` (`print` for a
    /// terminal, `blackhole` when the caller replaces the sink).
    pub fn query(&self, select: &str, connector: &str) -> Result<JobFile, JobError> {
        let preamble = format!(
            "{}CREATE TABLE sluice_session_out WITH ('connector' = '{connector}');\n\
             INSERT INTO sluice_session_out\n",
            self.definitions
        );
        self.plan(&preamble, select.trim().trim_end_matches(';'))
    }

    /// The job of an `INSERT` (or `EXPLAIN INSERT`) statement.
    pub fn insert(&self, sql: &str) -> Result<JobFile, JobError> {
        self.plan(&self.definitions, sql.trim().trim_end_matches(';'))
    }

    /// Plans `preamble` + `sql`; an error in `sql` is placed within it, not the whole text.
    fn plan(&self, preamble: &str, sql: &str) -> Result<JobFile, JobError> {
        let offset = preamble.lines().count() as u64;
        let text = format!("{preamble}{sql}");
        JobFile::from_sql(&text, &self.path(), &[]).map_err(|err| match err {
            JobError::Sql { error, .. } => self.error(error, offset),
            other => other,
        })
    }

    fn path(&self) -> PathBuf {
        // A job's name is its file's stem: `session` in logs and plans.
        self.base_dir.join("session")
    }

    /// `error` with its line counted from the statement given (after `offset` lines of
    /// definitions); one in a definition given earlier says so.
    fn error(&self, mut error: crate::sql::SqlError, offset: u64) -> JobError {
        if error.line > offset {
            error.line -= offset;
        } else {
            error.message = format!("in an earlier definition: {}", error.message);
        }
        JobError::Sql {
            path: self.path(),
            error,
        }
    }

    /// The folder relative paths are resolved against.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }
}

/// `sql` without the line comments and blank lines before its first word.
fn skip_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    while let Some(comment) = rest.strip_prefix("--") {
        rest = comment
            .split_once('\n')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_their_first_words() {
        assert_eq!(
            Session::request("-- hi\n select 1"),
            Request::Query("select 1")
        );
        assert_eq!(
            Session::request("EXPLAIN  SELECT a FROM t"),
            Request::Explain("SELECT a FROM t")
        );
        assert_eq!(
            Session::request("explain insert into t select 1"),
            Request::Insert
        );
        assert_eq!(
            Session::request("EXECUTE STATEMENT SET BEGIN INSERT INTO o SELECT 1; END"),
            Request::Insert
        );
        assert_eq!(Session::request("CREATE TABLE t (a INT)"), Request::Define);
        assert_eq!(Session::request("SET 'a' = 'b'"), Request::Define);
    }

    #[test]
    fn errors_count_lines_from_the_statement_given() {
        let mut session = Session::new("/nowhere");
        let table = "CREATE TABLE t (ts TIMESTAMP(3), card_id BIGINT,\n\
                     WATERMARK FOR ts AS ts)\n\
                     WITH ('connector' = 'transactions', 'number-of-rows' = '5')";
        session.define(table).expect("defines");
        match session.query("SELECT card_id,\n  nope FROM t", "blackhole") {
            Err(JobError::Sql { error, .. }) => {
                assert_eq!((error.line, error.column), (2, 3), "{error}");
                assert!(
                    error.message.starts_with("unknown column `nope`"),
                    "{error}"
                );
            }
            other => panic!("expected a SQL error, got {other:?}"),
        }
        assert!(session.query("SELECT card_id FROM t", "blackhole").is_ok());
        assert!(matches!(
            session.define("SELECT 1"),
            Err(JobError::Sql { .. })
        ));
    }
}
