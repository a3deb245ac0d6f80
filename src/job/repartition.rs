//! `[cluster.repartition]`: workers of a job whose input topic is not partitioned by its
//! window key first write the rows to a topic that is, then window what they read from it.
//!
//! Stage one is a task per source partition: its rows, unchanged, as JSON messages keyed by
//! the `by` columns, exactly once (a Kafka transaction per checkpoint), each transaction ending
//! with the task's watermark sent to every partition of the repartition topic. Stage two is a
//! task per repartition partition: the job's operators and sinks, its watermark the smallest
//! of all stage-one writers' (Kafka Streams' repartition topics, with Flink's watermark rule).
//! Both stages run in every worker; the consumer group assigns both topics' partitions.

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use serde::Deserialize;
use sluice_connectors::kafka::{
    Delivery, FormatSpec, GroupMember, KafkaSinkSpec, KafkaSource, Names, StartFrom,
    TransactionalKafkaSink,
};
use sluice_connectors::{ColumnSpec, ColumnType, SourceSpec};
use sluice_engine::Error;
use sluice_engine::backend::Backend;
use sluice_engine::pipeline::Pipeline;
use sluice_engine::source::Source as _;

use super::{JobError, JobFile, KeyColumns, Task};

/// `[cluster.repartition]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepartitionFile {
    /// The repartition topic (made with `partitions` partitions when the broker lacks it).
    pub topic: String,
    /// The columns rows are keyed by in it: every window must group by them.
    pub by: KeyColumns,
    /// Its partitions when sluice creates it (default: the source's partition count).
    #[serde(default)]
    pub partitions: Option<i32>,
}

/// What a worker of a repartitioned job needs besides its source.
#[derive(Debug)]
pub struct Repartition {
    /// The repartition topic.
    pub topic: String,
    /// Stage two's source: the repartition topic's partitions.
    pub source: KafkaSource,
    /// Stage-one writers: the source's partitions when the worker started.
    pub writers: usize,
}

impl JobFile {
    /// The `[cluster.repartition]` settings, if any.
    pub fn repartition(&self) -> Option<&RepartitionFile> {
        self.spec.cluster.as_ref()?.repartition.as_ref()
    }

    /// Checks what can be checked of `[cluster.repartition]` without the broker.
    pub(super) fn check_repartition(&self, file: &RepartitionFile) -> Result<(), JobError> {
        let invalid = self.invalid();
        if file.topic.trim().is_empty() || file.topic.contains('/') {
            return Err(invalid(Error::config(
                "cluster.repartition.topic",
                "needs a topic name",
            )));
        }
        if file.partitions.is_some_and(|p| p < 1) {
            return Err(invalid(Error::config(
                "cluster.repartition.partitions",
                "must be at least 1",
            )));
        }
        if let Some(SourceSpec::Kafka(source)) = &self.spec.source {
            if source.bounded.is_some() {
                return Err(invalid(Error::config(
                    "source.bounded",
                    "a repartitioned job reads without end (stage two cannot know where stage \
                     one will stop); remove `bounded`",
                )));
            }
            if source.topics.names().contains(&file.topic) {
                return Err(invalid(Error::config(
                    "cluster.repartition.topic",
                    "must not be one of the source's topics",
                )));
            }
        }
        Ok(())
    }

    /// Makes the repartition topic if the broker lacks it and builds stage two's source, its
    /// columns those of `source` (stage one writes its rows as they are).
    pub fn repartition_stage(&self, source: &KafkaSource) -> Result<Option<Repartition>, JobError> {
        let (Some(file), Some(SourceSpec::Kafka(spec))) = (self.repartition(), &self.spec.source)
        else {
            return Ok(None);
        };
        let invalid = self.invalid();
        let writers = source.partition_names().len();
        let partitions = file
            .partitions
            .unwrap_or(i32::try_from(writers).unwrap_or(i32::MAX));
        sluice_connectors::kafka::ensure_topic(
            &spec.bootstrap,
            &file.topic,
            partitions,
            &spec.properties,
        )
        .map_err(&invalid)?;
        let mut downstream = (**spec).clone();
        downstream.topics = Names::One(file.topic.clone());
        downstream.format = FormatSpec::Json;
        let event_time = self.spec.event_time.as_ref().map(|e| e.column.as_str());
        downstream.columns = columns(&source.schema(), event_time).map_err(&invalid)?;
        downstream.metadata = Vec::new();
        downstream.start = StartFrom::Earliest;
        downstream.bounded = None;
        if let Some(group) = self.cluster()?.and_then(|c| c.group.clone()) {
            downstream.group = group;
        }
        let source = KafkaSource::from_spec(&downstream, &self.base_dir)
            .map_err(&invalid)?
            .with_writer_watermarks();
        Ok(Some(Repartition {
            topic: file.topic.clone(),
            source,
            writers,
        }))
    }

