//! The job an `INSERT INTO sink SELECT ...` makes: the query's operators between the source
//! table and the sink, with the script's settings and the source's watermark.

use sluice_engine::duration::DurationMs;
use sqlparser::ast::{self, Expr};
use sqlparser::tokenizer::Location;

use super::projection;
use super::query::object_name;
use super::{Planner, Settings, connectors, interval, visible};
use crate::job::{CheckpointFile, EventTimeFile, JobSpec, StreamFile};
use crate::sql::create_table::{ColumnKind, CreateTable};
use crate::sql::{SqlError, WatermarkDef};

impl Planner<'_> {
    /// The job: `INSERT INTO sink` fed by its query, with the script's settings.
    pub(super) fn insert(
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
            relation = projection::rename(relation, sink_columns);
        }
        let (source, event_time, streams, join) = match relation.join.take() {
            None => {
                let base = self.tables[&relation.table];
                let event_time = self.event_time(base, sink_name, &settings)?;
                let source =
                    connectors::source(base).map_err(|err| self.option_error(base, err))?;
                (Some(source), Some(event_time), Default::default(), None)
            }
            Some(plan) => {
                let plan = *plan;
                let mut streams = std::collections::BTreeMap::new();
                for side in [plan.left, plan.right] {
                    let table = self.tables[&side.table];
                    streams.insert(
                        side.name,
                        StreamFile {
                            source: connectors::source(table)
                                .map_err(|err| self.option_error(table, err))?,
                            event_time: self.event_time(table, sink_name, &settings)?,
                            operators: side.operators,
                        },
                    );
                }
                (None, None, streams, Some(plan.join))
            }
        };
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
            source,
            event_time,
            streams,
            join,
            batching: settings.batching,
            operators: relation.operators,
            sink,
            late: None,
            dead_letter: None,
            checkpoint,
            cluster: None,
        })
    }

    /// A read table's event time: its `WATERMARK` column and delay.
    fn event_time(
        &self,
        table: &CreateTable,
        sink_name: &ast::ObjectName,
        settings: &Settings,
    ) -> Result<EventTimeFile, SqlError> {
        let Some(watermark) = &table.watermark else {
            return Err(self.error(
                sink_name,
                format!(
                    "the job's source table `{}` has no WATERMARK",
                    object_name(&table.name)
                ),
            ));
        };
        Ok(EventTimeFile {
            column: watermark.column.value.clone(),
            watermark_delay: self.watermark_delay(table, watermark)?,
            idle_timeout: settings.idle_timeout,
        })
    }

    /// `WATERMARK FOR ts AS ts - INTERVAL 'n' UNIT` (or `AS ts`): the bounded delay.
    fn watermark_delay(
        &self,
        table: &CreateTable,
        watermark: &WatermarkDef,
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
