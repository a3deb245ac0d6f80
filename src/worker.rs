//! A worker: one of several processes running the same job, each reading the Kafka
//! partitions that the consumer group gives it, one task (pipeline) per partition.
//!
//! The worker follows the group: an assigned partition starts a task that restores the
//! partition's state and offset from the shared checkpoint location; a revoked one is
//! stopped with a checkpoint (its output published) before the group may give it to
//! another worker. Each change is logged on stderr with the time in epoch milliseconds
//! (`sluice worker 4711: reading payments/3 at 1765083600123`), so that who read what when
//! can be checked afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_connectors::kafka::{GroupMember, KafkaSource, Membership};
use sluice_engine::backend::Backend;
use sluice_engine::metrics::{Metrics, PartitionLag, RunSummary};
use sluice_engine::runtime::RunOptions;
use tokio::sync::watch;
use tokio::task::JoinSet;

use sluice_engine::pipeline::Pipeline;

use crate::job::{JobError, JobFile, Repartition, Task};

/// Why a worker stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The job file is invalid, or a task's pipeline cannot be built.
    #[error(transparent)]
    Job(#[from] JobError),
    /// A task failed while running.
    #[error("partition {partition}: {error}")]
    Task {
        partition: String,
        error: sluice_engine::Error,
    },
    /// The group or the broker failed.
    #[error("{0}")]
    Group(String),
}

/// What a worker did, per partition it ran (a partition it held several times has several).
#[derive(Debug, Default)]
pub struct WorkerSummary {
    /// Each task's summary, by partition, in the order they ended.
    pub tasks: Vec<(String, RunSummary)>,
    /// Whether the worker was asked to stop (rather than every partition ending).
    pub cancelled: bool,
}

/// One running task.
struct Running {
    cancel: watch::Sender<bool>,
    metrics: Arc<Metrics>,
}

/// Runs `job` as a worker until `stop` turns `true` or (a bounded source) every partition it
/// holds has ended; every 10 s (unless `quiet`) it prints what it holds.
pub async fn run_worker(
    job: &JobFile,
    backend: Arc<dyn Backend>,
    mut stop: watch::Receiver<bool>,
    quiet: bool,
) -> Result<WorkerSummary, WorkerError> {
    job.validate()?;
    let settings = job.group_settings()?;
    let source = Arc::new(job.worker_source()?);
    let repartition = job.repartition_stage(&source)?;
    let bounded = source_is_bounded(job);
    let (member, mut events) =
        GroupMember::join(&settings).map_err(|e| WorkerError::Group(e.to_string()))?;
    let pid = std::process::id();
    if !quiet {
        eprintln!(
            "sluice worker {pid}: joined group `{}` on {} (topics {})",
            settings.group,
            settings.bootstrap,
            settings.topics.join(", ")
        );
    }
    let mut worker = Worker {
        builder: Arc::new(TaskBuilder {
            job: job.clone(),
            backend,
            source,
            repartition,
            member: member.clone(),
        }),
        running: BTreeMap::new(),
        tasks: JoinSet::new(),
        summary: WorkerSummary::default(),
        pid,
    };
    let mut report = tokio::time::interval(Duration::from_secs(10));
    report.tick().await;
    let outcome = loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                worker.summary.cancelled = true;
                break Ok(());
            }
            event = events.recv() => match event {
                Some(Membership::Assigned(partitions)) => worker.start(&partitions),
                Some(Membership::Revoked { partitions, lost, done }) => {
                    if lost {
                        // Another worker may be reading these already: stopping them with a
                        // checkpoint could race its restore. Leaving as a crash does is safe.
                        eprintln!(
                            "sluice worker {pid}: lost partitions {} (this worker's session \
                             timed out); exiting without a checkpoint so that their new owner \
                             restores the last complete one",
                            partitions.join(", ")
                        );
                        std::process::exit(75);
                    }
                    let result = worker.stop(&partitions).await;
                    let _ = done.send(());
                    if let Err(e) = result {
                        break Err(e);
                    }
                }
                Some(Membership::Error(message)) => {
                    eprintln!("sluice worker {pid}: warning: consumer group: {message}");
                }
                None => break Err(WorkerError::Group("the consumer group thread stopped".into())),
            },
            Some(ended) = worker.tasks.join_next(), if !worker.tasks.is_empty() => {
                if let Err(e) = worker.ended(ended) {
                    break Err(e);
                }
                if bounded && worker.running.is_empty() {
                    break Ok(());
                }
            }
            _ = report.tick(), if !quiet && !worker.running.is_empty() => {
                eprintln!("sluice worker {pid}: {}", worker.status());
            }
        }
    };
    // Every task still running stops with a checkpoint; then the partitions go to the others.
    let partitions: Vec<String> = worker.running.keys().cloned().collect();
    let stopped = worker.stop(&partitions).await;
    // A rebalance may be waiting, inside the group thread, for a revocation this loop will no
    // longer answer; closing the channel drops the waiting reply, which releases it (and
    // later revocations no longer wait), so that leaving can stop that thread.
    events.close();
    while events.try_recv().is_ok() {}
    member.leave();
    outcome.and(stopped)?;
    Ok(worker.summary)
}

