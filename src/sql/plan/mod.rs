//! A parsed script into the job model a TOML job file produces ([`JobSpec`]), so that both
//! front ends run through the same validation and the same pipeline.
//!
//! The script's tables become the job's source and sink, its `SET`s the job's settings, and
//! its one `INSERT INTO ... SELECT` the operator chain (see [`query`]).

mod connectors;
mod insert;
mod interval;
mod kafka;
mod lookup_join;
mod over;
mod projection;
mod query;
mod scope;
mod settings;
mod stream_join;
mod table;
mod top_n;
mod window_function;

use std::collections::HashMap;
use std::path::Path;

use sluice_engine::expr::{Expr as IrExpr, ExprError};
use sqlparser::ast::{self, Expr, Query, Spanned, Statement as SqlStatement};
use sqlparser::tokenizer::{Location, Span};

use crate::job::JobSpec;
use crate::sql::create_table::CreateTable;
use crate::sql::{ScriptStatement, SqlError, Statement, parse_script};
use query::object_name;
pub use settings::Settings;

/// A planned script: one job per `INSERT`, and whether the script asked to explain them
/// instead of running them.
#[derive(Debug, Clone)]
pub struct ScriptJob {
    /// Per `INSERT`, in script order, the table it writes and its job as a TOML job file
    /// would give it. Several: a statement set, run as one job of that many pipelines.
    pub inserts: Vec<(String, JobSpec)>,
    /// The `INSERT`s were written `EXPLAIN INSERT ...`: print the plans, move no data.
    pub explain: bool,
}

/// Plans `text`, a script read from `base_dir`, with `overrides` applied after its `SET`s.
pub fn plan_script(
    text: &str,
    base_dir: &Path,
    overrides: &[(String, String)],
) -> Result<ScriptJob, SqlError> {
    let statements = parse_script(text)?;
    let mut planner = Planner {
        text,
        base_dir,
        tables: HashMap::new(),
        views: HashMap::new(),
        order: Vec::new(),
    };
    let mut settings = Settings::default();
    let mut inserts = Vec::new();
    for ScriptStatement { statement, start } in &statements {
        let at = |message: String| SqlError::at(text, *start, message);
        match statement {
            Statement::CreateTable(table) => planner
                .create(object_name(&table.name), table.if_not_exists, *start)
                .map(|key| {
                    planner.tables.insert(key, table);
                })?,
            Statement::Other(SqlStatement::CreateView(view)) => {
                if view.materialized || !view.columns.is_empty() {
                    return Err(at(
                        "materialized views and view column lists are not supported".into(),
                    ));
                }
                let key = planner.create(object_name(&view.name), view.if_not_exists, *start)?;
                planner.views.insert(key, &view.query);
            }
            Statement::Other(SqlStatement::Insert(insert)) => {
                inserts.push((insert, *start, false));
            }
            Statement::Other(SqlStatement::Explain { statement, .. })
                if matches!(statement.as_ref(), SqlStatement::Insert(_)) =>
            {
                if let SqlStatement::Insert(insert) = statement.as_ref() {
                    inserts.push((insert, *start, true));
                }
            }
            Statement::Other(SqlStatement::Set(ast::Set::SingleAssignment {
                variable,
                values,
                ..
            })) => {
                let key = object_name(variable);
                let value = match values.as_slice() {
                    [Expr::Value(value)] => match &value.value {
                        ast::Value::SingleQuotedString(text) | ast::Value::Number(text, _) => {
                            text.clone()
                        }
                        other => other.to_string(),
                    },
                    [other] => other.to_string(),
                    _ => return Err(at(format!("SET '{key}' takes one value"))),
                };
                settings.set(&key, &value).map_err(at)?;
            }
            Statement::Other(SqlStatement::Query(_)) => {
                return Err(at("a script writes its results with INSERT INTO <table> SELECT ...; a bare SELECT has nowhere to go".into()));
            }
            Statement::Other(SqlStatement::Explain { .. }) => {
                return Err(at(
                    "EXPLAIN takes the script's INSERT INTO ... SELECT".into()
                ));
            }
            Statement::Other(other) => {
                let words: Vec<String> = other
                    .to_string()
                    .split_whitespace()
                    .take(2)
                    .map(str::to_string)
                    .collect();
                return Err(at(format!(
                    "`{}` statements are not supported",
                    words.join(" ")
                )));
            }
        }
    }
    for (key, value) in overrides {
        settings.set(key, value).map_err(|err| {
            SqlError::at(
                text,
                Location::new(0, 0),
                format!("--set {key}={value}: {err}"),
            )
        })?;
    }
    let Some(&(_, _, explain)) = inserts.first() else {
        return Err(SqlError::at(
            text,
            end_of(text),
            "the script has no INSERT INTO ... SELECT: it would compute nothing",
        ));
    };
    let mut planned: Vec<(String, JobSpec)> = Vec::with_capacity(inserts.len());
    for &(insert, start, explained) in &inserts {
        if explained != explain {
            return Err(SqlError::at(
                text,
                start,
                "a script either runs its INSERTs or explains them: write EXPLAIN before every INSERT or before none",
            ));
        }
        let spec = planner.insert(insert, start, settings.clone())?;
        // `planner.insert` accepted it, so it names a table.
        let table = match &insert.table {
            ast::TableObject::TableName(name) => object_name(name),
            _ => String::new(),
        };
        if planned.iter().any(|(written, _)| *written == table) {
            return Err(SqlError::at(
                text,
                start,
                format!(
                    "`{table}` is written by an earlier INSERT too; in sluice a table has one writer (Flink would union the two)"
                ),
            ));
        }
        planned.push((table, spec));
    }
    Ok(ScriptJob {
        inserts: planned,
        explain,
    })
}

