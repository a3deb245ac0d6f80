//! Command-line arguments and the subcommands they dispatch to.

mod bench;
mod checkpoints;
mod devices;
mod progress;
mod run;
mod sql;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use sluice::job::{BackendChoice, JobFile};

const EXAMPLES: &str = "\
Examples:
  sluice run examples/fraud_features.toml
  sluice run examples/traffic.toml --backend cpu
  sluice run examples/fraud_features.toml --set source.events=5000000 --set sink.type=discard
  sluice run examples/traffic.sql
  sluice explain examples/fraud_features.sql
  sluice sql
  sluice validate examples/traffic.toml
  sluice checkpoints examples/traffic.toml
  sluice devices
  sluice bench --workloads tumbling --events 50000000";

/// Event-time stream processing over Arrow micro-batches.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a job file until its input ends (or Ctrl-C).
    #[command(after_help = EXAMPLES)]
    Run {
        /// The job file (TOML, docs/jobs.md) or SQL script (`.sql`, docs/sql.md).
        job: PathBuf,
        /// Where window math runs: auto (a hardware GPU if there is one, else the CPU), gpu
        /// (any adapter, software included) or cpu. Overrides the job's `backend`.
        #[arg(long)]
        backend: Option<BackendChoice>,
        /// Overrides a job setting, e.g. `--set source.events=1000` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Fails the job at the first malformed record.
        #[arg(long)]
        strict: bool,
        /// No progress line and no summary.
        #[arg(long, short)]
        quiet: bool,
        /// Resumes from this checkpoint id (`sluice checkpoints JOB` lists them) instead of
        /// the newest one.
        #[arg(long, value_name = "ID")]
        from_checkpoint: Option<u64>,
        /// Runs as one worker of a scaled-out job: start the same job several times and the
        /// Kafka consumer group spreads the partitions over them (adds `[cluster]` with its
        /// defaults when the job has none; see docs/scale-out.md).
        #[arg(long)]
        worker: bool,
    },
    /// Lists a job's checkpoints (id, time, epoch, size, source positions), or deletes one.
    Checkpoints {
        /// The job file (its [checkpoint] location is read).
        job: PathBuf,
        /// Deletes this checkpoint instead of listing.
        #[arg(long, value_name = "ID")]
        delete: Option<u64>,
    },
    /// Runs the standard workloads on every backend and reports events/s, batch latency and
    /// the GPU/CPU speedup; writes results.json and results.png.
    Bench {
        /// Workloads, comma-separated: tumbling, fraud, traffic (pipelines from a generator),
        /// operator (the window operator alone, state resident, pre-generated input),
        /// interval-join, window-join (transactions joined with logins), checkpoint,
        /// tumbling-checkpointed, kafka (JSON from a topic on `--kafka`, next to a plain
        /// consumer).
        #[arg(long, value_delimiter = ',', default_value = "tumbling,fraud,traffic")]
        workloads: Vec<bench::Workload>,
        /// Backends, comma-separated (cpu, gpu). Default: cpu, plus gpu when a hardware GPU
        /// is present; `gpu` also takes a software adapter.
        #[arg(long, value_delimiter = ',')]
        backends: Option<Vec<BackendChoice>>,
        /// Events per run.
        #[arg(long, default_value_t = 20_000_000)]
        events: u64,
        /// Rows per micro-batch.
        #[arg(long, default_value_t = 1 << 20)]
        batch_rows: usize,
        /// Runs per workload and backend; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Folder for results.json and results.png.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
        /// The Kafka broker of the `kafka` workload (`scripts/kafka-broker` starts one).
        #[arg(long, default_value = "127.0.0.1:9092")]
        kafka: String,
        /// Also runs the `kafka` workload's job as this many worker processes of one
        /// consumer group, e.g. `1,2,3` (scale-out; docs/scale-out.md).
        #[arg(long, value_delimiter = ',')]
        kafka_workers: Vec<usize>,
    },
    /// Lists the GPU adapters wgpu sees, what they offer, and which one `auto` would take.
    Devices,
    /// Opens an interactive SQL prompt (or runs the SQL on standard input): tables, views
    /// and settings persist for the session, SELECT streams rows until its input ends or
    /// Ctrl-C. See docs/sql.md.
    Sql {
        /// Where window math runs (default: the session's `SET 'sluice.backend'`, else auto).
        #[arg(long)]
        backend: Option<BackendChoice>,
    },
    /// Prints a job's plan: its operators in order, the backend each runs on, its output
    /// columns (builds the pipeline, moves no data).
    Explain {
        /// The job file or SQL script.
        job: PathBuf,
        /// The backend to plan for (default: the job's).
        #[arg(long)]
        backend: Option<BackendChoice>,
        /// Overrides a job setting (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Checks a job file (keys, columns, types, windows) without moving any data.
    Validate {
        /// The job file.
        job: PathBuf,
        /// Overrides a job setting (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run {
            job,
            backend,
            set,
            strict,
            quiet,
            from_checkpoint,
            worker,
        } => {
            let file = JobFile::load(&job, &set)?;
            let mut files = file.pipelines();
            let set_of = files.len();
            for file in &mut files {
                file.spec.strict |= strict;
                if worker && file.spec.cluster.is_none() {
                    file.spec.cluster = Some(Default::default());
                }
                if let Some(id) = from_checkpoint {
                    if file.spec.checkpoint.is_none() {
                        anyhow::bail!(
                            "{}: --from-checkpoint needs a [checkpoint] section in the job",
                            job.display()
                        );
                    }
                    if file.spec.cluster.is_some() {
                        anyhow::bail!(
                            "{}: --from-checkpoint picks a checkpoint of the whole job; a worker's \
                             partitions each resume from their own newest one",
                            job.display()
                        );
                    }
                    if set_of > 1 {
                        anyhow::bail!(
                            "{}: --from-checkpoint picks one pipeline's checkpoint; the {set_of} \
                             pipelines of a statement set each resume from their own newest one",
                            job.display()
                        );
                    }
                    file.resume = sluice_engine::checkpoint::Resume::Id(id);
                }
            }
            let backend = backend.unwrap_or(file.spec.backend);
            if file.explain {
                let plans = files
                    .iter()
                    .map(|file| file.explain(backend))
                    .collect::<Result<Vec<_>, _>>()?;
                println!("{}", plans.join("\n"));
                return Ok(ExitCode::SUCCESS);
            }
            if files.iter().any(|file| file.spec.cluster.is_some()) {
                if set_of > 1 {
                    anyhow::bail!(
                        "{}: a statement set ({set_of} INSERTs) cannot run as a cluster worker yet; \
                         run one INSERT per script",
                        job.display()
                    );
                }
                return worker::run(&files[0], backend, quiet);
            }
            run::run(&files, backend, quiet)
        }
        Command::Devices => devices::devices(),
        Command::Checkpoints { job, delete } => {
            checkpoints::checkpoints(&JobFile::load(&job, &[])?, delete)
        }
        Command::Bench {
            workloads,
            backends,
            events,
            batch_rows,
            runs,
            out,
            kafka,
            kafka_workers,
        } => bench::bench(&bench::BenchOptions {
            workloads,
            backends,
            events,
            batch_rows,
            runs,
            out,
            kafka,
            kafka_workers,
        }),
        Command::Sql { backend } => sql::shell(backend),
        Command::Explain { job, backend, set } => {
            let file = JobFile::load(&job, &set)?;
            let backend = backend.unwrap_or(file.spec.backend);
            let plans = file
                .pipelines()
                .iter()
                .map(|file| file.explain(backend))
                .collect::<Result<Vec<_>, _>>()?;
            println!("{}", plans.join("\n"));
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { job, set } => {
            let file = JobFile::load(&job, &set)?;
            let files = file.pipelines();
            let schemas = files
                .iter()
                .map(JobFile::validate)
                .collect::<Result<Vec<_>, _>>()?;
            println!("{}: ok", job.display());
            for (file, schemas) in files.iter().zip(&schemas) {
                let columns = sluice::job::describe_columns(&schemas.output);
                match files.len() {
                    1 => println!("output columns: {columns}"),
                    _ => println!("{}: output columns: {columns}", file.name()),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
