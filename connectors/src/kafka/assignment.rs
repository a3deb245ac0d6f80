//! What the partitions of one Kafka source share: the consumer, and its assignment of
//! partitions, made once at the first read and split into one queue per partition.
//!
//! Between `assign` and splitting a partition's queue off, librdkafka may already have
//! fetched some of its messages into the consumer's main queue. Those are moved, while the
//! assignment lock is held and before any partition reads its own queue, into the
//! partition's `strays`, which it reads first: its messages stay in offset order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::Offset;
use rdkafka::consumer::{Consumer, DefaultConsumerContext};
use rdkafka::message::{Message, OwnedMessage};
use sluice_engine::{Error, Result};

use super::client::{self, KafkaConsumer, TopicPartition};

pub(super) type PartitionQueue =
    rdkafka::consumer::base_consumer::PartitionQueue<DefaultConsumerContext>;

/// What the partitions of one source share: the consumer, and its assignment.
pub(super) struct Shared {
    pub(super) consumer: Arc<KafkaConsumer>,
    bootstrap: String,
    partitions: Vec<TopicPartition>,
    assignment: Mutex<Assignment>,
    /// Per partition, messages that reached the main queue: read before its own queue.
    strays: Mutex<Vec<VecDeque<OwnedMessage>>>,
}

/// Each partition's next offset until the first read assigns them all at once (assigning
/// again would silence the queues split so far); then each partition's queue, taken by it.
enum Assignment {
    Pending(Vec<i64>),
    Active(Vec<Option<PartitionQueue>>),
}

impl Shared {
    /// Partitions not yet assigned, each to start at `starts[i]`.
    pub(super) fn new(
        consumer: Arc<KafkaConsumer>,
        bootstrap: String,
        partitions: Vec<TopicPartition>,
        starts: Vec<i64>,
    ) -> Self {
        let strays = Mutex::new(partitions.iter().map(|_| VecDeque::new()).collect());
        Shared {
            consumer,
            bootstrap,
            partitions,
            assignment: Mutex::new(Assignment::Pending(starts)),
            strays,
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Assignment>> {
        self.assignment
            .lock()
            .map_err(|_| Error::Internal("a Kafka source's assignment lock is poisoned".into()))
    }

    /// The next offset of partition `index` is `offset` (a seek, before any read).
    pub(super) fn set_start(&self, index: usize, offset: i64) -> Result<()> {
        match &mut *self.lock()? {
            Assignment::Pending(starts) => {
                if let Some(slot) = starts.get_mut(index) {
                    *slot = offset;
                }
                Ok(())
            }
            Assignment::Active(_) => Err(Error::Internal(
                "a Kafka partition was moved after reading began".into(),
            )),
        }
    }

    /// Partition `index`'s own queue, assigning every partition at its next offset first if
    /// this is the first read of the source.
    pub(super) fn take_queue(&self, index: usize) -> Result<PartitionQueue> {
        let mut assignment = self.lock()?;
        if let Assignment::Pending(starts) = &*assignment {
            let starts = starts.clone();
            let list = client::list(&self.partitions, |i| Offset::Offset(starts[i]))?;
            self.consumer.assign(&list).map_err(|e| {
                client::source_error(&self.bootstrap, "assigning the partitions", &e)
            })?;
            let queues = self
                .partitions
                .iter()
                .map(|tp| self.consumer.split_partition_queue(&tp.topic, tp.partition))
                .collect();
            // Whatever was fetched before the split, while no partition reads yet.
            while self.serve_one()? {}
            *assignment = Assignment::Active(queues);
        }
        let queue = match &mut *assignment {
            Assignment::Active(queues) => queues.get_mut(index).and_then(Option::take),
            Assignment::Pending(_) => None,
        };
        queue.ok_or_else(|| {
            let name = self.partitions.get(index).map(TopicPartition::name);
            Error::Internal(format!("no queue for Kafka partition {name:?}"))
        })
    }

    /// Serves the consumer's events (errors, statistics): librdkafka needs the main queue
    /// polled even though every partition's messages go to its own queue.
    pub(super) fn serve_events(&self) -> Result<()> {
        self.serve_one().map(drop)
    }

    /// Serves one event of the main queue, if there is one: a message goes to its
    /// partition's strays, an error is printed (lost connections and the like: librdkafka
    /// reconnects and retries by itself).
    fn serve_one(&self) -> Result<bool> {
        match self.consumer.poll(Duration::ZERO) {
            None => Ok(false),
            Some(Ok(message)) => {
                let index = self
                    .partitions
                    .iter()
                    .position(|tp| {
                        tp.topic == message.topic() && tp.partition == message.partition()
                    })
                    .ok_or_else(|| {
                        Error::Internal(format!(
                            "a message of {}/{}, which the source does not read",
                            message.topic(),
                            message.partition()
                        ))
                    })?;
                let mut strays = self.strays.lock().map_err(|_| {
                    Error::Internal("a Kafka source's stray messages are poisoned".into())
                })?;
                if let Some(queue) = strays.get_mut(index) {
                    queue.push_back(message.detach());
                }
                Ok(true)
            }
            Some(Err(e)) => {
                eprintln!("sluice: warning: kafka {}: {e}", self.bootstrap);
                Ok(true)
            }
        }
    }

    /// Up to `max` of partition `index`'s stray messages, in offset order, from `next` on and
    /// below `end`.
    pub(super) fn take_strays(
        &self,
        index: usize,
        next: i64,
        max: usize,
        end: Option<i64>,
    ) -> Result<Vec<OwnedMessage>> {
        let mut strays = self
            .strays
            .lock()
            .map_err(|_| Error::Internal("a Kafka source's stray messages are poisoned".into()))?;
        let Some(queue) = strays.get_mut(index) else {
            return Ok(Vec::new());
        };
        let mut taken = Vec::new();
        while taken.len() < max
            && let Some(message) = queue.pop_front()
        {
            if end.is_some_and(|end| message.offset() >= end) {
                queue.clear();
                break;
            }
            if message.offset() >= next {
                taken.push(message);
            }
        }
        Ok(taken)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("bootstrap", &self.bootstrap)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}
