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

use super::{JobError, JobFile, KeyColumns, OperatorFile};

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
    /// The columns the input topic is partitioned by (its producer's message key), e.g.
    /// `"card_id"`. Each worker sees only its partitions' rows, so every window must group by
    /// these columns (and may add more); a job with windows must say it.
    #[serde(default)]
    pub partitioned_by: Option<KeyColumns>,
    /// Repartition the input by other columns through a topic first (`[cluster.repartition]`).
    #[serde(default)]
    pub repartition: Option<super::RepartitionFile>,
}

fn default_session_timeout() -> DurationMs {
    DurationMs(10_000)
}

impl Default for ClusterFile {
    fn default() -> Self {
        ClusterFile {
            group: None,
            session_timeout: default_session_timeout(),
            partitioned_by: None,
            repartition: None,
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
        if let Some(repartition) = &cluster.repartition {
            self.check_repartition(repartition)?;
        }
        self.check_partitioning(cluster)?;
        Ok(Some(cluster))
    }

    /// Every window must group by the columns the topic is partitioned by: then all rows of
    /// each of its keys come from one partition, read by one task, and a worker's windows are
    /// whole. (Column names are compared; a projection that recomputes a key column under its
    /// own name is the job's responsibility.)
    fn check_partitioning(&self, cluster: &ClusterFile) -> Result<(), JobError> {
        let invalid = self.invalid();
        // Rows reach a task partitioned by the repartition key where there is one.
        let (said, setting) = match &cluster.repartition {
            Some(r) => (Some(&r.by), "cluster.repartition.by"),
            None => (cluster.partitioned_by.as_ref(), "cluster.partitioned_by"),
        };
        let partitioned: Vec<String> = said.map(KeyColumns::names).unwrap_or_default();
        if said.is_some() && partitioned.is_empty() {
            return Err(invalid(Error::config(
                setting,
                "must name at least one column",
            )));
        }
        for (i, operator) in self.spec.operators.iter().enumerate() {
            let key = match operator {
                OperatorFile::Window { key, .. } => key.names(),
                OperatorFile::Over { partition_by, .. } => partition_by.names(),
                OperatorFile::TopN { partition_by, .. } => partition_by
                    .as_ref()
                    .map(KeyColumns::names)
                    .unwrap_or_default(),
                _ => continue,
            };
            if said.is_none() {
                return Err(invalid(Error::config(
                    setting,
                    format!(
                        "operator {} groups by [{}]: say which columns the input topic is \
                         partitioned by (its producer's message key), e.g. \
                         `partitioned_by = \"{}\"`, so that sluice can check that each \
                         worker sees all rows of the keys it holds",
                        i + 1,
                        key.join(", "),
                        key.first().map_or("card_id", String::as_str)
                    ),
                )));
            }
            if let Some(missing) = partitioned.iter().find(|c| !key.contains(c)) {
                return Err(invalid(Error::config(
                    setting,
                    format!(
                        "operator {} groups by [{}], but the rows are partitioned by [{}]: \
                         the rows of one [{}] key would be spread over workers (`{missing}` \
                         is not in the window's key). Produce the topic keyed by the \
                         window's key, or repartition by it (`[cluster.repartition]`)",
                        i + 1,
                        key.join(", "),
                        partitioned.join(", "),
                        key.join(", "),
                    ),
                )));
            }
        }
        Ok(())
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
            topics: source
                .topics
                .names()
                .into_iter()
                .chain(cluster.repartition.as_ref().map(|r| r.topic.clone()))
                .collect(),
            session_timeout: cluster.session_timeout.to_std(),
            // librdkafka takes 0 as "never"; discovery off is the same.
            discovery_interval: source.partition_discovery.to_std(),
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
    use std::path::Path;

    fn job(cluster: &str, key: &str, extra: &str) -> Result<JobFile, JobError> {
        let text = format!(
            r#"
[source]
type = "kafka"
bootstrap = "127.0.0.1:9"
topics = "payments"
format = "json"
columns = [{{ name = "ts", type = "int64" }}, {{ name = "card_id", type = "int64" }}]
[event_time]
column = "ts"
[[operators]]
type = "window"
key = {key}
window = {{ type = "tumbling", size = "1s" }}
aggregates = [{{ fn = "count", as = "n" }}]
[sink]
type = "parquet"
path = "out"
{extra}
{cluster}
"#
        );
        JobFile::parse(&text, Path::new("/jobs/j.toml"), &[])
    }

    const CHECKPOINT: &str = "[checkpoint]\nlocation = \"ckpt\"";

    fn refusal(file: &JobFile) -> String {
        file.cluster().expect_err("refused").to_string()
    }

    #[test]
    fn a_worker_job_says_how_its_topic_is_partitioned_and_its_windows_agree() {
        let ok = job(
            "[cluster]\npartitioned_by = \"card_id\"",
            "[\"card_id\", \"ts\"]",
            CHECKPOINT,
        )
        .expect("parses");
        assert!(ok.cluster().expect("valid").is_some());
        let unsaid = job("[cluster]", "\"card_id\"", CHECKPOINT).expect("parses");
        assert!(
            refusal(&unsaid).contains(
                "cluster.partitioned_by: operator 1 groups by [card_id]: say which columns"
            ),
            "{}",
            refusal(&unsaid)
        );
        let other = job(
            "[cluster]\npartitioned_by = [\"card_id\", \"ts\"]",
            "\"card_id\"",
            CHECKPOINT,
        )
        .expect("parses");
        assert!(
            refusal(&other).contains("but the rows are partitioned by [card_id, ts]"),
            "{}",
            refusal(&other)
        );
        let empty =
            job("[cluster]\npartitioned_by = []", "\"card_id\"", CHECKPOINT).expect("parses");
        assert!(refusal(&empty).contains("must name at least one column"));
    }

    #[test]
    fn a_repartitioned_job_is_checked_against_its_repartition_key() {
        let ok = job(
            "[cluster.repartition]\ntopic = \"by-card\"\nby = \"card_id\"",
            "\"card_id\"",
            CHECKPOINT,
        )
        .expect("parses");
        assert!(ok.cluster().expect("valid").is_some());
        let settings = ok.group_settings().expect("settings");
        assert_eq!(settings.topics, ["payments", "by-card"]);
        let other = job(
            "[cluster.repartition]\ntopic = \"by-ts\"\nby = \"ts\"",
            "\"card_id\"",
            CHECKPOINT,
        )
        .expect("parses");
        assert!(
            refusal(&other).starts_with(
                "/jobs/j.toml: cluster.repartition.by: operator 1 groups by [card_id], but the \
                 rows are partitioned by [ts]"
            ),
            "{}",
            refusal(&other)
        );
        let onto_itself = job(
            "[cluster.repartition]\ntopic = \"payments\"\nby = \"card_id\"",
            "\"card_id\"",
            CHECKPOINT,
        )
        .expect("parses");
        assert!(refusal(&onto_itself).contains("must not be one of the source's topics"));
        let mut bounded = job(
            "[cluster.repartition]\ntopic = \"by-card\"\nby = \"card_id\"",
            "\"card_id\"",
            CHECKPOINT,
        )
        .expect("parses");
        if let Some(SourceSpec::Kafka(k)) = &mut bounded.spec.source {
            k.bounded = Some(sluice_connectors::kafka::Bounded::Latest);
        }
        assert!(
            refusal(&bounded).contains("source.bounded: a repartitioned job reads without end")
        );
    }

    #[test]
    fn a_worker_job_needs_checkpoints_and_a_kafka_source() {
        let bare =
            job("[cluster]\npartitioned_by = \"card_id\"", "\"card_id\"", "").expect("parses");
        assert!(
            refusal(&bare).contains("needs `[checkpoint]`"),
            "{}",
            refusal(&bare)
        );
        let not_a_worker = job("", "\"card_id\"", "").expect("parses");
        assert!(not_a_worker.cluster().expect("fine").is_none());
    }

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
