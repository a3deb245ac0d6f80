//! `[cluster]`: the same job run by several worker processes that share a Kafka consumer
//! group and a checkpoint location, and the pipeline of one task (one partition) of a worker.
//!
//! A task owns everything a partition's rows touch: its keyed state and offset in checkpoints
//! under `<checkpoint>/tasks/<topic>-<partition>`, and its own exactly-once output, a folder
//! `<path>/<topic>-<partition>` of each file sink (a Kafka sink's transactions carry the
//! partition in their `transactional.id`), so the partition can move to another worker,
//! which restores it from there. `docs/scale-out.md` describes the model.

use std::sync::Arc;

use serde::Deserialize;
use sluice_connectors::kafka::{GroupMember, GroupSettings, KafkaSource, TransactionScope};
use sluice_connectors::{SinkSpec, SourceSpec};
use sluice_engine::Error;
use sluice_engine::backend::Backend;
use sluice_engine::duration::DurationMs;
use sluice_engine::pipeline::Pipeline;

use super::{JobError, JobFile};

/// `[cluster]`: run as one worker of several (`sluice run --worker` adds it with defaults).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The consumer group the workers share (default: the source's `group`); offsets are
    /// committed to it after each completed checkpoint.
    #[serde(default)]
    pub group: Option<String>,
    /// A worker silent this long is dropped from the group and its partitions go to the
    /// others (default 10s; Kafka's own default is 45s).
    #[serde(default = "default_session_timeout")]
    pub session_timeout: DurationMs,
    /// How often the topics' partitions are listed again, so that new partitions (and new
    /// topics matching a `^` pattern) are read (default 30s).
    #[serde(default = "default_discovery")]
    pub partition_discovery: DurationMs,
}

fn default_session_timeout() -> DurationMs {
    DurationMs(10_000)
}
fn default_discovery() -> DurationMs {
    DurationMs(30_000)
}

impl Default for ClusterFile {
    fn default() -> Self {
        ClusterFile {
            group: None,
            session_timeout: default_session_timeout(),
            partition_discovery: default_discovery(),
        }
    }
}

/// One partition of a worker: its name and the folder name its state and output use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Task {
    /// `topic/partition`.
    pub partition: String,
    /// `topic-partition`: Kafka topic names hold no `/`, so this names a folder.
    pub folder: String,
}

impl Task {
    /// The task of partition `topic/partition`.
    pub fn new(partition: &str) -> Task {
        Task {
            partition: partition.to_string(),
            folder: partition.replace('/', "-"),
        }
    }
}

impl JobFile {
    /// The `[cluster]` settings, checked: a worker reads one Kafka source and checkpoints
    /// (the checkpoint location is where partitions move through). `None`: not a worker.
    pub fn cluster(&self) -> Result<Option<&ClusterFile>, JobError> {
        let Some(cluster) = &self.spec.cluster else {
            return Ok(None);
        };
        let invalid = self.invalid();
        let source = match &self.spec.source {
            Some(SourceSpec::Kafka(source)) if self.spec.streams.is_empty() => source,
            _ => {
                return Err(invalid(Error::config(
                    "cluster",
                    "workers share the partitions of a Kafka source: a `[cluster]` job needs \
                     `[source] type = \"kafka\"` (joins of two streams do not scale out yet)",
                )));
            }
        };
        if self.spec.checkpoint.is_none() {
            return Err(invalid(Error::config(
                "cluster",
                "workers hand partitions over through their checkpoints: a `[cluster]` job \
                 needs `[checkpoint]` with a location every worker reaches",
            )));
        }
        if let Some(group) = &cluster.group
            && group.trim().is_empty()
        {
            return Err(invalid(Error::config("cluster.group", "must not be empty")));
        }
        if cluster.session_timeout.as_millis() < 1_000 {
            return Err(invalid(Error::config(
                "cluster.session_timeout",
                "must be at least 1s",
            )));
        }
        source.check().map_err(self.invalid())?;
        Ok(Some(cluster))
    }

