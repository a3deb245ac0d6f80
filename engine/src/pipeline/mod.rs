//! The Rust API for a job: input streams (a source and event time each), operators, an
//! optional join of two streams, sinks; validated up front.
//!
//! [`PipelineBuilder::build`] checks every operator against the schema flowing into it, so a
//! bad job fails before any data moves, with the failing setting named (`operators[1].window`).
//! How the operators are assembled from the specs: `build.rs`.

mod build;

use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;

use crate::backend::{Backend, CpuBackend};
use crate::batching::BatchingSpec;
use crate::checkpoint::CheckpointSpec;
use crate::error::{Error, Result};
use crate::event_time::EventTimeSpec;
use crate::expr::Expr;
use crate::metrics::{Metrics, RunSummary};
use crate::operator::{
    LookupJoinSpec, OverAggregateSpec, StreamJoinSpec, WindowAggregateSpec, WindowTopNSpec,
    late_row_schema,
};
use crate::plan::{JobPlan, PlannedInput};
use crate::runtime::{self, RunOptions};
use crate::sink::Sink;
use crate::source::Source;
use crate::window::WindowSpec;

/// One step of a job, before validation.
#[derive(Debug, Clone)]
pub enum OperatorSpec {
    /// Keep rows where the predicate is true.
    Filter(Expr),
    /// Replace the columns with named expressions.
    Project(Vec<(String, Expr)>),
    /// Windowed aggregation.
    Window(WindowAggregateSpec),
    /// Per-row aggregates over trailing frames (OVER).
    Over(OverAggregateSpec),
    /// Enrichment from a bounded table.
    LookupJoin(LookupJoinSpec),
    /// The first rows of each closed window by an order (after a window aggregation, or
    /// over raw rows that it puts into windows itself).
    WindowTopN(WindowTopNSpec),
    /// Each row once per window that holds it, with `window_start` and `window_end`, at once
    /// (a window function's rows on their own).
    AssignWindows(WindowSpec),
}

impl OperatorSpec {
    /// Whether the operator puts rows into windows or frames by their event time (so it has
    /// late rows, and a job has one of them).
    pub fn windows_rows(&self) -> bool {
        match self {
            OperatorSpec::Window(_) | OperatorSpec::Over(_) | OperatorSpec::AssignWindows(_) => {
                true
            }
            OperatorSpec::WindowTopN(top) => top.window.is_some(),
            OperatorSpec::Filter(_) | OperatorSpec::Project(_) | OperatorSpec::LookupJoin(_) => {
                false
            }
        }
    }
}

/// The schemas of a job, known before it runs.
#[derive(Debug, Clone)]
pub struct PipelineSchemas {
    /// Source rows after event-time normalisation (the first stream's, in a join).
    pub source: SchemaRef,
    /// Every input stream's name and normalised source rows.
    pub inputs: Vec<(String, SchemaRef)>,
    /// What reaches the output sink.
    pub output: SchemaRef,
    /// Late rows (the window operator's input; with a join, the late-row schema of
    /// [`late_row_schema`]), if the job has a window or a join.
    pub late: Option<SchemaRef>,
}

/// One named input of a job: a source, its event time, and (in a join) the stateless
/// operators that run on it before the join.
#[derive(Debug)]
pub struct InputStream {
    name: String,
    source: Box<dyn Source>,
    event_time: EventTimeSpec,
    operators: Vec<OperatorSpec>,
}

impl InputStream {
    /// The stream `name` read from `source`, with event time as `event_time` describes.
    pub fn new(
        name: impl Into<String>,
        source: Box<dyn Source>,
        event_time: EventTimeSpec,
    ) -> Self {
        InputStream {
            name: name.into(),
            source,
            event_time,
            operators: Vec::new(),
        }
    }

    /// Keeps rows where `predicate` is true (before the join).
    pub fn filter(self, predicate: Expr) -> Self {
        self.operator(OperatorSpec::Filter(predicate))
    }

    /// Replaces the columns with `columns` (before the join).
    pub fn project(self, columns: Vec<(String, Expr)>) -> Self {
        self.operator(OperatorSpec::Project(columns))
    }

