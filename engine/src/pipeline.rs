//! The Rust API for a job: a source, event time, an operator chain, sinks; validated up front.
//!
//! [`PipelineBuilder::build`] checks every operator against the schema flowing into it, so a
//! bad job fails before any data moves, with the failing setting named (`operators[1].window`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::{Schema, SchemaRef};

use crate::backend::{Backend, CpuBackend};
use crate::batching::BatchingSpec;
use crate::checkpoint::CheckpointSpec;
use crate::error::{Error, Result};
use crate::event_time::EventTimeSpec;
use crate::expr::Expr;
use crate::metrics::{Metrics, RunSummary};
use crate::operator::{
    FilterOperator, LookupJoinOperator, LookupJoinSpec, Operator, OperatorChain, ProjectOperator,
    WindowAggregateOperator, WindowAggregateSpec,
};
use crate::runtime::{self, RunOptions};
use crate::sink::Sink;
use crate::source::Source;

/// One step of a job, before validation.
#[derive(Debug, Clone)]
pub enum OperatorSpec {
    /// Keep rows where the predicate is true.
    Filter(Expr),
    /// Replace the columns with named expressions.
    Project(Vec<(String, Expr)>),
    /// Windowed aggregation.
    Window(WindowAggregateSpec),
    /// Enrichment from a bounded table.
    LookupJoin(LookupJoinSpec),
}

/// The schemas of a job, known before it runs.
#[derive(Debug, Clone)]
pub struct PipelineSchemas {
    /// Source rows after event-time normalisation.
    pub source: SchemaRef,
    /// What reaches the output sink.
    pub output: SchemaRef,
    /// Late rows (the window operator's input), if the job has a window.
    pub late: Option<SchemaRef>,
}

