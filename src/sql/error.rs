//! A SQL error with its place: line, column, the line's text and a caret under the column.

use std::fmt::{self, Display, Formatter};

use sluice_engine::dialect::SyntaxError;
use sqlparser::tokenizer::Location;

/// What is wrong with a script, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// The 1-based line.
    pub line: u64,
    /// The 1-based column, in characters.
    pub column: u64,
    /// What is wrong, in a sentence.
    pub message: String,
    /// The text of the line, for the caret.
    pub source_line: String,
}

impl SqlError {
    /// An error at `location` of `text`.
    pub fn at(text: &str, location: Location, message: impl Into<String>) -> Self {
        let line = location.line.max(1);
        SqlError {
            line,
            column: location.column.max(1),
            message: message.into(),
            source_line: text
                .lines()
                .nth(line as usize - 1)
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// sqlparser's error, as [`SyntaxError`] takes it apart, in `text`.
    pub fn syntax(text: &str, err: SyntaxError) -> Self {
        let location = Location::new(err.line, err.column);
        let message = if err.found.is_empty() {
            err.message
        } else if err.found == "end of input" {
            format!("{}, found the end of the script", err.message)
        } else {
            format!("{}, found `{}`", err.message, err.found)
        };
        SqlError::at(text, location, message)
    }
}

impl Display for SqlError {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        // The caret sits under the column's character; tabs are kept so that it lines up.
        let before: String = self
            .source_line
            .chars()
            .take(self.column as usize - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(
            f,
            "line {}, column {}: {}\n {pad} |\n {number} | {}\n {pad} | {before}^",
            self.line, self.column, self.message, self.source_line
        )
    }
}

impl std::error::Error for SqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_the_line_and_a_caret_under_the_column() {
        let text = "SELECT a\n  FROM t WHERE";
        let err = SqlError::at(text, Location::new(2, 8), "expected an expression");
        assert_eq!(
            err.to_string(),
            "line 2, column 8: expected an expression\n   |\n 2 |   FROM t WHERE\n   |        ^"
        );
    }
}
