//! A Kafka source: every partition of its topics is a source partition (its own watermark,
//! its own offset in checkpoints) reading its own queue of one shared consumer.
//!
//! Partitions are assigned, not subscribed: the job decides which offsets it reads (the
//! checkpoint's, else the configured start), and commits them to the consumer group only after
//! each completed checkpoint, for lag tools. Before any data moves the source finds the
//! topics' partitions (an unknown topic or an unreachable broker fails the job there) and
//! resolves every start to an offset, so a checkpoint taken before a quiet partition's first
//! message still names exactly where it starts.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rdkafka::Offset;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use sluice_engine::source::{
    CheckpointListener, Position, Source, SourceBatch, SourceContext, SourcePartition,
};
use sluice_engine::{Error, Result};

use super::KafkaRecord;
use super::assignment::{PartitionQueue, Shared};
use super::client::{self, KafkaConsumer, TopicPartition};
use super::discovery::Discovery;
use super::format::PayloadDecoder;
use super::group::GroupMember;
use super::spec::KafkaSourceSpec;
use super::watermarks::WriterWatermarks;

/// How long a read waits for a partition's first message before it answers "nothing yet",
/// freeing its reader thread for the other partitions it serves.
const POLL_WAIT: Duration = Duration::from_millis(20);

/// Messages read to infer undeclared columns, and how long to wait for them.
const SAMPLE_MESSAGES: usize = 1_000;
const SAMPLE_WAIT: Duration = Duration::from_secs(3);

/// A source over the partitions of one or more Kafka topics.
pub struct KafkaSource {
    name: String,
    spec: KafkaSourceSpec,
    consumer: Arc<KafkaConsumer>,
    partitions: Vec<TopicPartition>,
    decoder: Arc<PayloadDecoder>,
    /// A worker's task commits its offsets through the worker's group membership.
    member: Option<Arc<GroupMember>>,
    /// A repartition topic: partitions take their watermark from the writers' markers.
    writer_watermarks: bool,
}

impl KafkaSource {
    /// Checks the settings, finds the topics' partitions and decides the columns (reading a
    /// sample of messages when the format infers them): everything that can fail before any
    /// data moves fails here, naming the setting or the broker.
    pub fn from_spec(spec: &KafkaSourceSpec, base_dir: &Path) -> Result<Self> {
        spec.check()?;
        let consumer = client::consumer(spec)?;
        let topics = spec.topics.names();
        let partitions = client::partitions(&consumer, &spec.bootstrap, &topics)?;
        let sample = if PayloadDecoder::needs_sample(&spec.format, &spec.columns) {
            read_sample(&consumer, spec, &partitions)?
        } else {
            Vec::new()
        };
        let records: Vec<KafkaRecord<'_>> = sample.iter().map(record).collect();
        let decoder = PayloadDecoder::new(
            &spec.format,
            &spec.columns,
            &spec.metadata,
            &records,
            base_dir,
        )?;
        Ok(KafkaSource {
            name: format!("kafka {}", topics.join(",")),
            spec: spec.clone(),
            consumer,
            partitions,
            decoder: Arc::new(decoder),
            member: None,
            writer_watermarks: false,
        })
    }

    /// The columns a source of `spec` produces: decided without the broker when the spec
    /// declares them (so planning a SQL table needs no server), else as
    /// [`KafkaSource::from_spec`] decides them, from a sample of messages.
    pub fn schema_of(spec: &KafkaSourceSpec, base_dir: &Path) -> Result<SchemaRef> {
        spec.check()?;
        if PayloadDecoder::needs_sample(&spec.format, &spec.columns) {
            return Ok(Self::from_spec(spec, base_dir)?.schema());
        }
        let decoder =
            PayloadDecoder::new(&spec.format, &spec.columns, &spec.metadata, &[], base_dir)?;
        Ok(decoder.schema())
    }

    /// This source reads a repartition topic: its partitions' watermarks are those the
    /// writers upstream send (the smallest over all of them), not their rows' event times,
    /// and the markers that carry them are no rows.
    pub fn with_writer_watermarks(mut self) -> Self {
        self.writer_watermarks = true;
        self
    }

    /// The `topic/partition` names of the partitions this source reads.
    pub fn partition_names(&self) -> Vec<String> {
        self.partitions.iter().map(TopicPartition::name).collect()
    }

