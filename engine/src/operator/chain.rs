//! Runs operators in sequence: each one's output is the next one's input.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{Emitted, Operator};
use crate::error::{Error, Result};
use crate::state::StateSnapshot;

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

    /// Pushes `batches` through every operator and then, if given, the watermark: each
    /// operator sees the batches before the watermark, and what it emits for either flows on.
    pub fn feed(&mut self, batches: Vec<RecordBatch>, watermark: Option<i64>) -> Result<Emitted> {
        self.run(batches, watermark)
    }

    /// Operators in the chain.
    pub fn len(&self) -> usize {
        self.operators.len()
    }

    /// Whether the chain has no operators (batches pass through).
    pub fn is_empty(&self) -> bool {
        self.operators.is_empty()
    }

    /// Whether any operator keeps state across micro-batches.
    pub fn keeps_state(&self) -> bool {
        self.operators.iter().any(|o| o.keeps_state())
    }

    /// Every stateful operator's state, with its position in the chain.
    pub fn snapshot(&mut self) -> Result<Vec<(usize, StateSnapshot)>> {
        let mut states = Vec::new();
        for (i, operator) in self.operators.iter_mut().enumerate() {
            if let Some(state) = operator.snapshot()? {
                states.push((i, state));
            }
        }
        Ok(states)
    }

    /// Loads states [`OperatorChain::snapshot`] returned into this fresh chain. Every stateful
    /// operator must get its state (and no other operator any), or the job's shape changed.
    pub fn restore(&mut self, states: &[(usize, StateSnapshot)]) -> Result<()> {
        for (i, operator) in self.operators.iter_mut().enumerate() {
            match states.iter().find(|(at, _)| *at == i) {
                Some((_, state)) => operator.restore(state).map_err(|e| in_operator(e, i))?,
                None if operator.keeps_state() => {
                    return Err(Error::config(
                        format!("operators[{i}]"),
                        format!(
                            "the `{}` operator keeps state but the checkpoint has none for it \
                             (were operators added or reordered?)",
                            operator.name()
                        ),
                    ));
                }
                None => {}
            }
        }
        if let Some((i, _)) = states.iter().find(|(i, _)| *i >= self.operators.len()) {
            return Err(Error::config(
                "operators",
                format!("the checkpoint has state for operators[{i}], which this job lacks"),
            ));
        }
        Ok(())
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

/// Names the operator in a restore error about the job's settings.
fn in_operator(error: Error, i: usize) -> Error {
    match error {
        Error::Config { key, message } if key == "checkpoint" => Error::Config {
            key: format!("operators[{i}]"),
            message,
        },
        other => other,
    }
}
