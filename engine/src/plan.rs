//! The job as the runtime runs it: prepared inputs, the operator graph, sinks and settings.
//!
//! Both front ends, job files and SQL, reach it through [`crate::pipeline::PipelineBuilder`],
//! which validates every operator against the schema flowing into it; the runtime
//! ([`crate::runtime`]) takes a [`JobPlan`] and knows nothing of how it was assembled, so the
//! two layers depend one way only (the builder on the runtime, to run what it built).

use arrow::datatypes::SchemaRef;

use crate::batching::BatchingSpec;
use crate::checkpoint::CheckpointSpec;
use crate::event_time::EventTimeSpec;
use crate::operator::OperatorGraph;
use crate::sink::Sink;
use crate::source::Source;

/// A validated job, ready to run.
#[derive(Debug)]
pub struct JobPlan {
    pub(crate) inputs: Vec<PlannedInput>,
    pub(crate) batching: BatchingSpec,
    pub(crate) graph: OperatorGraph,
    pub(crate) backend_name: &'static str,
    pub(crate) sink: Box<dyn Sink>,
    pub(crate) late_sink: Option<Box<dyn Sink>>,
    pub(crate) dead_letter_sink: Option<Box<dyn Sink>>,
    pub(crate) strict: bool,
    pub(crate) channel_capacity: usize,
    pub(crate) name: String,
    pub(crate) checkpoint: Option<CheckpointSpec>,
}

/// An input stream ready to run: its source and how its batches are prepared.
#[derive(Debug)]
pub(crate) struct PlannedInput {
    pub(crate) name: String,
    pub(crate) source: Box<dyn Source>,
    pub(crate) event_time: EventTimeSpec,
    /// Rows after projection and event-time normalisation.
    pub(crate) schema: SchemaRef,
    pub(crate) projection: Option<Vec<usize>>,
}

impl JobPlan {
    /// The name of the backend running the window math.
    pub fn backend_name(&self) -> &'static str {
        self.backend_name
    }

    /// Where window math runs: the backend, its adapter, and any operator it hands back to
    /// the CPU (with the reason). Shown in the log and the run summary.
    pub fn backend_label(&self) -> String {
        let mut placements = self.graph.placements();
        placements.dedup();
        match placements.len() {
            0 => self.backend_name.to_string(),
            1 => placements.remove(0),
            _ => placements.join("; "),
        }
    }

    /// Where each operator that uses a backend runs, in the job's order: each input
    /// stream's operators, the join, then the operators after it.
    pub fn placements(&self) -> Vec<String> {
        self.graph.placements()
    }

    /// The schema of the output.
    pub fn output_schema(&self) -> SchemaRef {
        self.graph.output_schema()
    }
}
