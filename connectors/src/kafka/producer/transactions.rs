//! The transaction calls of the exactly-once sink's producer: fencing, begin (stamping the
//! epoch and attempt headers), the epoch marker, commit and abort.

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::Header;
use std::time::{Duration, Instant};

use rdkafka::producer::{Producer, PurgeConfig};
use rdkafka::{Offset, TopicPartitionList};
use sluice_engine::{Error, Result};

use super::{BROKER_TIMEOUT, KafkaWriter};

impl KafkaWriter {
    /// Registers the transactional id with the broker: fences every earlier producer of the
    /// same id (their commits fail from now on) and aborts the transaction one left open.
    pub(in crate::kafka) fn init_transactions(&self) -> Result<()> {
        self.producer
            .init_transactions(self.transaction_timeout)
            .map_err(self.failed("initialising transactions (fencing earlier producers)"))
    }

    /// Begins a transaction whose messages carry the headers `sluice-epoch` (`epoch`) and
    /// `sluice-attempt` (unique to this transaction): a reader can tell the attempts at one
    /// epoch apart, of which only one commits.
    pub(in crate::kafka) fn begin_transaction(&mut self, epoch: u64) -> Result<()> {
        if self.aborting {
            // The last abort timed out (the broker was away); it must finish first.
            self.abort_transaction()?;
        }
        self.producer
            .begin_transaction()
            .map_err(self.failed("beginning a transaction"))?;
        let attempt = attempt_id();
        let stamped = self
            .headers
            .clone()
            .unwrap_or_default()
            .insert(Header {
                key: "sluice-epoch",
                value: Some(epoch.to_string().as_bytes()),
            })
            .insert(Header {
                key: "sluice-attempt",
                value: Some(attempt.as_bytes()),
            });
        self.stamped = Some(stamped);
        Ok(())
    }

    /// Adds to the open transaction the commit of `offset` for `tp` in the group of
    /// `group`: visible in the group exactly when the transaction commits.
    pub(in crate::kafka) fn mark(
        &self,
        group: &ConsumerGroupMetadata,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<()> {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, partition, Offset::Offset(offset))
            .map_err(self.failed("listing the transaction's marker"))?;
        self.producer
            .send_offsets_to_transaction(&list, group, BROKER_TIMEOUT)
            .map_err(self.failed("adding the epoch marker to the transaction"))
    }

    /// Commits the open transaction. A failure says whether the transaction is lost (the
    /// broker requires an abort: its messages must be sent again in a new one) or may still
    /// commit if asked again.
    pub(in crate::kafka) fn commit_transaction(&mut self) -> std::result::Result<(), CommitFailed> {
        match self.producer.commit_transaction(self.transaction_timeout) {
            Ok(()) => {
                self.stamped = None;
                self.check_deliveries().map_err(|error| CommitFailed {
                    error,
                    abort: false,
                })
            }
            Err(e) => {
                let abort = matches!(&e, KafkaError::Transaction(t) if t.txn_requires_abort());
                Err(CommitFailed {
                    error: self.error(format!("committing the transaction: {e}")),
                    abort,
                })
            }
        }
    }

    /// Aborts the open transaction, dropping what it had not delivered. One that times out
    /// stays pending and is finished before the next transaction begins.
    pub(in crate::kafka) fn abort_transaction(&mut self) -> Result<()> {
        self.stamped = None;
        self.aborting = true;
        // librdkafka completes an abort only once the delivery reports of the messages it
        // purges are served, which a `BaseProducer` does only when polled.
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        let deadline = Instant::now() + self.transaction_timeout;
        while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
            self.producer.poll(Duration::from_millis(10));
        }
        self.producer
            .abort_transaction(self.transaction_timeout)
            .map_err(self.failed("aborting the transaction"))?;
        self.producer.poll(Duration::ZERO);
        // Deliveries that failed belonged to the aborted transaction, not to the next one.
        if let Ok(mut failed) = self.failed.lock() {
            failed.take();
        }
        self.aborting = false;
        Ok(())
    }
}

/// Why a commit failed, and whether the transaction must be aborted (and sent again).
#[derive(Debug)]
pub(in crate::kafka) struct CommitFailed {
    pub error: Error,
    pub abort: bool,
}

/// An id no other transaction of any process shares: process id, wall-clock nanoseconds and
/// a counter.
fn attempt_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
