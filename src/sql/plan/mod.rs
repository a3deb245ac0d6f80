//! A parsed script into the job model a TOML job file produces ([`JobSpec`]), so that both
//! front ends run through the same validation and the same pipeline.
//!
//! The script's tables become the job's source and sink, its `SET`s the job's settings, and
//! its one `INSERT INTO ... SELECT` the operator chain (see [`query`]).

mod connectors;
mod interval;
mod query;
mod settings;

use std::collections::HashMap;
use std::path::Path;

use arrow::datatypes::DataType;
use sluice_engine::duration::DurationMs;
use sluice_engine::expr::{Expr as IrExpr, ExprError};
use sqlparser::ast::{self, Expr, Query, Spanned, Statement as SqlStatement};
use sqlparser::tokenizer::{Location, Span};

use crate::job::{CheckpointFile, EventTimeFile, JobSpec, OperatorFile, ProjectColumn};
use crate::sql::create_table::{ColumnKind, CreateTable};
use crate::sql::{ScriptStatement, SqlError, Statement, parse_script};
use query::{Relation, object_name};
pub use settings::Settings;

/// Plans `text`, a script read from `base_dir`, with `overrides` applied after its `SET`s.
pub fn plan_script(
    text: &str,
    base_dir: &Path,
    overrides: &[(String, String)],
) -> Result<JobSpec, SqlError> {
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
            Statement::Other(SqlStatement::Insert(insert)) => inserts.push((insert, *start)),
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
                return Err(at("EXPLAIN is not supported yet".into()));
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
    let (insert, start) = match inserts.as_slice() {
        [] => {
            return Err(SqlError::at(
                text,
                end_of(text),
                "the script has no INSERT INTO ... SELECT: it would compute nothing",
            ));
        }
        [one] => *one,
        [_, (_, second), ..] => {
            return Err(SqlError::at(
                text,
                *second,
                "several INSERT statements in one job (a statement set) are not supported yet",
            ));
        }
    };
    planner.insert(insert, start, settings)
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

    /// `expr` as expression text for the job's operators, once its columns are known to exist.
    fn lower(&self, expr: &Expr, columns: &[String], at: Span) -> Result<String, SqlError> {
        let lowered = IrExpr::from_sql(expr).map_err(|err| match err {
            ExprError::Parse {
                line,
                column,
                ref message,
                ..
            }
            | ExprError::Unsupported {
                line,
                column,
                construct: ref message,
                ..
            }
            | ExprError::UnknownFunction {
                line,
                column,
                name: ref message,
                ..
            } if line > 0 => {
                let _ = message;
                SqlError::at(
                    self.text,
                    Location::new(line as u64, column as u64),
                    err.to_string(),
                )
            }
            other => self.error_at(at, other.to_string()),
        })?;
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

    /// A table read as a source: its declared columns checked against what the connector
    /// produces, and a projection to them (computed columns included) when they differ.
    fn table_relation(&self, key: &str, name: &ast::ObjectName) -> Result<Relation, SqlError> {
        let table = self.tables[key];
        let spec = connectors::source(table).map_err(|err| self.option_error(table, err))?;
        let source = spec
            .build(self.base_dir)
            .map_err(|err| self.error(name, format!("table `{key}`: {err}")))?;
        let schema = source.schema();
        if table.columns.is_empty() {
            return Err(self.error(name, format!(
                "table `{key}` is read, so it declares its columns (only a table written to may leave them out)"
            )));
        }
        let mut items = Vec::new();
        let mut identity = true;
        for (i, column) in table.columns.iter().enumerate() {
            let name = column.name.value.clone();
            match &column.kind {
                ColumnKind::Physical { data_type, .. } => {
                    let Ok(field) = schema.field_with_name(&name) else {
                        return Err(self.error_at(column.name.span, format!(
                            "table `{key}` declares column `{name}`, which its connector does not produce; it has {}",
                            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                        )));
                    };
                    if !same_kind(data_type, field.data_type()) {
                        return Err(self.error_at(column.name.span, format!(
                            "column `{name}` is declared {data_type} but the connector gives {}",
                            field.data_type()
                        )));
                    }
                    identity &= schema.fields().get(i).is_some_and(|f| f.name() == &name);
                    items.push((name.clone(), IrExpr::column(&name).to_string()));
                }
                ColumnKind::Computed(expr) => {
                    identity = false;
                    let physical: Vec<String> =
                        schema.fields().iter().map(|f| f.name().clone()).collect();
                    items.push((name, self.lower(expr, &physical, expr.span())?));
                }
                ColumnKind::Metadata { .. } => {
                    return Err(self.error_at(
                        column.name.span,
                        "METADATA columns are not supported by this connector",
                    ));
                }
            }
        }
        identity &= items.len() == schema.fields().len();
        let Some(watermark) = &table.watermark else {
            return Err(self.error(
                name,
                format!(
                    "table `{key}` has no WATERMARK: sluice reads tables in event time; add \
                 WATERMARK FOR <time column> AS <time column> - INTERVAL '<n>' SECOND"
                ),
            ));
        };
        if !items
            .iter()
            .any(|(name, _)| *name == watermark.column.value)
        {
            return Err(self.error_at(
                watermark.column.span,
                format!(
                    "WATERMARK FOR `{}`: no such column in `{key}`",
                    watermark.column.value
                ),
            ));
        }
        let columns: Vec<String> = items.iter().map(|(name, _)| name.clone()).collect();
        let operators = if identity {
            Vec::new()
        } else {
            vec![OperatorFile::Project {
                columns: items
                    .into_iter()
                    .map(|(name, expr)| ProjectColumn::Named { name, expr })
                    .collect(),
            }]
        };
        Ok(Relation {
            table: key.to_string(),
            operators,
            columns,
            event_time: Some(watermark.column.value.clone()),
            windowed: false,
        })
    }

    fn option_error(&self, table: &CreateTable, err: connectors::OptionError) -> SqlError {
        match err.at {
            Some(at) => SqlError::at(self.text, at, err.message),
            None => self.error(
                &table.name,
                format!("table `{}`: {}", object_name(&table.name), err.message),
            ),
        }
    }

    /// The job: `INSERT INTO sink` fed by its query, with the script's settings.
    fn insert(
        &self,
        insert: &ast::Insert,
        start: Location,
        settings: Settings,
    ) -> Result<JobSpec, SqlError> {
        let ast::TableObject::TableName(sink_name) = &insert.table else {
            return Err(SqlError::at(self.text, start, "INSERT INTO names a table"));
        };
        if !insert.columns.is_empty() || insert.overwrite {
            return Err(SqlError::at(
                self.text,
                start,
                "INSERT column lists and OVERWRITE are not supported yet",
            ));
        }
        let key = object_name(sink_name);
        let Some(sink_table) = self.tables.get(&key) else {
            return Err(self.error(
                sink_name,
                format!(
                    "no table `{key}` to insert into; the script creates {}",
                    self.names().join(", ")
                ),
            ));
        };
        let sink =
            connectors::sink(sink_table).map_err(|err| self.option_error(sink_table, err))?;
        let Some(query) = &insert.source else {
            return Err(SqlError::at(self.text, start, "INSERT INTO takes a SELECT"));
        };
        let mut relation = self.query(query)?;
        // Rows go to the sink's columns by position, as in Flink.
        let sink_columns: Vec<String> = sink_table
            .columns
            .iter()
            .map(|c| c.name.value.clone())
            .collect();
        if sink_table
            .columns
            .iter()
            .any(|c| !matches!(c.kind, ColumnKind::Physical { .. }))
        {
            return Err(self.error(sink_name, "a table written to has physical columns only"));
        }
        if !sink_columns.is_empty() && sink_columns != relation.columns {
            if sink_columns.len() != relation.columns.len() {
                return Err(self.error(
                    query.as_ref(),
                    format!(
                        "the query gives {} columns ({}) but `{key}` has {} ({})",
                        relation.columns.len(),
                        visible(&relation.columns).join(", "),
                        sink_columns.len(),
                        sink_columns.join(", ")
                    ),
                ));
            }
            let items = sink_columns
                .iter()
                .zip(&relation.columns)
                .map(|(to, from)| (to.clone(), IrExpr::column(from).to_string()))
                .collect();
            relation = query::project(relation, items);
        }
        let base = self.tables[&relation.table];
        let Some(watermark) = &base.watermark else {
            return Err(self.error(sink_name, "the job's source table has no WATERMARK"));
        };
        let column = watermark.column.value.clone();
        let delay = self.watermark_delay(base, watermark)?;
        let source = connectors::source(base).map_err(|err| self.option_error(base, err))?;
        let checkpoint = match (settings.checkpoint_dir, settings.checkpoint_interval) {
            (Some(location), interval) => {
                let mut file: CheckpointFile = toml::from_str(&format!("location = {location:?}"))
                    .map_err(|err| SqlError::at(self.text, start, err.to_string()))?;
                file.interval = interval.unwrap_or(file.interval);
                file.retain = settings.checkpoint_retain.unwrap_or(file.retain);
                file.tolerable_failures = settings
                    .tolerable_failures
                    .unwrap_or(file.tolerable_failures);
                Some(file)
            }
            (None, Some(_)) => {
                return Err(SqlError::at(
                    self.text,
                    start,
                    "SET 'execution.checkpointing.interval' needs 'state.checkpoints.dir' (where checkpoints go)",
                ));
            }
            (None, None) => None,
        };
        Ok(JobSpec {
            name: settings.name,
            backend: settings.backend,
            strict: settings.strict,
            source: Some(source),
            event_time: Some(EventTimeFile {
                column,
                watermark_delay: delay,
                idle_timeout: settings.idle_timeout,
            }),
            streams: Default::default(),
            join: None,
            batching: settings.batching,
            operators: relation.operators,
            sink,
            late: None,
            dead_letter: None,
            checkpoint,
            cluster: None,
        })
    }

    /// `WATERMARK FOR ts AS ts - INTERVAL 'n' UNIT` (or `AS ts`): the bounded delay.
    fn watermark_delay(
        &self,
        table: &CreateTable,
        watermark: &crate::sql::WatermarkDef,
    ) -> Result<DurationMs, SqlError> {
        let column = &watermark.column.value;
        let is_column =
            |expr: &Expr| matches!(expr, Expr::Identifier(ident) if ident.value == *column);
        match &watermark.expr {
            expr if is_column(expr) => Ok(DurationMs(0)),
            Expr::BinaryOp { left, op: ast::BinaryOperator::Minus, right } if is_column(left) => interval::millis(right)
                .map(DurationMs)
                .map_err(|err| self.error(right.as_ref(), err)),
            other => Err(self.error(other, format!(
                "table `{}`: sluice's watermarks trail the largest event time by a fixed delay: \
                 write WATERMARK FOR {column} AS {column} - INTERVAL '<n>' SECOND",
                object_name(&table.name)
            ))),
        }
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

/// Whether SQL type `declared` reads Arrow type `actual` without surprise.
fn same_kind(declared: &ast::DataType, actual: &DataType) -> bool {
    let Some(column_type) = connectors::column_type(declared) else {
        return false;
    };
    let declared = column_type.data_type();
    let kind = |t: &DataType| match t {
        t if t.is_integer() => 0,
        t if t.is_floating() => 1,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => 2,
        DataType::Boolean => 3,
        DataType::Timestamp(..) => 4,
        _ => 5,
    };
    kind(&declared) == kind(actual)
}
