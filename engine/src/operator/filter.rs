//! Keeps the rows for which a predicate is true (null counts as false, as in SQL).

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, SchemaRef};

use super::{Emitted, Operator};
use crate::error::{Error, Result};
use crate::expr::Expr;

/// Filters batches by a boolean expression.
#[derive(Debug)]
pub struct FilterOperator {
    predicate: Expr,
    schema: SchemaRef,
}

impl FilterOperator {
    /// Type-checks `predicate` against `schema`; `setting` names the job key in errors.
    pub fn try_new(predicate: Expr, schema: SchemaRef, setting: &str) -> Result<Self> {
        let data_type = predicate
            .data_type(&schema)
            .map_err(|e| Error::config(setting, e.to_string()))?;
        if data_type != DataType::Boolean {
            return Err(Error::config(
                setting,
                format!("predicate `{predicate}` is {data_type}, not boolean"),
            ));
        }
        Ok(FilterOperator { predicate, schema })
    }
}

impl Operator for FilterOperator {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()> {
        let mask = self.predicate.evaluate(&batch)?;
        let mask = mask
            .as_boolean_opt()
            .ok_or_else(|| Error::Internal("predicate is not boolean".into()))?;
        if mask.null_count() == 0 && mask.true_count() == batch.num_rows() {
            out.batches.push(batch);
            return Ok(());
        }
        let kept = filter_record_batch(&batch, mask).map_err(Error::arrow("filtering"))?;
        if kept.num_rows() > 0 {
            out.batches.push(kept);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::Schema;
    use std::sync::Arc;

    #[test]
    fn keeps_true_rows_and_drops_null_and_false() {
        let batch = RecordBatch::try_from_iter(vec![(
            "amount",
            Arc::new(Int64Array::from(vec![Some(5), None, Some(20), Some(11)])) as ArrayRef,
        )])
        .expect("batch");
        let predicate = Expr::parse("amount > 10").expect("parse");
        let mut op = FilterOperator::try_new(predicate, batch.schema(), "operators[0].predicate")
            .expect("op");
        let mut out = Emitted::default();
        op.process(batch, &mut out).expect("process");
        let kept = out.batches[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(kept.values().to_vec(), vec![20, 11]);
    }

    #[test]
    fn non_boolean_predicate_is_a_config_error() {
        let schema = Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
            "a",
            DataType::Int64,
            true,
        )]));
        let err = FilterOperator::try_new(
            Expr::parse("a + 1").expect("parse"),
            schema,
            "operators[2].predicate",
        )
        .expect_err("not boolean");
        assert!(
            err.to_string().starts_with("operators[2].predicate:"),
            "{err}"
        );
    }
}
