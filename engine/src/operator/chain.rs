//! Runs operators in sequence: each one's output is the next one's input.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{Emitted, Operator};
use crate::error::Result;

/// An ordered list of operators that behaves as one.
#[derive(Debug)]
pub struct OperatorChain {
    operators: Vec<Box<dyn Operator>>,
    output_schema: SchemaRef,
}

impl OperatorChain {
    /// Chains `operators`; with none, batches pass through with `input_schema`.
    pub fn new(operators: Vec<Box<dyn Operator>>, input_schema: SchemaRef) -> Self {
        let output_schema = operators
            .last()
            .map(|o| o.output_schema())
            .unwrap_or(input_schema);
        OperatorChain {
            operators,
            output_schema,
        }
    }

    /// The schema of what the chain emits.
    pub fn output_schema(&self) -> SchemaRef {
        self.output_schema.clone()
    }

    /// Where each operator that uses a backend runs, in chain order.
    pub fn placements(&self) -> Vec<String> {
        self.operators
            .iter()
            .filter_map(|o| o.placement().map(str::to_string))
            .collect()
    }

    /// Pushes a micro-batch through every operator.
    pub fn process(&mut self, batch: RecordBatch) -> Result<Emitted> {
        self.run(vec![batch], None)
    }

    /// Tells every operator, in order, that event time reached `watermark`; what an operator
    /// emits flows through the operators after it before they see the watermark.
    pub fn on_watermark(&mut self, watermark: i64) -> Result<Emitted> {
        self.run(Vec::new(), Some(watermark))
    }

    fn run(&mut self, input: Vec<RecordBatch>, watermark: Option<i64>) -> Result<Emitted> {
        let mut carry = input;
        let mut late = Vec::new();
        for operator in &mut self.operators {
            let mut next = Emitted::default();
            for batch in carry.drain(..) {
                operator.process(batch, &mut next)?;
            }
            if let Some(w) = watermark {
                operator.on_watermark(w, &mut next)?;
            }
            carry = next.batches;
            late.extend(next.late);
        }
        Ok(Emitted {
            batches: carry,
            late,
        })
    }
}
