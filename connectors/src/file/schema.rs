//! Decides a file source's schema: the file's columns, with declared types laid over them.

use std::collections::HashSet;

use arrow::datatypes::{DataType, Field, Schema};
use sluice_engine::{Error, Result};

use crate::spec::{ColumnSpec, timestamp_type};

/// Where declared columns go in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// The file's order; every declared column must be in the file (CSV, Parquet).
    File,
    /// Declared columns first, in declared order, then the file's others; a declared column
    /// need not appear in the file (JSON lines, where keys may be missing).
    DeclaredFirst,
}

/// Maps inferred text types onto sluice's: integers to `Int64`, floats to `Float64`, any
/// date-time to `Timestamp(ms, UTC)`, an all-empty column to `Utf8`.
pub fn normalise(schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let data_type = match f.data_type() {
                DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                    DataType::Int64
                }
                DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => DataType::Int64,
                DataType::Float16 | DataType::Float32 | DataType::Float64 => DataType::Float64,
                DataType::Timestamp(_, _) | DataType::Date64 => timestamp_type(),
                DataType::Null => DataType::Utf8,
                other => other.clone(),
            };
            Field::new(f.name(), data_type, true)
        })
        .collect();
    Schema::new(fields)
}

/// The schema of a source whose first file (or other `origin`: a Kafka message schema) has
/// `found` columns, with `declared` types on top.
pub fn with_declared(
    found: &Schema,
    declared: &[ColumnSpec],
    order: Order,
    origin: impl std::fmt::Display,
) -> Result<Schema> {
    let mut seen = HashSet::new();
    for column in declared {
        if !seen.insert(column.name.as_str()) {
            return Err(Error::config(
                "source.columns",
                format!("column `{}` is declared twice", column.name),
            ));
        }
    }
    let declared_type = |name: &str| {
        declared
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.column_type.data_type())
    };
    let mut fields = Vec::with_capacity(found.fields().len() + declared.len());
    if order == Order::DeclaredFirst {
        for column in declared {
            let nullable = found
                .field_with_name(&column.name)
                .map_or(true, |f| f.is_nullable());
            fields.push(Field::new(
                &column.name,
                column.column_type.data_type(),
                nullable,
            ));
        }
    } else if let Some(missing) = declared
        .iter()
        .find(|c| found.field_with_name(&c.name).is_err())
    {
        let message = format!("declared in source.columns, but {origin} has no such column");
        return Err(Error::schema(&missing.name, message));
    }
    for field in found.fields() {
        match (declared_type(field.name()), order) {
            (Some(_), Order::DeclaredFirst) => {}
            (Some(data_type), Order::File) => {
                fields.push(Field::new(field.name(), data_type, field.is_nullable()))
            }
            (None, _) => fields.push(field.as_ref().clone()),
        }
    }
    Ok(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ColumnType;
    use arrow::datatypes::TimeUnit;
    use std::path::Path;

    fn found() -> Schema {
        Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
            Field::new("b", DataType::Null, true),
        ])
    }

    #[test]
    fn inferred_types_become_sluice_types_and_declared_ones_win() {
        let normal = normalise(&found());
        let declared = [ColumnSpec::new("a", ColumnType::Float64)];
        let schema = with_declared(
            &normal,
            &declared,
            Order::File,
            Path::new("x.csv").display(),
        )
        .expect("schema");
        let types: Vec<_> = schema
            .fields()
            .iter()
            .map(|f| (f.name().as_str(), f.data_type().clone()))
            .collect();
        assert_eq!(
            types,
            vec![
                ("a", DataType::Float64),
                ("ts", timestamp_type()),
                ("b", DataType::Utf8)
            ]
        );
    }

    #[test]
    fn declared_first_puts_declared_columns_ahead_even_when_absent() {
        let declared = [
            ColumnSpec::new("z", ColumnType::Bool),
            ColumnSpec::new("b", ColumnType::String),
        ];
        let schema = with_declared(
            &found(),
            &declared,
            Order::DeclaredFirst,
            Path::new("x.jsonl").display(),
        )
        .expect("schema");
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["z", "b", "a", "ts"]);
    }

    #[test]
    fn a_declared_column_missing_from_a_csv_is_named() {
        let declared = [ColumnSpec::new("zz", ColumnType::Int64)];
        let err = with_declared(
            &found(),
            &declared,
            Order::File,
            Path::new("in.csv").display(),
        )
        .expect_err("missing");
        assert_eq!(
            err.to_string(),
            "column `zz`: declared in source.columns, but in.csv has no such column"
        );
        let twice = [
            ColumnSpec::new("a", ColumnType::Int64),
            ColumnSpec::new("a", ColumnType::Int32),
        ];
        let err = with_declared(&found(), &twice, Order::File, Path::new("in.csv").display())
            .expect_err("twice");
        assert_eq!(
            err.to_string(),
            "source.columns: column `a` is declared twice"
        );
    }
}