    /// Stage one of `task` (a source partition): its rows to the repartition topic, keyed by
    /// the `by` columns, exactly once, with its watermark.
    pub fn repartition_pipeline(
        &self,
        backend: Arc<dyn Backend>,
        source: &KafkaSource,
        task: &Task,
        member: Arc<GroupMember>,
        writers: usize,
    ) -> Result<Pipeline, JobError> {
        let invalid = self.invalid();
        let (Some(file), Some(SourceSpec::Kafka(spec))) = (self.repartition(), &self.spec.source)
        else {
            return Err(invalid(Error::Internal("no repartition settings".into())));
        };
        let event_time = self.spec.event_time.as_ref().ok_or_else(|| {
            invalid(Error::config(
                "event_time",
                "a job needs `event_time = { column = \"...\" }`",
            ))
        })?;
        let source = source.task(&task.partition, member).map_err(&invalid)?;
        let inputs = Pipeline::builder(Box::new(source), event_time.to_spec());
        let mut builder = self.configure_without_operators(inputs, backend);
        // The rows as the runtime hands them on: the event-time column made a timestamp.
        let schema = builder.schemas().map_err(&invalid)?.output;
        let checkpoint = self
            .checkpoint_for(Some(task))
            .ok_or_else(|| invalid(Error::config("cluster", "needs `[checkpoint]`")))?;
        let scope = self.scope(&checkpoint.location, "repartition", Some(task));
        let out = KafkaSinkSpec {
            bootstrap: spec.bootstrap.clone(),
            topic: file.topic.clone(),
            key: Some(Names::Many(file.by.names())),
            format: FormatSpec::Json,
            headers: Default::default(),
            timestamp: None,
            properties: spec.properties.clone(),
            delivery: Delivery::ExactlyOnce,
        };
        let sink = TransactionalKafkaSink::create(&out, schema, &scope, &self.base_dir)
            .map_err(&invalid)?
            .passing_watermarks(task.partition.clone(), writers);
        let dead = self.dead_letter_output(Some(task), Some(&checkpoint.location))?;
        builder = builder
            .checkpoint(checkpoint)
            .sink(Box::new(sink))
            .dead_letter_sink(dead);
        builder.build().map_err(invalid)
    }
}

/// Declared JSON columns that read back what the JSON encoder writes of the rows of a source
/// of `schema` (whose `event_time` column the runtime turns into a timestamp).
fn columns(schema: &SchemaRef, event_time: Option<&str>) -> sluice_engine::Result<Vec<ColumnSpec>> {
    schema
        .fields()
        .iter()
        .map(|field| {
            if Some(field.name().as_str()) == event_time {
                return Ok(ColumnSpec::new(field.name(), ColumnType::Timestamp));
            }
            let kind = match field.data_type() {
                DataType::Int64 => ColumnType::Int64,
                DataType::Int32 => ColumnType::Int32,
                DataType::Float64 => ColumnType::Float64,
                DataType::Utf8 | DataType::LargeUtf8 => ColumnType::String,
                DataType::Boolean => ColumnType::Bool,
                DataType::Timestamp(TimeUnit::Millisecond, _) => ColumnType::Timestamp,
                other => {
                    return Err(Error::config(
                        "cluster.repartition",
                        format!(
                            "column `{}` is {other}, which the repartition topic cannot carry \
                             (int64, int32, float64, string, bool and millisecond timestamps \
                             can)",
                            field.name()
                        ),
                    ));
                }
            };
            Ok(ColumnSpec::new(field.name(), kind))
        })
        .collect()
}