/// Assembles a [`Pipeline`].
#[derive(Debug)]
pub struct PipelineBuilder {
    source: Box<dyn Source>,
    event_time: EventTimeSpec,
    batching: BatchingSpec,
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
#[derive(Debug)]
pub struct Pipeline {
    pub(crate) source: Box<dyn Source>,
    pub(crate) event_time: EventTimeSpec,
    pub(crate) batching: BatchingSpec,
    pub(crate) source_schema: SchemaRef,
    pub(crate) projection: Option<Vec<usize>>,
    pub(crate) chain: OperatorChain,
    pub(crate) backend_name: &'static str,
    pub(crate) sink: Box<dyn Sink>,
    pub(crate) late_sink: Option<Box<dyn Sink>>,
    pub(crate) dead_letter_sink: Option<Box<dyn Sink>>,
    pub(crate) strict: bool,
    pub(crate) channel_capacity: usize,
    pub(crate) name: String,
    pub(crate) checkpoint: Option<CheckpointSpec>,
}

impl Pipeline {
    /// Starts a job reading `source` with event time as described by `event_time`.
    pub fn builder(source: Box<dyn Source>, event_time: EventTimeSpec) -> PipelineBuilder {
        PipelineBuilder {
            source,
            event_time,
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

    /// The name of the backend running the window math.
    pub fn backend_name(&self) -> &'static str {
        self.backend_name
    }

    /// Where window math runs: the backend, its adapter, and any operator it hands back to
    /// the CPU (with the reason). Shown in the log and the run summary.
    pub fn backend_label(&self) -> String {
        let mut placements = self.chain.placements();
        placements.dedup();
        match placements.len() {
            0 => self.backend_name.to_string(),
            1 => placements.remove(0),
            _ => placements.join("; "),
        }
    }

    /// The schema of the output.
    pub fn output_schema(&self) -> SchemaRef {
        self.chain.output_schema()
    }

    /// Runs the job on the current tokio runtime until its input ends or it is cancelled.
    pub async fn run(self, options: RunOptions) -> Result<RunSummary> {
        runtime::run(self, options).await
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

    /// The schemas of the job, validating the operators (no data moves).
    pub fn schemas(&self) -> Result<PipelineSchemas> {
        // Validation only: the global-pool backend costs nothing to create.
        let cpu: Arc<dyn Backend> = Arc::new(CpuBackend::new());
        let (chain, late) = self.chain(&cpu)?;
        Ok(PipelineSchemas {
            source: self.source_schema()?.0,
            output: chain.output_schema(),
            late,
        })
    }

    /// The source columns the job reads (ascending indices), or `None` when it needs them all:
    /// operators before the first projection or window read only what their expressions name,
    /// but rows that pass through to a sink unchanged, or late rows, keep every column.
    fn projection(&self, schema: &Schema) -> Option<Vec<usize>> {
        if self.late_sink.is_some() {
            return None;
        }
        let mut needed: BTreeSet<String> = BTreeSet::from([self.event_time.column.clone()]);
        let mut closed = false;
        for spec in &self.operators {
            match spec {
                OperatorSpec::Filter(predicate) => needed.extend(predicate.columns()),
                OperatorSpec::Project(columns) => {
                    needed.extend(columns.iter().flat_map(|(_, e)| e.columns()));
                    closed = true;
                }
                OperatorSpec::Window(window) => {
                    needed.extend(window.keys.iter().cloned());
                    needed.extend(window.aggregates.iter().filter_map(|a| a.column.clone()));
                    closed = true;
                }
                // Every stream column passes through a join; later operators name the
                // table's columns too, which the source lacks, so nothing is projected then.
                OperatorSpec::LookupJoin(join) => needed.extend(join.on.iter().cloned()),
            }
            if closed {
                break;
            }
        }
        if !closed {
            return None;
        }
        let indices: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| needed.contains(schema.field(i).name()))
            .collect();
        // Unknown names stay unprojected so that validation reports them against the full schema.
        (indices.len() == needed.len() && indices.len() < schema.fields().len()).then_some(indices)
    }

    /// The normalised source schema and, if the job reads only some columns, their indices.
    fn source_schema(&self) -> Result<(SchemaRef, Option<Vec<usize>>)> {
        let full = self.event_time.normalized_schema(&self.source.schema())?;
        match self.projection(&full) {
            Some(indices) => {
                let projected = full
                    .project(&indices)
                    .map_err(Error::arrow("projecting the source schema"))?;
                Ok((Arc::new(projected), Some(indices)))
            }
            None => Ok((full, None)),
        }
    }

    fn chain(&self, backend: &Arc<dyn Backend>) -> Result<(OperatorChain, Option<SchemaRef>)> {
        let (source, _) = self.source_schema()?;
        let mut schema = source.clone();
        let mut late = None;
        let mut operators: Vec<Box<dyn Operator>> = Vec::with_capacity(self.operators.len());
        for (i, spec) in self.operators.iter().enumerate() {
            let setting = format!("operators[{i}]");
            let operator: Box<dyn Operator> = match spec {
                OperatorSpec::Filter(predicate) => Box::new(FilterOperator::try_new(
                    predicate.clone(),
                    schema.clone(),
                    &format!("{setting}.predicate"),
                )?),
                OperatorSpec::Project(columns) => Box::new(ProjectOperator::try_new(
                    columns.clone(),
                    &schema,
                    &format!("{setting}.columns"),
                )?),
                OperatorSpec::LookupJoin(join) => Box::new(LookupJoinOperator::try_new(
                    join,
                    schema.clone(),
                    backend,
                    &setting,
                )?),
                OperatorSpec::Window(window) => {
                    if late.is_some() {
                        return Err(Error::config(
                            setting,
                            "only one window operator per job is supported",
                        ));
                    }
                    let op = WindowAggregateOperator::try_new(
                        window,
                        schema.clone(),
                        &self.event_time.column,
                        backend.as_ref(),
                        &setting,
                    )?;
                    late = Some(op.input_schema());
                    Box::new(op)
                }
            };
            schema = operator.output_schema();
            operators.push(operator);
        }
        Ok((OperatorChain::new(operators, source), late))
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
        let (source_schema, projection) = self.source_schema()?;
        let (chain, _) = self.chain(&self.backend)?;
        let sink = self
            .sink
            .ok_or_else(|| Error::config("sink", "a job needs a sink"))?;
        Ok(Pipeline {
            source: self.source,
            event_time: self.event_time,
            batching: self.batching,
            source_schema,
            projection,
            chain,
            backend_name: self.backend.name(),
            sink,
            late_sink: self.late_sink,
            dead_letter_sink: self.dead_letter_sink,
            strict: self.strict,
            channel_capacity: self.channel_capacity,
            name: self.name,
            checkpoint: self.checkpoint,
        })
    }
}
