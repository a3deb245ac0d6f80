//! Operators: synchronous, runtime-free steps that turn batches and watermarks into batches.
//!
//! The runtime feeds each operator micro-batches with `process` and tells it how far event
//! time has advanced with `on_watermark`. Stateless operators (filter, project) answer at once;
//! the window operator answers on watermarks. Because operators know nothing of threads or
//! channels, they are tested with plain `#[test]`s.

mod aggregate_input;
mod chain;
mod cumulate_window;
mod filter;
mod graph;
mod lookup_join;
mod over_aggregate;
mod project;
mod stream_join;
mod window_aggregate;
mod window_rows;
mod window_top_n;

use std::fmt::Debug;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

pub use chain::OperatorChain;
pub use cumulate_window::CumulateWindowOperator;
pub use filter::FilterOperator;
pub use graph::OperatorGraph;
pub use lookup_join::{JoinKind, LookupJoinOperator, LookupJoinSpec, TableReload};
pub use over_aggregate::{OverAggregate, OverAggregateOperator, OverAggregateSpec};
pub use project::ProjectOperator;
pub use stream_join::{
    JoinInput, JoinSideId, JoinTime, StreamJoinOperator, StreamJoinSpec, join_output_names,
    late_row_schema, late_rows,
};
pub use window_aggregate::{WindowAggregateOperator, WindowAggregateSpec};
pub use window_rows::WindowRowsOperator;
pub use window_top_n::{TopNOrder, WindowTopNOperator, WindowTopNSpec};

use crate::error::{Error, Result};
use crate::state::StateSnapshot;

/// One step of a pipeline.
pub trait Operator: Send + Debug {
    /// A short name for logs (`filter`, `window`).
    fn name(&self) -> &'static str;

    /// The schema of the batches this operator emits.
    fn output_schema(&self) -> SchemaRef;

    /// Consumes a micro-batch; pushes whatever it emits now into `out`.
    fn process(&mut self, batch: RecordBatch, out: &mut Emitted) -> Result<()>;

    /// Event time has reached `watermark` (epoch ms; `i64::MAX` at the end of input).
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Emitted) -> Result<()> {
        Ok(())
    }

    /// Where the operator's math runs, for operators that use a backend.
    fn placement(&self) -> Option<&str> {
        None
    }

    /// Whether the operator keeps state across micro-batches (and so in checkpoints).
    fn keeps_state(&self) -> bool {
        false
    }

    /// The operator's state for a checkpoint, taken between micro-batches (`None`: the
    /// operator keeps no state).
    fn snapshot(&mut self) -> Result<Option<StateSnapshot>> {
        Ok(None)
    }

    /// Loads state that `snapshot` returned in an earlier run into this fresh operator.
    /// Fails with a message saying what differs when the job changed incompatibly.
    fn restore(&mut self, state: &StateSnapshot) -> Result<()> {
        Err(Error::Config {
            key: "checkpoint".into(),
            message: format!(
                "the saved state has `{}` state for the `{}` operator, which keeps none \
                 (were the operators reordered?)",
                state.format,
                self.name()
            ),
        })
    }
}

/// What an operator emits: output batches and, for window operators, late input rows.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Batches for the next operator (or the sink).
    pub batches: Vec<RecordBatch>,
    /// Input rows that arrived after all their windows had fired; they changed nothing.
    pub late: Vec<RecordBatch>,
}

impl Emitted {
    /// Whether nothing was emitted.
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.late.is_empty()
    }

    /// Rows across the output batches.
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Rows across the late batches.
    pub fn late_rows(&self) -> usize {
        self.late.iter().map(RecordBatch::num_rows).sum()
    }
}