struct Worker {
    builder: Arc<TaskBuilder>,
    running: BTreeMap<String, Running>,
    tasks: JoinSet<(String, Result<RunSummary, WorkerError>)>,
    summary: WorkerSummary,
    pid: u32,
}

/// What every task's pipeline is built from.
struct TaskBuilder {
    job: JobFile,
    backend: Arc<dyn Backend>,
    source: Arc<KafkaSource>,
    /// Stage two's source and the repartition topic, for a repartitioned job.
    repartition: Option<Repartition>,
    member: Arc<GroupMember>,
}

impl TaskBuilder {
    /// The pipeline of `task`: a repartitioned job's source partitions run stage one, the
    /// repartition topic's partitions the job's operators; other jobs' partitions the job.
    fn build(&self, task: &Task) -> Result<Pipeline, JobError> {
        let (job, backend, member) = (&self.job, self.backend.clone(), self.member.clone());
        let topic = task.partition.rsplit_once('/').map_or("", |(t, _)| t);
        match &self.repartition {
            Some(r) if r.topic == topic => job.task_pipeline(backend, &r.source, task, member),
            Some(r) => job.repartition_pipeline(backend, &self.source, task, member, r.writers),
            None => job.task_pipeline(backend, &self.source, task, member),
        }
    }
}

impl Worker {
    /// Starts a task for each of `partitions` not already running. Each builds its pipeline
    /// on a blocking thread of its own (opening sinks and consumers talks to the broker), so
    /// a rebalance's tasks start side by side.
    fn start(&mut self, partitions: &[String]) {
        for partition in partitions {
            if self.running.contains_key(partition) {
                continue;
            }
            let task = Task::new(partition);
            let metrics = Arc::new(Metrics::default());
            // A task stopped while its pipeline is built stops as it starts, with a checkpoint.
            let (cancel, cancelled) = watch::channel(false);
            let options = RunOptions::new(metrics.clone()).with_cancel(cancelled);
            let builder = self.builder.clone();
            self.tasks.spawn(async move {
                let partition = task.partition.clone();
                let built = tokio::task::spawn_blocking(move || builder.build(&task)).await;
                let result = match built {
                    Ok(Ok(pipeline)) => {
                        pipeline
                            .run(options)
                            .await
                            .map_err(|error| WorkerError::Task {
                                partition: partition.clone(),
                                error,
                            })
                    }
                    Ok(Err(e)) => Err(WorkerError::Job(e)),
                    Err(e) => Err(WorkerError::Group(format!(
                        "building the task of {partition} failed: {e}"
                    ))),
                };
                (partition, result)
            });
            self.running
                .insert(partition.clone(), Running { cancel, metrics });
            eprintln!(
                "sluice worker {}: reading {partition} at {}",
                self.pid,
                now_ms()
            );
        }
    }

    /// Stops the tasks of `partitions`, each with a checkpoint, and waits for them.
    async fn stop(&mut self, partitions: &[String]) -> Result<(), WorkerError> {
        for partition in partitions {
            if let Some(task) = self.running.get(partition) {
                let _ = task.cancel.send(true);
            }
        }
        let mut first = Ok(());
        while partitions.iter().any(|p| self.running.contains_key(p)) {
            let Some(ended) = self.tasks.join_next().await else {
                break;
            };
            if let Err(e) = self.ended(ended)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// Records a task that returned.
    fn ended(
        &mut self,
        ended: Result<(String, Result<RunSummary, WorkerError>), tokio::task::JoinError>,
    ) -> Result<(), WorkerError> {
        let (partition, result) =
            ended.map_err(|e| WorkerError::Group(format!("a task panicked: {e}")))?;
        self.running.remove(&partition);
        match result {
            Ok(summary) => {
                eprintln!(
                    "sluice worker {}: released {partition} at {} ({} events, checkpoint {})",
                    self.pid,
                    now_ms(),
                    summary.counts.events_in,
                    summary
                        .checkpoint
                        .map_or_else(|| "none".to_string(), |id| id.to_string()),
                );
                self.summary.tasks.push((partition, summary));
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// `3 partitions | 1.2M in | 3.4k out | lag 1.2k`.
    fn status(&self) -> String {
        let (mut events_in, mut events_out) = (0, 0);
        let mut lag: Vec<PartitionLag> = Vec::new();
        for task in self.running.values() {
            let counts = task.metrics.snapshot();
            events_in += counts.events_in;
            events_out += counts.events_out;
            lag.extend(task.metrics.lag());
        }
        let total: u64 = lag.iter().map(|l| l.records).sum();
        format!(
            "{} partitions ({}) | {events_in} in | {events_out} out | lag {total}",
            self.running.len(),
            self.running.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    }
}

/// Whether the job's Kafka source stops at the end offsets (`bounded = "latest"`).
fn source_is_bounded(job: &JobFile) -> bool {
    matches!(
        &job.spec.source,
        Some(sluice_connectors::SourceSpec::Kafka(k)) if k.bounded.is_some()
    )
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
