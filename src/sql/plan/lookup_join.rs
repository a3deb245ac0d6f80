//! `JOIN dim FOR SYSTEM_TIME AS OF s.proc_time AS d ON s.k = d.k`: the lookup join operator,
//! enriching each row from a bounded table read whole when the job starts.
//!
//! The table is the one the job read at start, whatever the `AS OF` expression says: the
//! processing-time semantics Flink gives a lookup join against a table that does not change.

use std::collections::HashMap;

use sluice_engine::operator::JoinKind;
use sqlparser::ast::{self, BinaryOperator, Expr, Join, JoinConstraint, JoinOperator};

use super::Planner;
use super::connectors;
use super::query::{Relation, object_name};
use super::scope::{JoinedNames, conjuncts};
use crate::job::{KeyColumns, OperatorFile};
use crate::sql::SqlError;
use crate::sql::create_table::ColumnKind;

impl Planner<'_> {
    /// Adds the lookup join `join` after `relation`; `stream` qualifies the stream's columns.
    pub(super) fn lookup_join(
        &self,
        relation: &mut Relation,
        stream: Option<&str>,
        join: &Join,
    ) -> Result<JoinedNames, SqlError> {
        let ast::TableFactor::Table {
            name,
            alias,
            version: Some(ast::TableVersion::ForSystemTimeAsOf(_)),
            args: None,
            ..
        } = &join.relation
        else {
            return Err(self.error(
                &join.relation,
                "joins through SQL are lookup joins for now: JOIN <table> FOR SYSTEM_TIME AS OF \
                 <time> ON ... (stream joins are not supported in SQL yet)",
            ));
        };
        let (kind, constraint) = match &join.join_operator {
            JoinOperator::Join(on) | JoinOperator::Inner(on) => (JoinKind::Inner, on),
            JoinOperator::Left(on) | JoinOperator::LeftOuter(on) => (JoinKind::Left, on),
            _ => {
                return Err(self.error(&join.relation, "a lookup join is INNER or LEFT [OUTER]"));
            }
        };
        let JoinConstraint::On(on) = constraint else {
            return Err(self.error(
                &join.relation,
                "a lookup join needs ON <stream key> = <table key>",
            ));
        };
        let key = object_name(name);
        let Some(table) = self.tables.get(&key) else {
            return Err(self.error(
                name,
                format!("no table `{key}` to look up (a lookup table is a table, not a view)"),
            ));
        };
        if let Some(column) = table
            .columns
            .iter()
            .find(|c| !matches!(c.kind, ColumnKind::Physical { .. }))
        {
            return Err(self.error_at(column.name.span, "a lookup table has physical columns only"));
        }
        let lookup_name = alias
            .as_ref()
            .map_or_else(|| key.clone(), |alias| alias.name.value.clone());
        let spec = connectors::source(table).map_err(|err| self.option_error(table, err))?;
        let schema = spec
            .build(self.base_dir)
            .map_err(|err| self.error(name, format!("table `{key}`: {err}")))?
            .schema();
        let table_columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        for column in &table.columns {
            if !table_columns.contains(&column.name.value) {
                return Err(self.error_at(
                    column.name.span,
                    format!(
                        "table `{key}` declares column `{}`, which its connector does not \
                         produce; it has {}",
                        column.name.value,
                        table_columns.join(", ")
                    ),
                ));
            }
        }
        let mut stream_keys = Vec::new();
        let mut table_keys = Vec::new();
        for equality in conjuncts(on) {
            let Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } = equality
            else {
                return Err(self.error(
                    equality,
                    "a lookup join's ON is equalities of a stream column and a table column, \
                     joined with AND",
                ));
            };
            let side =
                |expr: &Expr| self.side(expr, stream, &lookup_name, relation, &table_columns);
            let (stream_key, table_key) = match (side(left)?, side(right)?) {
                (Side::Stream(s), Side::Table(t)) | (Side::Table(t), Side::Stream(s)) => (s, t),
                _ => {
                    return Err(self.error(
                        equality,
                        format!(
                            "each equality in ON compares a column of the stream with a column \
                             of `{lookup_name}`"
                        ),
                    ));
                }
            };
            stream_keys.push(stream_key);
            table_keys.push(table_key);
        }
        let mut names = HashMap::new();
        for (stream_key, table_key) in stream_keys.iter().zip(&table_keys) {
            names.insert(table_key.clone(), stream_key.clone());
        }
        let mut output = relation.columns.clone();
        for column in table_columns.iter().filter(|c| !table_keys.contains(c)) {
            let name = if relation.columns.contains(column) {
                format!("{lookup_name}.{column}")
            } else {
                column.clone()
            };
            names.insert(column.clone(), name.clone());
            output.push(name);
        }
        relation.operators.push(OperatorFile::LookupJoin {
            table: spec,
            name: lookup_name.clone(),
            on: KeyColumns::Many(stream_keys),
            table_on: Some(KeyColumns::Many(table_keys)),
            kind,
            reload: None,
        });
        relation.columns = output;
        Ok(JoinedNames {
            qualifier: lookup_name,
            columns: names,
        })
    }

    /// Which side of the join `expr` (a column reference) belongs to.
    fn side(
        &self,
        expr: &Expr,
        stream: Option<&str>,
        table: &str,
        relation: &Relation,
        table_columns: &[String],
    ) -> Result<Side, SqlError> {
        let side = match expr {
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, c] if q.value == table && table_columns.contains(&c.value) => {
                    Some(Side::Table(c.value.clone()))
                }
                [q, c]
                    if Some(q.value.as_str()) == stream && relation.columns.contains(&c.value) =>
                {
                    Some(Side::Stream(c.value.clone()))
                }
                _ => None,
            },
            Expr::Identifier(c) if relation.columns.contains(&c.value) => {
                Some(Side::Stream(c.value.clone()))
            }
            _ => None,
        };
        side.ok_or_else(|| {
            self.error(
                expr,
                format!("expected a column of the stream or `{table}.<column>`, found `{expr}`"),
            )
        })
    }
}

enum Side {
    Stream(String),
    Table(String),
}
