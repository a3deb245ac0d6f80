//! Job files: a TOML document naming a source, event time, operators and sinks.
//!
//! A job file parses into serde structs (unknown keys are errors), then into the engine's
//! [`PipelineBuilder`], which validates every operator against the schema flowing into it.
//! Either step names the file and the key at fault, before any data moves.
//! `docs/jobs.md` documents every key.

mod cluster;
mod explain;
mod operators;
mod outputs;
mod overrides;
mod repartition;
mod settings;
mod streams;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use serde::Deserialize;
use sluice_connectors::{SinkSpec, SourceSpec};
use sluice_engine::backend::Backend;
use sluice_engine::batching::BatchingSpec;
use sluice_engine::checkpoint::{CheckpointSpec, Resume};
use sluice_engine::pipeline::{Pipeline, PipelineBuilder, PipelineSchemas};
use sluice_engine::sink::Sink;

pub use cluster::{ClusterFile, Task};
pub use explain::describe_columns;
pub use operators::{
    AggregateFile, FrameUnits, KeyColumns, OperatorFile, OverAggregateFile, ProjectColumn,
    TopNOrderFile, WindowFile,
};
pub use overrides::apply_override;
pub use repartition::{Repartition, RepartitionFile};
pub use settings::{BackendChoice, BatchingFile, CheckpointFile, EventTimeFile};
pub use streams::{JoinFile, JoinType, StreamFile};

use crate::dead_letters::StderrDeadLetters;

/// Why a job file cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The file cannot be read.
    #[error("{}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The file is not valid TOML or does not match the job format.
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    /// A `--set key=value` override is malformed.
    #[error("--set {setting}: {message}")]
    Override { setting: String, message: String },
    /// A SQL script that does not parse or plan; the error shows the line and a caret.
    #[error("{}: {error}", path.display())]
    Sql {
        path: PathBuf,
        error: crate::sql::SqlError,
    },
    /// The job is well-formed but invalid (unknown column, bad window, ...).
    #[error("{}: {error}", path.display())]
    Invalid {
        path: PathBuf,
        error: sluice_engine::Error,
    },
}

/// A parsed job file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// A name for logs; defaults to the file name.
    #[serde(default)]
    pub name: Option<String>,
    /// `auto` (default), `gpu` or `cpu`.
    #[serde(default)]
    pub backend: BackendChoice,
    /// Fail at the first malformed record instead of dead-lettering it.
    #[serde(default)]
    pub strict: bool,
    /// Where events come from (a job with one stream).
    #[serde(default)]
    pub source: Option<SourceSpec>,
    /// Event-time column and watermark settings (a job with one stream).
    #[serde(default)]
    pub event_time: Option<EventTimeFile>,
    /// Named input streams (a job that joins two; instead of `source` and `event_time`).
    #[serde(default)]
    pub streams: std::collections::BTreeMap<String, StreamFile>,
    /// How the two streams are joined.
    #[serde(default)]
    pub join: Option<JoinFile>,
    /// Micro-batch settings.
    #[serde(default)]
    pub batching: BatchingFile,
    /// The operator chain, in order (with a join: the operators after it).
    #[serde(default)]
    pub operators: Vec<OperatorFile>,
    /// Where results go.
    pub sink: SinkSpec,
    /// Where late rows go (optional; they are always counted).
    #[serde(default)]
    pub late: Option<SinkSpec>,
    /// Where malformed records go (default: JSON lines on stderr).
    #[serde(default)]
    pub dead_letter: Option<SinkSpec>,
    /// Checkpoints (and exactly-once file output); absent means none.
    #[serde(default)]
    pub checkpoint: Option<CheckpointFile>,
    /// Run as one of several worker processes sharing a Kafka consumer group.
    #[serde(default)]
    pub cluster: Option<ClusterFile>,
}

/// A job file with the folder its relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct JobFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The folder relative paths in it refer to.
    pub base_dir: PathBuf,
    /// Its contents (a SQL statement set: its first `INSERT`).
    pub spec: JobSpec,
    /// A SQL statement set's other `INSERT`s, in script order, each run as a pipeline of its
    /// own beside `spec`'s (see [`JobFile::pipelines`]); empty otherwise.
    pub statement_set: Vec<JobSpec>,
    /// Which checkpoint a run resumes from (`--from-checkpoint`; default the newest).
    pub resume: Resume,
    /// Print the plan instead of running (a SQL script's `EXPLAIN INSERT ...`).
    pub explain: bool,
}

