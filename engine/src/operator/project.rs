//! Computes a new set of columns from expressions (`SELECT a, b * 2 AS c`).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{Field, Schema, SchemaRef};

use super::{Emitted, Operator};
use crate::error::{Error, Result};
use crate::expr::Expr;

/// Replaces each batch by the named expressions evaluated over it.
#[derive(Debug)]
pub struct ProjectOperator {
    columns: Vec<(String, Expr)>,
    schema: SchemaRef,
}

impl ProjectOperator {
    /// Type-checks every expression against `input`; `setting` names the job key in errors.
    pub fn try_new(columns: Vec<(String, Expr)>, input: &Schema, setting: &str) -> Result<Self> {
        if columns.is_empty() {
            return Err(Error::config(
                setting,
                "a projection needs at least one column",
            ));
        }
        let mut fields = Vec::with_capacity(columns.len());
        for (i, (name, expr)) in columns.iter().enumerate() {
            if fields.iter().any(|f: &Field| f.name() == name) {
                return Err(Error::config(
                    format!("{setting}[{i}]"),
                    format!("column `{name}` appears twice"),
                ));
            }
            let data_type = expr
                .data_type(input)
                .map_err(|e| Error::config(format!("{setting}[{i}]"), e.to_string()))?;
            // Keep a plain column's nullability; computed columns may be null.
            let nullable = match expr {
                Expr::Column(c) => input
                    .field_with_name(c)
                    .map(|f| f.is_nullable())
                    .unwrap_or(true),
                _ => true,
            };
            fields.push(Field::new(name, data_type, nullable));
        }
        Ok(ProjectOperator {
            columns,
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

impl Operator for ProjectOperator {
    fn name(&self) -> &'static str {
        "project"
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()> {
        let arrays = self
            .columns
            .iter()
            .map(|(_, expr)| expr.evaluate(&batch).map_err(Error::from))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let projected = RecordBatch::try_new(self.schema.clone(), arrays)
            .map_err(Error::arrow("projecting"))?;
        out.batches.push(projected);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Float64Array, Int64Array};
    use arrow::datatypes::Float64Type;

    #[test]
    fn computes_named_columns() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "cents",
                Arc::new(Int64Array::from(vec![150, 2_000])) as ArrayRef,
            ),
            (
                "fx",
                Arc::new(Float64Array::from(vec![1.0, 0.5])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let columns = vec![
            ("cents".to_string(), Expr::parse("cents").expect("parse")),
            (
                "eur".to_string(),
                Expr::parse("cents / 100.0 * fx").expect("parse"),
            ),
        ];
        let mut op =
            ProjectOperator::try_new(columns, &batch.schema(), "operators[0].columns").expect("op");
        let mut out = Emitted::default();
        op.process(batch, &mut out).expect("process");
        let eur = out.batches[0].column(1).as_primitive::<Float64Type>();
        assert_eq!(eur.values().to_vec(), vec![1.5, 10.0]);
        assert_eq!(op.output_schema().field(0).name(), "cents");
    }

    #[test]
    fn duplicate_names_are_refused_with_the_index() {
        let schema = Schema::new(vec![Field::new(
            "a",
            arrow::datatypes::DataType::Int64,
            true,
        )]);
        let columns = vec![
            ("a".to_string(), Expr::parse("a").expect("p")),
            ("a".to_string(), Expr::parse("a + 1").expect("p")),
        ];
        let err =
            ProjectOperator::try_new(columns, &schema, "operators[1].columns").expect_err("dup");
        assert_eq!(
            err.to_string(),
            "operators[1].columns[1]: column `a` appears twice"
        );
    }
}
