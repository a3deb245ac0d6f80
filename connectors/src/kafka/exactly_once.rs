//! The exactly-once Kafka sink: one Kafka transaction per checkpoint epoch, committed once the
//! checkpoint holding it is durable, the epoch's rows journaled so that a restart can deliver
//! them again when their transaction did not commit.
//!
//! librdkafka cannot resume another process's open transaction (Flink reaches into its Java
//! client's internals to do so), so a restarted job cannot commit what the killed one
//! prepared. Instead:
//!
//! - rows of an epoch go to a journal: Parquet parts under the checkpoint location
//!   (`kafka-journal/<sink>/`), staged at the checkpoint like exactly-once file output;
//! - `prepare` stages the epoch's part, then sends its rows in a transaction together with
//!   a marker, the commit of offset `epoch` to the consumer group `sluice-txn-<job>-<sink>`
//!   for partition 0 of the topic, which Kafka makes visible exactly when the transaction
//!   commits; the checkpoint records the staged part;
//! - `commit` (the checkpoint is durable) commits the transaction and drops the part;
//! - on restart the producer takes the same `transactional.id` (`sluice-<job>-<sink>`), which
//!   fences the killed process's producer and aborts its open transaction; for each epoch the
//!   checkpoint recorded, the group's marker says whether its transaction committed; if not,
//!   its rows are read back from the journal and sent again in a new transaction.
//!
//! Readers with `isolation.level = read_committed` then see every row exactly once.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::{Offset, TopicPartitionList};
use sluice_engine::sink::{Sink, Staged, StagedPart};
use sluice_engine::{Error, Result};

use super::producer::KafkaWriter;
use super::spec::KafkaSinkSpec;
use crate::sink::{ParquetSink, PartSink, open_output};

/// How long reading the group's marker may take.
const MARKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Names what makes a Kafka sink's transactions its own: the job, the sink's role and the
/// checkpoint location its journal lives under.
#[derive(Debug, Clone)]
pub struct TransactionScope {
    /// The job's name.
    pub job: String,
    /// `sink`, `late` or `dead_letter`.
    pub role: String,
    /// The job's checkpoint location (a folder or an object-store URL).
    pub checkpoints: String,
}

impl TransactionScope {
    /// The producer's `transactional.id`: stable across restarts of the same job.
    pub fn transactional_id(&self) -> String {
        format!("sluice-{}-{}", self.job, self.role)
    }

    /// The consumer group whose committed offset marks the last committed epoch.
    pub fn marker_group(&self) -> String {
        format!("sluice-txn-{}-{}", self.job, self.role)
    }

    fn journal(&self) -> String {
        format!(
            "{}/kafka-journal/{}",
            self.checkpoints.trim_end_matches('/'),
            self.role
        )
    }
}

/// Writes rows to a Kafka topic exactly once, in a transaction per checkpoint epoch.
pub struct TransactionalKafkaSink {
    out: KafkaWriter,
    journal: PartSink<ParquetSink>,
    topic: String,
    group: ConsumerGroupMetadata,
    /// Reads the marker group's committed offset.
    marker: BaseConsumer,
    /// The epoch whose transaction `prepare` left open, to be committed.
    open: Option<u64>,
    /// Journal parts staged by a `prepare` whose sending failed: the next `prepare` sends them
    /// with its own, under its epoch.
    unsent: Vec<StagedPart>,
    /// Writing a repartition topic: this writer's name and how many writers there are.
    writer: Option<(String, usize)>,
    /// The job's watermark as last heard (a repartition topic's writer passes it on).
    watermark: Option<i64>,
}

impl std::fmt::Debug for TransactionalKafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalKafkaSink")
            .field("out", &self.out)
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