impl JobFile {
    /// Reads and parses `path`, applying `overrides` (`key=value`) first: a TOML job file,
    /// or a SQL script when the name ends in `.sql` (overrides are then `SET` settings).
    pub fn load(path: &Path, overrides: &[String]) -> Result<JobFile, JobError> {
        let text = std::fs::read_to_string(path).map_err(|error| JobError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        if path.extension().is_some_and(|ext| ext == "sql") {
            Self::from_sql(&text, path, overrides)
        } else {
            Self::parse(&text, path, overrides)
        }
    }

    /// Plans SQL script text as if read from `path`; `overrides` (`key=value`) are applied
    /// after the script's `SET` statements.
    pub fn from_sql(text: &str, path: &Path, overrides: &[String]) -> Result<JobFile, JobError> {
        let overrides = overrides
            .iter()
            .map(|setting| {
                setting
                    .split_once('=')
                    .map(|(key, value)| (key.trim().to_string(), value.trim().to_string()))
                    .ok_or_else(|| JobError::Override {
                        setting: setting.clone(),
                        message: "expected key=value".into(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let job = crate::sql::plan_script(text, &base_dir, &overrides).map_err(|error| {
            JobError::Sql {
                path: path.to_path_buf(),
                error,
            }
        })?;
        let stem = path
            .file_stem()
            .map_or_else(|| "job".into(), |s| s.to_string_lossy().into_owned());
        let set = job.inserts.len() > 1;
        let mut specs = job.inserts.into_iter().map(|(table, mut spec)| {
            if set {
                // One job of several pipelines: each is named, and checkpoints in a folder,
                // after the table it writes (a table has one writer).
                let name = spec.name.take().unwrap_or_else(|| stem.clone());
                spec.name = Some(format!("{name}/{table}"));
                if let Some(checkpoint) = &mut spec.checkpoint {
                    checkpoint.location =
                        format!("{}/{table}", checkpoint.location.trim_end_matches('/'));
                }
            }
            spec
        });
        let Some(spec) = specs.next() else {
            return Err(JobError::Parse {
                path: path.to_path_buf(),
                message: "the script plans no INSERT".into(),
            });
        };
        Ok(JobFile {
            path: path.to_path_buf(),
            base_dir,
            spec,
            statement_set: specs.collect(),
            resume: Resume::Latest,
            explain: job.explain,
        })
    }

    /// Parses job text as if read from `path`.
    pub fn parse(text: &str, path: &Path, overrides: &[String]) -> Result<JobFile, JobError> {
        let parse_error = |message: String| JobError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let mut document: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(one_line(&e.to_string())))?;
        for setting in overrides {
            apply_override(&mut document, setting)?;
        }
        // Re-serialise so serde errors carry the line and column in the (overridden) text.
        let text = if overrides.is_empty() {
            text.to_string()
        } else {
            document.to_string()
        };
        let spec: JobSpec =
            toml::from_str(&text).map_err(|e| parse_error(one_line(&e.to_string())))?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(JobFile {
            path: path.to_path_buf(),
            base_dir,
            spec,
            statement_set: Vec::new(),
            resume: Resume::Latest,
            explain: false,
        })
    }

    /// Each pipeline of the job as a job file of its own: this one alone, or a SQL statement
    /// set's `INSERT`s in script order. They run side by side as one job, each reading its
    /// own instance of the tables it reads (as Flink runs a statement set whose sources it
    /// does not merge) and checkpointing on its own, so each is exactly-once by itself.
    pub fn pipelines(&self) -> Vec<JobFile> {
        std::iter::once(&self.spec)
            .chain(&self.statement_set)
            .map(|spec| JobFile {
                spec: spec.clone(),
                statement_set: Vec::new(),
                ..self.clone()
            })
            .collect()
    }

    /// The job's name: its `name` key or the file stem.
    pub fn name(&self) -> String {
        self.spec.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "job".into())
        })
    }

    fn invalid(&self) -> impl Fn(sluice_engine::Error) -> JobError + '_ {
        move |error| JobError::Invalid {
            path: self.path.clone(),
            error,
        }
    }

    /// The builder with source, event time, batching and operators; no sinks yet.
    pub fn builder(&self, backend: BackendChoice) -> Result<PipelineBuilder, JobError> {
        let backend = backend.open().map_err(self.invalid())?;
        self.builder_on(backend)
    }

    /// As [`JobFile::builder`], on a backend already opened (to reuse one GPU device).
    pub fn builder_on(&self, backend: Arc<dyn Backend>) -> Result<PipelineBuilder, JobError> {
        let inputs = self.inputs().map_err(self.invalid())?;
        self.configure(inputs, backend)
    }

    /// `inputs` with the job's batching, settings and operators, on `backend`.
    fn configure(
        &self,
        inputs: PipelineBuilder,
        backend: Arc<dyn Backend>,
    ) -> Result<PipelineBuilder, JobError> {
        let mut builder = self.configure_without_operators(inputs, backend);
        for (i, operator) in self.spec.operators.iter().enumerate() {
            builder = builder.operator(
                operator
                    .to_spec(i, &self.base_dir)
                    .map_err(self.invalid())?,
            );
        }
        Ok(builder)
    }

    /// `inputs` with the job's batching and settings, on `backend`, and no operators.
    fn configure_without_operators(
        &self,
        inputs: PipelineBuilder,
        backend: Arc<dyn Backend>,
    ) -> PipelineBuilder {
        let spec = &self.spec;
        let batching = BatchingSpec {
            max_rows: spec.batching.max_rows,
            max_delay: spec.batching.max_delay.to_std(),
        };
        inputs
            .batching(batching)
            .channel_capacity(spec.batching.channel_capacity)
            .strict(spec.strict)
            .name(self.name())
            .backend(backend)
    }

    /// The builder for the job's inputs: one source, or two streams and their join.
    fn inputs(&self) -> sluice_engine::Result<PipelineBuilder> {
        use sluice_engine::Error;
        let spec = &self.spec;
        if spec.streams.is_empty() {
            if spec.join.is_some() {
                return Err(Error::config(
                    "join",
                    "a join needs two `[streams.<name>]` tables (instead of `source`)",
                ));
            }
            let source = spec.source.as_ref().ok_or_else(|| {
                Error::config(
                    "source",
                    "a job needs a `source` (or two `[streams.<name>]`)",
                )
            })?;
            let event_time = spec.event_time.as_ref().ok_or_else(|| {
                Error::config(
                    "event_time",
                    "a job needs `event_time = { column = \"...\" }`",
                )
            })?;
            let source = source.build(&self.base_dir)?;
            return Ok(Pipeline::builder(source, event_time.to_spec()));
        }
        if spec.source.is_some() || spec.event_time.is_some() {
            return Err(Error::config(
                "source",
                "a job has either `source` and `event_time`, or `[streams.<name>]` tables, not both",
            ));
        }
        let join = spec.join.as_ref().ok_or_else(|| {
            Error::config(
                "join",
                "a job with `[streams.<name>]` needs a `[join]` of two of them",
            )
        })?;
        if spec.streams.len() != 2 {
            return Err(Error::config(
                "streams",
                format!(
                    "a join reads exactly two streams; this job has {} ({})",
                    spec.streams.len(),
                    spec.streams.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let stream = |name: &str, side: &str| {
            let file = spec.streams.get(name).ok_or_else(|| {
                Error::config(
                    format!("join.{side}"),
                    format!(
                        "no stream `{name}` (the streams are {})",
                        spec.streams.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            file.to_input(name, &self.base_dir)
        };
        if join.left == join.right {
            return Err(Error::config(
                "join.right",
                "a stream cannot be joined with itself",
            ));
        }
        let left = stream(&join.left, "left")?;
        let right = stream(&join.right, "right")?;
        Ok(Pipeline::join(left, right, join.to_spec()?))
    }

    /// The job's checkpoint settings (location resolved against the job file's folder),
    /// resuming as `resume` says; `None` when the job does not checkpoint.
    pub fn checkpoint_spec(&self, resume: Resume) -> Option<CheckpointSpec> {
        let file = self.spec.checkpoint.as_ref()?;
        let location = if file.location.contains("://") {
            file.location.clone()
        } else {
            self.base_dir.join(&file.location).display().to_string()
        };
        Some(CheckpointSpec {
            location,
            interval: file.interval.to_std(),
            retain: file.retain,
            tolerable_failures: file.tolerable_failures,
            resume,
        })
    }

    /// Validates the whole job without moving data, by the rules `run` applies: the
    /// schemas it would produce.
    pub fn validate(&self) -> Result<PipelineSchemas, JobError> {
        self.cluster()?;
        let schemas = self
            .builder(BackendChoice::Cpu)?
            .schemas()
            .map_err(self.invalid())?;
        self.check_outputs(&schemas)?;
        Ok(schemas)
    }

    /// What a run refuses besides the pipeline, checked without creating anything or
    /// sending a request: a late sink without lateness, the checkpoint settings (the
    /// location's form among them), the sinks' settings, and two outputs on one path.
    fn check_outputs(&self, schemas: &PipelineSchemas) -> Result<(), JobError> {
        self.check_late(schemas)?;
        if let Some(spec) = self.checkpoint_spec(self.resume) {
            spec.validate().map_err(self.invalid())?;
        }
        let exactly_once = self.spec.checkpoint.is_some();
        let sinks: Vec<(&str, &SinkSpec)> = [
            ("sink", Some(&self.spec.sink)),
            ("late", self.spec.late.as_ref()),
            ("dead_letter", self.spec.dead_letter.as_ref()),
        ]
        .into_iter()
        .filter_map(|(setting, sink)| Some((setting, sink?)))
        .collect();
        for (_, spec) in &sinks {
            spec.check(exactly_once).map_err(self.invalid())?;
        }
        // Checked before any sink creates its file: the second would clobber the first's.
        outputs::check_distinct(&sinks, &self.base_dir).map_err(self.invalid())
    }

    /// A `[late]` sink needs rows that can be late: a window or a stream join keeps state by
    /// event time; a lookup join, a filter or a projection has no lateness.
    fn check_late(&self, schemas: &PipelineSchemas) -> Result<(), JobError> {
        if self.spec.late.is_some() && schemas.late.is_none() {
            return Err(self.invalid()(sluice_engine::Error::config(
                "late",
                "a late sink needs a window operator or a stream join (`[join]`); filters, \
                 projections and lookup joins never find a row late",
            )));
        }
        Ok(())
    }

    /// The runnable pipeline with its sinks opened.
    pub fn pipeline(&self, backend: BackendChoice) -> Result<Pipeline, JobError> {
        let backend = backend.open().map_err(self.invalid())?;
        self.pipeline_on(backend)
    }

    /// As [`JobFile::pipeline`], on a backend already opened.
    pub fn pipeline_on(&self, backend: Arc<dyn Backend>) -> Result<Pipeline, JobError> {
        let builder = self.builder_on(backend)?;
        self.assemble(builder, None)
    }

    /// `builder` with the job's checkpoints and sinks opened: the whole job's, or those of
    /// `task` (a worker's partition: its own checkpoint location and file outputs).
    fn assemble(
        &self,
        mut builder: PipelineBuilder,
        task: Option<&Task>,
    ) -> Result<Pipeline, JobError> {
        let schemas = builder.schemas().map_err(self.invalid())?;
        self.check_outputs(&schemas)?;
        let checkpoint = self.checkpoint_for(task);
        let location = checkpoint.as_ref().map(|c| c.location.as_str());
        let sink = self.open_output(
            &self.spec.sink,
            schemas.output.clone(),
            "sink",
            task,
            location,
        )?;
        let late = match (&self.spec.late, &schemas.late) {
            (Some(late), Some(schema)) => {
                Some(self.open_output(late, schema.clone(), "late", task, location)?)
            }
            _ => None,
        };
        let dead = self.dead_letter_output(task, location)?;
        if let Some(spec) = checkpoint.clone() {
            builder = builder.checkpoint(spec);
        }
        let mut builder = builder.sink(sink).dead_letter_sink(dead);
        if let Some(late) = late {
            builder = builder.late_sink(late);
        }
        builder.build().map_err(self.invalid())
    }

    /// The job's checkpoint settings, those of `task` (under `tasks/<folder>` of the job's
    /// location) where one is given; `None` when the job does not checkpoint.
    pub(super) fn checkpoint_for(&self, task: Option<&Task>) -> Option<CheckpointSpec> {
        let mut spec = self.checkpoint_spec(self.resume)?;
        if let Some(task) = task {
            spec.location = JobFile::task_location(&spec.location, task);
        }
        Some(spec)
    }

    /// Opens the output `spec` in its `role` (`sink`, `late`, `dead_letter`) for the whole
    /// job or for `task` (a folder and transactions of its own); exactly once where the job
    /// checkpoints at `location`.
    pub(super) fn open_output(
        &self,
        spec: &SinkSpec,
        schema: SchemaRef,
        role: &str,
        task: Option<&Task>,
        location: Option<&str>,
    ) -> Result<Box<dyn Sink>, JobError> {
        let spec = match task {
            Some(task) => JobFile::task_sink(spec, task),
            None => spec.clone(),
        };
        let built = match location {
            Some(location) => {
                let scope = self.scope(location, role, task);
                spec.build_in_job(schema, &self.base_dir, Some(&scope))
            }
            None => spec.build(schema, &self.base_dir),
        };
        built.map_err(self.invalid())
    }

    /// Where malformed records go: the job's `[dead_letter]`, else stderr.
    pub(super) fn dead_letter_output(
        &self,
        task: Option<&Task>,
        location: Option<&str>,
    ) -> Result<Box<dyn Sink>, JobError> {
        match &self.spec.dead_letter {
            Some(spec) => self.open_output(
                spec,
                sluice_engine::source::DeadLetter::schema(),
                "dead_letter",
                task,
                location,
            ),
            None => Ok(Box::new(StderrDeadLetters)),
        }
    }
}

/// toml's messages span several lines with a source excerpt; keep them but drop blank lines.
fn one_line(message: &str) -> String {
    message
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