    /// Enriches each row from a bounded table (before the join).
    pub fn lookup_join(self, spec: LookupJoinSpec) -> Self {
        self.operator(OperatorSpec::LookupJoin(spec))
    }

    /// Appends an operator that runs before the join (filter, project or lookup join).
    pub fn operator(mut self, spec: OperatorSpec) -> Self {
        self.operators.push(spec);
        self
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Assembles a [`Pipeline`].
#[derive(Debug)]
pub struct PipelineBuilder {
    inputs: Vec<InputStream>,
    join: Option<StreamJoinSpec>,
    batching: BatchingSpec,
    /// The job's operators (one stream), or the operators after the join (two).
    operators: Vec<OperatorSpec>,
    backend: Arc<dyn Backend>,
    sink: Option<Box<dyn Sink>>,
    late_sink: Option<Box<dyn Sink>>,
    dead_letter_sink: Option<Box<dyn Sink>>,
    strict: bool,
    channel_capacity: usize,
    name: String,
    checkpoint: Option<CheckpointSpec>,
}

/// A validated job, ready to run.
/// A validated job and how to run it: [`Pipeline::builder`] assembles one, [`Pipeline::run`]
/// hands its [`JobPlan`] to the runtime.
#[derive(Debug)]
pub struct Pipeline {
    plan: JobPlan,
}

impl Pipeline {
    /// Starts a job reading `source` with event time as described by `event_time`.
    pub fn builder(source: Box<dyn Source>, event_time: EventTimeSpec) -> PipelineBuilder {
        let name = source.name().to_string();
        Self::with_inputs(vec![InputStream::new(name, source, event_time)], None)
    }

    /// Starts a job joining two streams as `join` says; its `left` and `right` name the
    /// streams. Operators added to the builder run on the joined rows, whose event time is
    /// the column named like the left stream's event-time column.
    pub fn join(left: InputStream, right: InputStream, join: StreamJoinSpec) -> PipelineBuilder {
        Self::with_inputs(vec![left, right], Some(join))
    }

    fn with_inputs(inputs: Vec<InputStream>, join: Option<StreamJoinSpec>) -> PipelineBuilder {
        PipelineBuilder {
            inputs,
            join,
            batching: BatchingSpec::default(),
            operators: Vec::new(),
            backend: Arc::new(CpuBackend::new()),
            sink: None,
            late_sink: None,
            dead_letter_sink: None,
            strict: false,
            channel_capacity: 4,
            name: "job".into(),
            checkpoint: None,
        }
    }

    /// What the runtime runs: where each operator runs, the output schema.
    pub fn plan(&self) -> &JobPlan {
        &self.plan
    }

    /// The name of the backend running the window math.
    pub fn backend_name(&self) -> &'static str {
        self.plan.backend_name()
    }

    /// Where window math runs (see [`JobPlan::backend_label`]).
    pub fn backend_label(&self) -> String {
        self.plan.backend_label()
    }

    /// Where each operator that uses a backend runs (see [`JobPlan::placements`]).
    pub fn placements(&self) -> Vec<String> {
        self.plan.placements()
    }

    /// The schema of the output.
    pub fn output_schema(&self) -> SchemaRef {
        self.plan.output_schema()
    }

    /// Runs the job on the current tokio runtime until its input ends or it is cancelled.
    pub async fn run(self, options: RunOptions) -> Result<RunSummary> {
        runtime::run(self.plan, options).await
    }

    /// Runs the job on a runtime of its own; for callers that are not async.
    pub fn run_blocking(self) -> Result<RunSummary> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the tokio runtime: {e}")))?;
        rt.block_on(self.run(RunOptions::new(Arc::new(Metrics::default()))))
    }
}

impl PipelineBuilder {
    /// Keeps rows where `predicate` is true.
    pub fn filter(self, predicate: Expr) -> Self {
        self.operator(OperatorSpec::Filter(predicate))
    }

    /// Replaces the columns with `columns` (name, expression).
    pub fn project(self, columns: Vec<(String, Expr)>) -> Self {
        self.operator(OperatorSpec::Project(columns))
    }