impl TransactionalKafkaSink {
    /// Checks the settings, opens the journal and registers the transactional id (fencing
    /// any earlier producer of this sink), before any data moves.
    pub fn create(
        spec: &KafkaSinkSpec,
        schema: SchemaRef,
        scope: &TransactionScope,
        base_dir: &Path,
    ) -> Result<Self> {
        let setting = scope.role.as_str();
        spec.check(setting, true)?;
        let id = scope.transactional_id();
        let out = KafkaWriter::create(spec, &schema, setting, base_dir, Some(&id))?;
        let journal = PartSink::new(open_output(&scope.journal(), base_dir)?, schema, None)?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &spec.bootstrap)
            .set("group.id", scope.marker_group())
            .set("enable.auto.commit", "false");
        for (k, v) in spec
            .properties
            .iter()
            .filter(|(k, _)| !k.starts_with("transaction"))
        {
            config.set(k, v);
        }
        let marker: BaseConsumer = config.create().map_err(|e| {
            Error::config(
                format!("{setting}.properties"),
                format!("the Kafka client refuses its settings: {e}"),
            )
        })?;
        let group = marker
            .group_metadata()
            .ok_or_else(|| out.error("the marker group has no metadata"))?;
        out.init_transactions()?;
        Ok(TransactionalKafkaSink {
            out,
            journal,
            topic: spec.topic.clone(),
            group,
            marker,
            open: None,
            unsent: Vec::new(),
            writer: None,
            watermark: None,
        })
    }

    /// Makes this sink the writer `writer` (a source partition) of a repartition topic, one
    /// of `writers`: each epoch's transaction ends with the job's watermark, sent to every
    /// partition of the topic after the epoch's rows.
    pub fn passing_watermarks(mut self, writer: String, writers: usize) -> Self {
        self.writer = Some((writer, writers));
        self
    }

    /// The last epoch whose transaction committed, as the marker group says.
    fn committed_epoch(&self) -> Result<Option<u64>> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&self.topic, 0);
        let found = self
            .marker
            .committed_offsets(list, MARKER_TIMEOUT)
            .map_err(|e| self.out.error(format!("reading the committed epoch: {e}")))?;
        Ok(found
            .find_partition(&self.topic, 0)
            .and_then(|p| match p.offset() {
                Offset::Offset(n) => u64::try_from(n).ok(),
                _ => None,
            }))
    }

    /// Sends the staged rows of `staged` in a new transaction marked with its epoch, leaving
    /// it open (prepared). A failure aborts the transaction.
    fn send_epoch(&mut self, staged: &Staged) -> Result<()> {
        let epoch = i64::try_from(staged.epoch).map_err(|_| {
            self.out
                .error(format!("epoch {} is beyond Kafka's offsets", staged.epoch))
        })?;
        self.out.begin_transaction(staged.epoch)?;
        let sent = (|| {
            for part in &staged.parts {
                for batch in self.journal.read_staged(part)? {
                    self.out.send_batch(&batch)?;
                }
            }
            if let (Some((writer, writers)), Some(watermark)) = (&self.writer, self.watermark) {
                self.out.send_watermark(writer, *writers, watermark)?;
            }
            self.out.mark(&self.group, &self.topic, 0, epoch)?;
            self.out.wait_for_acks()
        })();
        match sent {
            Ok(()) => {
                self.open = Some(staged.epoch);
                Ok(())
            }
            Err(e) => {
                // The next attempt needs a fresh transaction; if aborting fails too, the
                // producer is unusable and the job fails with the first error.
                let _ = self.out.abort_transaction();
                Err(e)
            }
        }
    }

    /// Makes `staged` delivered for good: commits its open transaction, or, after a restart,
    /// sends it again unless the marker says it committed; then drops its journal part.
    fn settle(&mut self, staged: &Staged) -> Result<()> {
        if self.open != Some(staged.epoch) {
            if self.committed_epoch()? >= Some(staged.epoch) {
                // Delivered before: its journal part may be gone already; what is left of it
                // is published or staged, and both are cleared (here, or by `recover`).
                return self.journal.withdraw_through(staged.epoch);
            }
            self.send_epoch(staged)?;
        }
        if let Err(failed) = self.out.commit_transaction() {
            if failed.abort {
                // The transaction is lost; the next attempt (the runtime retries the commit
                // at the next checkpoint) sends the journaled rows again.
                let _ = self.out.abort_transaction();
                self.open = None;
            }
            return Err(failed.error);
        }
        self.open = None;
        self.drop_journal(staged)
    }

    fn drop_journal(&mut self, staged: &Staged) -> Result<()> {
        // Publishing moves the parts out of staging; they are then withdrawn.
        self.journal.commit(staged)?;
        self.journal.withdraw_through(staged.epoch)
    }
}

impl Sink for TransactionalKafkaSink {
    fn name(&self) -> String {
        self.out.name.clone()
    }

    /// Journals the rows; they reach Kafka at the checkpoint.
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.journal.write(batch)
    }

    fn flush(&mut self) -> Result<()> {
        self.journal.flush()
    }

    /// Drops what no checkpoint covers; a prepared transaction stays open for `recover`
    /// (the next run's `init_transactions` aborts it, and the journal sends it again).
    fn close(&mut self) -> Result<()> {
        self.journal.close()
    }

    fn transactional(&self) -> bool {
        true
    }

    fn wants_watermarks(&self) -> bool {
        self.writer.is_some()
    }

    fn watermark(&mut self, watermark: i64) -> Result<()> {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        Ok(())
    }

    fn prepare(&mut self, epoch: u64) -> Result<Option<Staged>> {
        if let Some(open) = self.open {
            return Err(self.out.error(format!(
                "epoch {open}'s transaction is not committed yet; epoch {epoch} waits for it"
            )));
        }
        let mut parts = std::mem::take(&mut self.unsent);
        if let Some(staged) = self.journal.prepare(epoch)? {
            parts.extend(staged.parts);
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let staged = Staged { epoch, parts };
        if let Err(e) = self.send_epoch(&staged) {
            // Staged in the journal but in no checkpoint: kept for the next prepare.
            self.unsent = staged.parts;
            return Err(e);
        }
        Ok(Some(staged))
    }

    fn commit(&mut self, staged: &Staged) -> Result<()> {
        self.settle(staged)
    }

    /// Delivers what the checkpoint of `epoch` recorded and its transactions may not have
    /// committed, then clears the journal of everything later.
    fn recover(&mut self, epoch: u64, staged: &[Staged]) -> Result<()> {
        for s in staged {
            self.settle(s)?;
        }
        self.journal.recover(epoch, &[])
    }
}