/// The end of `text`, for errors about something missing.
fn end_of(text: &str) -> Location {
    let line = text.lines().count().max(1) as u64;
    let column = text.lines().last().map_or(0, |l| l.chars().count()) as u64 + 1;
    Location::new(line, column)
}

/// What the statements before the `INSERT` created.
pub(crate) struct Planner<'a> {
    text: &'a str,
    base_dir: &'a Path,
    tables: HashMap<String, &'a CreateTable>,
    views: HashMap<String, &'a Query>,
    /// Table and view names in the order they were created, for error messages.
    order: Vec<String>,
}

impl<'a> Planner<'a> {
    /// Registers the name of a new table or view, refusing one that exists.
    fn create(
        &mut self,
        key: String,
        if_not_exists: bool,
        at: Location,
    ) -> Result<String, SqlError> {
        if self.order.contains(&key) && !if_not_exists {
            return Err(SqlError::at(
                self.text,
                at,
                format!("`{key}` is created twice"),
            ));
        }
        self.order.push(key.clone());
        Ok(key)
    }

    fn names(&self) -> Vec<String> {
        self.order.iter().map(|name| format!("`{name}`")).collect()
    }

    /// An error about `node`, pointing at where it was written.
    fn error(&self, node: &impl Spanned, message: impl Into<String>) -> SqlError {
        self.error_at(node.span(), message)
    }

    fn error_at(&self, span: Span, message: impl Into<String>) -> SqlError {
        SqlError::at(self.text, span.start, message)
    }

    fn unknown_column(&self, node: &impl Spanned, column: &str, columns: &[String]) -> SqlError {
        self.error(
            node,
            format!(
                "unknown column `{column}`; available: {}",
                visible(columns).join(", ")
            ),
        )
    }

    /// An expression error at its own place in the script, or at `at` when it has none.
    fn expr_error(&self, err: &ExprError, at: Span) -> SqlError {
        match err.place() {
            Some((line, column)) => SqlError::at(
                self.text,
                Location::new(line as u64, column as u64),
                err.message(),
            ),
            None => self.error_at(at, err.to_string()),
        }
    }

    /// `expr` as expression text for the job's operators, once its columns are known to exist.
    fn lower(&self, expr: &Expr, columns: &[String], at: Span) -> Result<String, SqlError> {
        self.lower_renamed(expr, columns, at, &HashMap::new())
    }

    /// [`Planner::lower`], with the columns `renamed` maps given their new names first.
    fn lower_renamed(
        &self,
        expr: &Expr,
        columns: &[String],
        at: Span,
        renamed: &HashMap<String, String>,
    ) -> Result<String, SqlError> {
        let lowered = IrExpr::from_sql(expr).map_err(|err| self.expr_error(&err, at))?;
        let lowered = lowered.rename_columns(&|name| renamed.get(name).cloned());
        if let Some(missing) = lowered.columns().into_iter().find(|c| !columns.contains(c)) {
            return Err(self.error_at(
                at,
                format!(
                    "unknown column `{missing}`; available: {}",
                    visible(columns).join(", ")
                ),
            ));
        }
        Ok(lowered.to_string())
    }
}

/// Columns as a user sees them (the window's internal `__agg<i>` names are hidden).
fn visible(columns: &[String]) -> Vec<String> {
    columns
        .iter()
        .filter(|c| !c.starts_with("__agg"))
        .cloned()
        .collect()
}