    /// Aggregates over windows.
    pub fn window(self, spec: WindowAggregateSpec) -> Self {
        self.operator(OperatorSpec::Window(spec))
    }

    /// Enriches each row from a bounded table.
    pub fn lookup_join(self, spec: LookupJoinSpec) -> Self {
        self.operator(OperatorSpec::LookupJoin(spec))
    }

    /// Appends per-row aggregates over trailing frames (OVER).
    pub fn over(self, spec: OverAggregateSpec) -> Self {
        self.operator(OperatorSpec::Over(spec))
    }

    /// Appends any operator.
    pub fn operator(mut self, spec: OperatorSpec) -> Self {
        self.operators.push(spec);
        self
    }

    /// Where window math runs (default: [`CpuBackend`]).
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = backend;
        self
    }

    /// How micro-batches are cut.
    pub fn batching(mut self, batching: BatchingSpec) -> Self {
        self.batching = batching;
        self
    }

    /// Where output goes (required).
    pub fn sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Where late rows go (optional: they are always counted).
    pub fn late_sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.late_sink = Some(sink);
        self
    }

    /// Where malformed records go, as batches of [`DeadLetter::schema`](crate::source::DeadLetter::schema).
    pub fn dead_letter_sink(mut self, sink: Box<dyn Sink>) -> Self {
        self.dead_letter_sink = Some(sink);
        self
    }

    /// Fails the job at the first malformed record instead of dead-lettering it.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// The job's name, recorded in its checkpoints.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Checkpoints the job (and resumes it from its checkpoints) as `spec` says. Sinks take
    /// part through their two-phase commit, so transactional sinks become exactly-once.
    pub fn checkpoint(mut self, spec: CheckpointSpec) -> Self {
        self.checkpoint = Some(spec);
        self
    }

    /// Batches buffered between each stage (sources → operators → each sink); bounds memory.
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.channel_capacity = capacity.max(1);
        self
    }

    /// Validates everything and returns the runnable job.
    pub fn build(self) -> Result<Pipeline> {
        if self.batching.max_rows == 0 {
            return Err(Error::config("batching.max_rows", "must be at least 1"));
        }
        if self.batching.max_delay > Duration::from_secs(3600) {
            return Err(Error::config("batching.max_delay", "must be at most 1h"));
        }
        if let Some(spec) = &self.checkpoint {
            spec.validate()?;
        }
        let prepared = self.prepared_schemas()?;
        let (graph, _) = self.graph(&prepared, &self.backend)?;
        let sink = self
            .sink
            .ok_or_else(|| Error::config("sink", "a job needs a sink"))?;
        let inputs = self
            .inputs
            .into_iter()
            .zip(prepared)
            .map(|(input, (schema, projection))| PlannedInput {
                name: input.name,
                source: input.source,
                event_time: input.event_time,
                schema,
                projection,
            })
            .collect();
        let plan = JobPlan {
            inputs,
            batching: self.batching,
            graph,
            backend_name: self.backend.name(),
            sink,
            late_sink: self.late_sink,
            dead_letter_sink: self.dead_letter_sink,
            strict: self.strict,
            channel_capacity: self.channel_capacity,
            name: self.name,
            checkpoint: self.checkpoint,
        };
        Ok(Pipeline { plan })
    }

    /// The schemas of the job, validating the operators (no data moves).
    pub fn schemas(&self) -> Result<PipelineSchemas> {
        // Validation only: the global-pool backend costs nothing to create.
        let cpu: Arc<dyn Backend> = Arc::new(CpuBackend::new());
        let prepared = self.prepared_schemas()?;
        let (graph, late) = self.graph(&prepared, &cpu)?;
        let inputs: Vec<(String, SchemaRef)> = self
            .inputs
            .iter()
            .zip(&prepared)
            .map(|(i, (schema, _))| (i.name.clone(), schema.clone()))
            .collect();
        Ok(PipelineSchemas {
            source: inputs[0].1.clone(),
            inputs,
            output: graph.output_schema(),
            late: if self.join.is_some() {
                Some(late_row_schema())
            } else {
                late
            },
        })
    }
}