    /// This source narrowed to one partition (`topic/partition`, which may have appeared
    /// since this source was built) with a consumer of its own, for a worker's task: the
    /// columns stay those decided here, so every task of every worker decodes alike, and the
    /// offsets are committed through `member`.
    pub fn task(&self, partition: &str, member: Arc<GroupMember>) -> Result<KafkaSource> {
        let tp = TopicPartition::parse(partition).ok_or_else(|| {
            Error::Internal(format!("`{partition}` is not a Kafka partition name"))
        })?;
        Ok(KafkaSource {
            name: format!("kafka {partition}"),
            spec: self.spec.clone(),
            consumer: client::consumer(&self.spec)?,
            partitions: vec![tp],
            decoder: self.decoder.clone(),
            member: Some(member),
            writer_watermarks: self.writer_watermarks,
        })
    }
}

impl Source for KafkaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn schema(&self) -> SchemaRef {
        self.decoder.schema()
    }

    fn checkpoint_listener(&self) -> Option<Arc<dyn CheckpointListener>> {
        Some(Arc::new(OffsetCommitter {
            consumer: self.consumer.clone(),
            member: self.member.clone(),
            bootstrap: self.spec.bootstrap.clone(),
        }))
    }

    fn open(self: Box<Self>, ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        let client::Offsets { starts, ends } =
            client::offsets(&self.consumer, &self.spec, &self.partitions)?;
        let batch_rows = self.spec.batch_rows.unwrap_or(ctx.batch_rows).max(1);
        // Workers' tasks leave discovery to their group; a bounded source has fixed ends.
        let every = self.spec.partition_discovery.to_std();
        let discovery = (self.member.is_none() && self.spec.bounded.is_none() && !every.is_zero())
            .then(|| {
                Arc::new(Discovery::new(
                    self.consumer.clone(),
                    self.spec.bootstrap.clone(),
                    self.spec.topics.names(),
                    self.partitions.clone(),
                    every,
                ))
            });
        let shared = Arc::new(Shared::new(
            self.consumer.clone(),
            self.spec.bootstrap.clone(),
            self.partitions.clone(),
            starts.clone(),
        ));
        let partitions = self
            .partitions
            .iter()
            .enumerate()
            .map(|(index, tp)| {
                Box::new(KafkaPartition {
                    tp: tp.clone(),
                    index,
                    shared: shared.clone(),
                    queue: None,
                    decoder: self.decoder.clone(),
                    next: starts[index],
                    consumed: 0,
                    end: ends.as_ref().map(|e| e[index]),
                    batch_rows,
                    writers: self.writer_watermarks.then(WriterWatermarks::default),
                    discovery: discovery.clone(),
                }) as Box<dyn SourcePartition>
            })
            .collect();
        Ok(partitions)
    }
}

/// One Kafka partition as a source partition.
struct KafkaPartition {
    tp: TopicPartition,
    index: usize,
    shared: Arc<Shared>,
    queue: Option<PartitionQueue>,
    decoder: Arc<PayloadDecoder>,
    /// The offset of the next message to read.
    next: i64,
    /// Messages read so far (good and malformed).
    consumed: u64,
    /// Where a bounded source stops (one past its last offset).
    end: Option<i64>,
    batch_rows: usize,
    /// A repartition topic's partition: the writers' watermarks it has seen.
    writers: Option<WriterWatermarks>,
    /// Lists the topics' partitions now and then (shared by the source's partitions).
    discovery: Option<Arc<Discovery>>,
}

impl SourcePartition for KafkaPartition {
    fn name(&self) -> String {
        self.tp.name()
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if self.end.is_some_and(|end| self.next >= end) {
            return Ok(None);
        }
        if self.queue.is_none() {
            self.queue = Some(self.shared.take_queue(self.index)?);
        }
        self.shared.serve_events()?;
        let strays = self
            .shared
            .take_strays(self.index, self.next, self.batch_rows, self.end)?;
        if let Some(last) = strays.last() {
            self.next = last.offset() + 1;
            self.consumed += strays.len() as u64;
            let records: Vec<KafkaRecord<'_>> = strays.iter().map(record).collect();
            return super::watermarks::decode(&self.decoder, self.writers.as_mut(), records)
                .map(Some);
        }
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| Error::Internal("a Kafka partition lost its queue".into()))?;
        let messages = poll_messages(queue, &self.tp, self.batch_rows, self.end)?;
        let Some(last) = messages.last() else {
            return Ok(Some(SourceBatch::new(RecordBatch::new_empty(
                self.decoder.schema(),
            ))));
        };
        self.next = last.offset() + 1;
        self.consumed += messages.len() as u64;
        let records: Vec<KafkaRecord<'_>> = messages.iter().map(record).collect();
        super::watermarks::decode(&self.decoder, self.writers.as_mut(), records).map(Some)
    }

    fn watermarks_from_source(&self) -> bool {
        self.writers.is_some()
    }

    fn partitions_changed(&self) -> Option<String> {
        self.discovery.as_ref()?.check()
    }

    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: self.next.max(0) as u64,
            records: self.consumed,
        })
    }

    /// The high watermark of the consumer's last fetch for this partition minus the next
    /// offset: the consumer lag.
    fn backlog(&self) -> Option<u64> {
        let high = client::high_watermark(&self.shared.consumer, &self.tp)?;
        Some(high.saturating_sub(self.next).max(0) as u64)
    }

    fn seek(&mut self, position: Position) -> Result<()> {
        let offset = i64::try_from(position.offset).map_err(|_| Error::Source {
            name: self.tp.name(),
            message: format!(
                "a checkpoint holds offset {}, beyond Kafka's",
                position.offset
            ),
        })?;
        self.shared.set_start(self.index, offset)?;
        self.next = offset;
        self.consumed = position.records;
        Ok(())
    }
}

