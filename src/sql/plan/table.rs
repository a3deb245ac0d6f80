//! A table read as a source: its declared columns checked against what the connector
//! produces, and the projection to them (computed columns included).

use arrow::datatypes::DataType;
use sluice_engine::expr::Expr as IrExpr;
use sqlparser::ast::{self, Spanned};

use super::Planner;
use super::connectors;
use super::query::{Relation, object_name};
use crate::job::{OperatorFile, ProjectColumn};
use crate::sql::SqlError;
use crate::sql::create_table::{ColumnKind, CreateTable};

impl Planner<'_> {
    /// A table read as a source: its declared columns checked against what the connector
    /// produces, and a projection to them (computed columns included) when they differ.
    pub(super) fn table_relation(
        &self,
        key: &str,
        name: &ast::ObjectName,
    ) -> Result<Relation, SqlError> {
        let table = self.tables[key];
        let spec = connectors::source(table).map_err(|err| self.option_error(table, err))?;
        // The schema only: planning a table reaches no Kafka broker when it declares its
        // columns (the job contacts it when it runs).
        let schema = spec
            .schema(self.base_dir)
            .map_err(|err| self.error(name, format!("table `{key}`: {err}")))?;
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
                ColumnKind::Metadata { data_type, key, .. } => {
                    // The connector names a property `kafka_<property>`; the table its own way.
                    let key = key.as_deref().unwrap_or(&name);
                    let produced = super::kafka::metadata_column(key)
                        .map(|property| property.name())
                        .filter(|produced| schema.field_with_name(produced).is_ok());
                    let Some(produced) = produced else {
                        return Err(self.error_at(
                            column.name.span,
                            "METADATA columns are not supported by this connector",
                        ));
                    };
                    if let Ok(field) = schema.field_with_name(produced)
                        && !same_kind(data_type, field.data_type())
                    {
                        return Err(self.error_at(column.name.span, format!(
                            "column `{name}` is declared {data_type} but the metadata '{key}' is {}",
                            field.data_type()
                        )));
                    }
                    identity = false;
                    items.push((name.clone(), IrExpr::column(produced).to_string()));
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
            join: None,
            table: key.to_string(),
            operators,
            columns,
            event_time: Some(watermark.column.value.clone()),
            windowed: false,
        })
    }

    pub(super) fn option_error(
        &self,
        table: &CreateTable,
        err: connectors::OptionError,
    ) -> SqlError {
        match err.at {
            Some(at) => SqlError::at(self.text, at, err.message),
            None => self.error(
                &table.name,
                format!("table `{}`: {}", object_name(&table.name), err.message),
            ),
        }
    }
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
