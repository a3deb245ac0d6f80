//! SQL scripts: Flink-dialect statements, parsed with sqlparser and sluice's dialect.
//!
//! A script is a list of statements separated by `;`. sqlparser reads most of them as they are
//! (`CREATE TEMPORARY VIEW`, `INSERT INTO ... SELECT`, `SET`, `EXPLAIN`); `CREATE TABLE` is read
//! here because Flink's form (computed columns, `WATERMARK FOR`, `METADATA`, options as quoted
//! pairs) is beyond sqlparser's. Every error names the line and column, with the line and a caret.

mod create_table;
mod error;
#[cfg(test)]
mod fuzz;
mod plan;
mod script;
mod session;

pub use create_table::{ColumnKind, CreateTable, TableColumn, WatermarkDef};
pub use error::SqlError;
pub use plan::{ScriptJob, Settings, plan_script};
pub use script::{ScriptStatement, Statement, ends_statement, parse_script, split_statements};
pub use session::{Request, Session};