    /// How this worker joins its group.
    pub fn group_settings(&self) -> Result<GroupSettings, JobError> {
        let cluster = self.cluster()?.cloned().unwrap_or_default();
        let Some(SourceSpec::Kafka(source)) = &self.spec.source else {
            return Err(self.invalid()(Error::config(
                "cluster",
                "a worker needs a Kafka source",
            )));
        };
        Ok(GroupSettings {
            bootstrap: source.bootstrap.clone(),
            group: cluster.group.unwrap_or_else(|| source.group.clone()),
            topics: source.topics.names(),
            session_timeout: cluster.session_timeout.to_std(),
            discovery_interval: cluster.partition_discovery.to_std(),
            properties: source.properties.clone(),
        })
    }

    /// The job's Kafka source as a worker builds it once (its columns decided once, from
    /// the job file or a sample), to narrow to each task's partition.
    pub fn worker_source(&self) -> Result<KafkaSource, JobError> {
        match &self.spec.source {
            Some(SourceSpec::Kafka(source)) => {
                let mut spec = (**source).clone();
                if let Some(group) = self.cluster()?.and_then(|c| c.group.clone()) {
                    spec.group = group;
                }
                KafkaSource::from_spec(&spec, &self.base_dir).map_err(self.invalid())
            }
            _ => Err(self.invalid()(Error::config(
                "cluster",
                "a worker needs a Kafka source",
            ))),
        }
    }

    /// The pipeline of `task`: the job's operators over that partition alone, with the
    /// task's own checkpoints and outputs.
    pub fn task_pipeline(
        &self,
        backend: Arc<dyn Backend>,
        source: &KafkaSource,
        task: &Task,
        member: Arc<GroupMember>,
    ) -> Result<Pipeline, JobError> {
        let event_time = self.spec.event_time.as_ref().ok_or_else(|| {
            self.invalid()(Error::config(
                "event_time",
                "a job needs `event_time = { column = \"...\" }`",
            ))
        })?;
        let source = source
            .task(&task.partition, member)
            .map_err(self.invalid())?;
        let inputs = Pipeline::builder(Box::new(source), event_time.to_spec());
        let builder = self.configure(inputs, backend)?;
        self.assemble(builder, Some(task))
    }

    /// `spec` as task `task` writes it: a file output in a folder of the task's own.
    pub(super) fn task_sink(spec: &SinkSpec, task: &Task) -> SinkSpec {
        let within = |path: &str| format!("{}/{}", path.trim_end_matches('/'), task.folder);
        match spec {
            SinkSpec::Csv { path, header } => SinkSpec::Csv {
                path: within(path),
                header: *header,
            },
            SinkSpec::Jsonl { path } => SinkSpec::Jsonl { path: within(path) },
            SinkSpec::Parquet { path, rotate_rows } => SinkSpec::Parquet {
                path: within(path),
                rotate_rows: *rotate_rows,
            },
            other => other.clone(),
        }
    }

    /// The transaction scope of a sink of role `role` in `task` (or the whole job).
    pub(super) fn scope(
        &self,
        location: &str,
        role: &str,
        task: Option<&Task>,
    ) -> TransactionScope {
        TransactionScope {
            job: match task {
                Some(task) => format!("{}-{}", self.name(), task.folder),
                None => self.name(),
            },
            role: role.to_string(),
            checkpoints: location.to_string(),
        }
    }

    /// Where `task` checkpoints, under the job's location.
    pub(super) fn task_location(location: &str, task: &Task) -> String {
        format!("{}/tasks/{}", location.trim_end_matches('/'), task.folder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_writes_its_files_in_a_folder_of_its_own() {
        let task = Task::new("payments/3");
        assert_eq!(task.folder, "payments-3");
        let parquet = SinkSpec::Parquet {
            path: "out/features/".into(),
            rotate_rows: None,
        };
        assert_eq!(
            JobFile::task_sink(&parquet, &task),
            SinkSpec::Parquet {
                path: "out/features/payments-3".into(),
                rotate_rows: None
            }
        );
        assert_eq!(
            JobFile::task_sink(&SinkSpec::Discard, &task),
            SinkSpec::Discard
        );
        assert_eq!(
            JobFile::task_location("s3://b/ckpt/", &task),
            "s3://b/ckpt/tasks/payments-3"
        );
    }
}
