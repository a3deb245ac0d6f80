//! Partition discovery for a Kafka source in one process: the topics' partitions are listed
//! again now and then, and partitions that were not there when the job opened are reported,
//! once, so that the job stops with a checkpoint and is run again over all of them.
//!
//! A job's partitions are fixed while it runs (its watermark tracker, its reader threads and
//! its checkpoints know them by number); a restart from a checkpoint is how a new one joins.
//! Workers of a scaled-out job do not use this: their consumer group rebalances instead.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{self, KafkaConsumer, TopicPartition};

/// Lists the topics' partitions every `every` and says when new ones appeared.
pub(super) struct Discovery {
    consumer: Arc<KafkaConsumer>,
    bootstrap: String,
    topics: Vec<String>,
    known: Vec<TopicPartition>,
    every: Duration,
    next: Mutex<Instant>,
    reported: AtomicBool,
}

impl Discovery {
    /// Discovery over `topics`, whose partitions are `known` now.
    pub(super) fn new(
        consumer: Arc<KafkaConsumer>,
        bootstrap: String,
        topics: Vec<String>,
        known: Vec<TopicPartition>,
        every: Duration,
    ) -> Self {
        Discovery {
            consumer,
            bootstrap,
            topics,
            known,
            every,
            next: Mutex::new(Instant::now() + every),
            reported: AtomicBool::new(false),
        }
    }

    /// When a listing is due: which partitions are new, said once. A listing that fails (the
    /// broker is away) is tried again at the next interval.
    pub(super) fn check(&self) -> Option<String> {
        if self.reported.load(Ordering::Relaxed) {
            return None;
        }
        {
            let mut next = self.next.lock().ok()?;
            let now = Instant::now();
            if now < *next {
                return None;
            }
            *next = now + self.every;
        }
        let found = client::partitions(&self.consumer, &self.bootstrap, &self.topics).ok()?;
        let new: Vec<String> = found
            .iter()
            .filter(|tp| !self.known.contains(tp))
            .map(TopicPartition::name)
            .collect();
        if new.is_empty() || self.reported.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(format!("new Kafka partitions {} appeared", new.join(", ")))
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("topics", &self.topics)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}