/// Up to `max` messages of `tp` below `end`: waits [`POLL_WAIT`] for the first, then takes
/// what is already there.
fn poll_messages<'q>(
    queue: &'q PartitionQueue,
    tp: &TopicPartition,
    max: usize,
    end: Option<i64>,
) -> Result<Vec<BorrowedMessage<'q>>> {
    let mut messages = Vec::new();
    let mut wait = POLL_WAIT;
    while messages.len() < max {
        match queue.poll(wait) {
            None => break,
            Some(Ok(message)) => {
                if end.is_some_and(|end| message.offset() >= end) {
                    break;
                }
                messages.push(message);
            }
            Some(Err(e)) => {
                return Err(Error::Source {
                    name: tp.name(),
                    message: format!("reading messages: {e}"),
                });
            }
        }
        wait = Duration::ZERO;
    }
    Ok(messages)
}

/// A message, borrowed or owned, as the decoders see it.
fn record<M: Message>(message: &M) -> KafkaRecord<'_> {
    KafkaRecord {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp: message.timestamp().to_millis(),
        key: message.key(),
        payload: message.payload(),
        headers: message
            .headers()
            .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
            .unwrap_or_default(),
    }
}

/// Up to [`SAMPLE_MESSAGES`] messages from the start of the topics, for a format that infers
/// its columns; the consumer is unassigned again afterwards.
fn read_sample(
    consumer: &KafkaConsumer,
    spec: &KafkaSourceSpec,
    partitions: &[TopicPartition],
) -> Result<Vec<rdkafka::message::OwnedMessage>> {
    let list = client::list(partitions, |_| Offset::Beginning)?;
    consumer
        .assign(&list)
        .map_err(|e| client::source_error(&spec.bootstrap, "reading a sample of messages", &e))?;
    let deadline = Instant::now() + SAMPLE_WAIT;
    let mut sample = Vec::new();
    while sample.len() < SAMPLE_MESSAGES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(message)) => sample.push(message.detach()),
            Some(Err(e)) => {
                return Err(client::source_error(
                    &spec.bootstrap,
                    "reading a sample of messages",
                    &e,
                ));
            }
            None if !sample.is_empty() => break,
            None => {}
        }
    }
    consumer
        .unassign()
        .map_err(|e| client::source_error(&spec.bootstrap, "reading a sample of messages", &e))?;
    Ok(sample)
}

/// Commits each completed checkpoint's offsets to the consumer group: as the worker's group
/// member where there is one (the coordinator refuses commits from outside a group that has
/// members), else with the source's own consumer.
struct OffsetCommitter {
    consumer: Arc<KafkaConsumer>,
    member: Option<Arc<GroupMember>>,
    bootstrap: String,
}

impl std::fmt::Debug for KafkaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OffsetCommitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OffsetCommitter")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

impl CheckpointListener for OffsetCommitter {
    fn checkpoint_complete(&self, positions: &[(String, Position)]) -> Result<()> {
        let offsets: Vec<(String, u64)> = positions
            .iter()
            .map(|(name, p)| (name.clone(), p.offset))
            .collect();
        if let Some(member) = &self.member {
            return member.commit(&offsets);
        }
        let Some(list) = client::offset_list(&offsets)? else {
            return Ok(());
        };
        self.consumer
            .commit(&list, CommitMode::Async)
            .map_err(|e| client::source_error(&self.bootstrap, "committing offsets", &e))
    }
}
