//! Aggregate functions over window contents and the Arrow types they produce.

use arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateFunction {
    /// Rows in the window (no column), or non-null values of a column.
    Count,
    /// Sum of non-null values; null when there are none. Integers sum exactly in 64 bits
    /// (wrapping on overflow), floats in f64.
    Sum,
    /// Smallest non-null value; null when there are none. Floats use IEEE total order with
    /// NaN above +inf and -0.0 below 0.0, so the result never depends on arrival order.
    Min,
    /// Largest non-null value; null when there are none (NaN if any value is NaN).
    Max,
    /// Mean of non-null values as f64; null when there are none.
    Avg,
    /// Number of distinct non-null values: exact for numbers and booleans; strings and bytes
    /// are told apart by their 64-bit xxh3 hashes (two distinct values collide with
    /// probability 2^-64: about 3 in 10^8 for a million distinct values in one window).
    CountDistinct,
}

impl AggregateFunction {
    /// The name used in job files.
    pub fn name(self) -> &'static str {
        match self {
            AggregateFunction::Count => "count",
            AggregateFunction::Sum => "sum",
            AggregateFunction::Min => "min",
            AggregateFunction::Max => "max",
            AggregateFunction::Avg => "avg",
            AggregateFunction::CountDistinct => "count_distinct",
        }
    }
}

/// The numeric domain an aggregate input is computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericKind {
    /// Integer columns, widened to i64.
    Int,
    /// Float columns, widened to f64.
    Float,
}

impl NumericKind {
    /// The domain of an input column type, or `None` if it cannot be aggregated.
    pub fn of(data_type: &DataType) -> Option<NumericKind> {
        use DataType::*;
        match data_type {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
                Some(NumericKind::Int)
            }
            Timestamp(_, _) | Date32 | Date64 => Some(NumericKind::Int),
            Float16 | Float32 | Float64 => Some(NumericKind::Float),
            _ => None,
        }
    }

    /// The Arrow type values are widened to.
    pub fn data_type(self) -> DataType {
        match self {
            NumericKind::Int => DataType::Int64,
            NumericKind::Float => DataType::Float64,
        }
    }
}

/// One aggregate in a window operator: `function(column) AS alias`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateSpec {
    /// The function.
    pub function: AggregateFunction,
    /// The input column; `None` only for `count` (count rows).
    pub column: Option<String>,
    /// The output column name.
    pub alias: String,
}

impl AggregateSpec {
    /// `count(*) AS alias`.
    pub fn count(alias: impl Into<String>) -> Self {
        AggregateSpec {
            function: AggregateFunction::Count,
            column: None,
            alias: alias.into(),
        }
    }

    /// `function(column) AS alias`.
    pub fn new(
        function: AggregateFunction,
        column: impl Into<String>,
        alias: impl Into<String>,
    ) -> Self {
        AggregateSpec {
            function,
            column: Some(column.into()),
            alias: alias.into(),
        }
    }

    /// Resolves the input against `schema`: the input's numeric domain (`None` for `count(*)`).
    /// `key` names the job setting in errors.
    pub fn resolve(&self, schema: &Schema, key: &str) -> Result<Option<NumericKind>> {
        let Some(column) = &self.column else {
            return match self.function {
                AggregateFunction::Count => Ok(None),
                f => Err(Error::config(
                    format!("{key}.column"),
                    format!("`{}` needs a column", f.name()),
                )),
            };
        };
        let field = schema.field_with_name(column).map_err(|_| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::config(
                format!("{key}.column"),
                format!(
                    "unknown column `{column}` (available: {})",
                    names.join(", ")
                ),
            )
        })?;
        match NumericKind::of(field.data_type()) {
            Some(kind) => Ok(Some(kind)),
            // Distinct values of any comparable type: strings and bytes by their hashes,
            // booleans as 0 and 1 (see `aggregate_input::widen`).
            None if self.function == AggregateFunction::CountDistinct
                && counted_by_value(field.data_type()) =>
            {
                Ok(Some(NumericKind::Int))
            }
            None => Err(Error::config(
                format!("{key}.column"),
                format!(
                    "`{}` needs an integer or float column, but `{column}` is {}",
                    self.function.name(),
                    field.data_type()
                ),
            )),
        }
    }

    /// The output field for an input of domain `input`.
    pub fn output_field(&self, input: Option<NumericKind>) -> Field {
        let data_type = match (self.function, input) {
            (AggregateFunction::Count | AggregateFunction::CountDistinct, _) => DataType::Int64,
            (AggregateFunction::Avg, _) => DataType::Float64,
            (_, Some(kind)) => kind.data_type(),
            (_, None) => DataType::Int64,
        };
        let nullable = !matches!(
            self.function,
            AggregateFunction::Count | AggregateFunction::CountDistinct
        );
        Field::new(&self.alias, data_type, nullable)
    }
}

/// Whether `COUNT(DISTINCT)` takes a column of `data_type` that is not a number: strings,
/// bytes and booleans.
pub fn counted_by_value(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView | Boolean
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("amount", DataType::Int32, true),
            Field::new("speed", DataType::Float32, true),
            Field::new("country", DataType::Utf8, true),
        ])
    }

    #[test]
    fn resolves_numeric_domains_and_output_types() {
        let s = schema();
        let sum = AggregateSpec::new(AggregateFunction::Sum, "amount", "total");
        let kind = sum.resolve(&s, "a").expect("int");
        assert_eq!(kind, Some(NumericKind::Int));
        assert_eq!(sum.output_field(kind).data_type(), &DataType::Int64);
        let avg = AggregateSpec::new(AggregateFunction::Avg, "amount", "mean");
        assert_eq!(avg.output_field(kind).data_type(), &DataType::Float64);
        let max = AggregateSpec::new(AggregateFunction::Max, "speed", "top");
        let kind = max.resolve(&s, "a").expect("float");
        assert_eq!(max.output_field(kind).data_type(), &DataType::Float64);
        assert!(!AggregateSpec::count("n").output_field(None).is_nullable());
    }

    #[test]
    fn errors_name_the_setting_and_the_column() {
        let s = schema();
        let err = AggregateSpec::new(AggregateFunction::Sum, "amout", "t")
            .resolve(&s, "operators[1].aggregates[0]")
            .expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("operators[1].aggregates[0].column") && text.contains("amout"),
            "{text}"
        );
        assert!(text.contains("available: amount, speed, country"), "{text}");
        let distinct = AggregateSpec::new(AggregateFunction::CountDistinct, "country", "c");
        assert_eq!(
            distinct.resolve(&s, "k").expect("strings"),
            Some(NumericKind::Int)
        );
        let err = AggregateSpec::new(AggregateFunction::Min, "country", "m")
            .resolve(&s, "k")
            .expect_err("utf8");
        assert!(err.to_string().contains("integer or float"), "{err}");
    }
}
