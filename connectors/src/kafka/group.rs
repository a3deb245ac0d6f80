//! A worker's membership of a Kafka consumer group: Kafka's group coordinator, not sluice,
//! decides which process reads which partition.
//!
//! The member subscribes to the source's topics and keeps every partition it is given
//! paused: it only holds the assignment and heartbeats. The partitions are read by the
//! worker's tasks, one consumer each, at the offsets their checkpoints hold. A revocation
//! waits, inside the rebalance callback and so before the group moves on, until the worker
//! has stopped the revoked partitions' tasks with a checkpoint: a partition changes hands
//! only after its state and output are committed (the eager protocol, as Kafka Streams).
//! Offsets are committed through the member, the one client the coordinator accepts
//! commits from while the group has members.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, TopicPartitionList};
use sluice_engine::{Error, Result};
use tokio::sync::mpsc;

use super::client::{self, TopicPartition};

/// How the group's assignment changed for this process.
#[derive(Debug)]
pub enum Membership {
    /// These partitions (`topic/partition`) are now this process's to read.
    Assigned(Vec<String>),
    /// These partitions are taken away. The group waits until `done` is sent: the worker
    /// stops their tasks with a checkpoint first. `lost`: the member was dropped from the
    /// group (its session timed out), so the partitions may already be read elsewhere.
    Revoked {
        partitions: Vec<String>,
        lost: bool,
        done: std::sync::mpsc::Sender<()>,
    },
    /// The group reported an error (printed; librdkafka retries by itself).
    Error(String),
}

/// How a worker joins its group.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// `host:port`, or several separated by commas.
    pub bootstrap: String,
    /// The consumer group every worker of the job joins.
    pub group: String,
    /// Topics, or `^`-prefixed regular expressions of topic names (librdkafka's convention).
    pub topics: Vec<String>,
    /// A worker silent this long is dropped and its partitions go to the others.
    pub session_timeout: Duration,
    /// How often the topics' partitions are listed again (zero: never): new partitions (and
    /// topics that match a pattern) join the assignment at the next rebalance this triggers.
    pub discovery_interval: Duration,
    /// Client properties of the job's source (security settings), passed through.
    pub properties: BTreeMap<String, String>,
}

type MemberConsumer = BaseConsumer<MemberContext>;

/// This process's place in the group, polled by a thread of its own.
pub struct GroupMember {
    consumer: Arc<MemberConsumer>,
    bootstrap: String,
    stop: Arc<AtomicBool>,
    /// Set when the worker leaves: revocations then no longer wait for it.
    leaving: Arc<AtomicBool>,
    poller: Mutex<Option<JoinHandle<()>>>,
}

impl GroupMember {
    /// Joins the group; the assignment arrives on the returned channel.
    pub fn join(
        settings: &GroupSettings,
    ) -> Result<(Arc<Self>, mpsc::UnboundedReceiver<Membership>)> {
        let (events, rx) = mpsc::unbounded_channel();
        let leaving = Arc::new(AtomicBool::new(false));
        let session = settings.session_timeout.as_millis().max(1);
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.bootstrap)
            .set("group.id", &settings.group)
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 3).max(1).to_string())
            .set(
                "topic.metadata.refresh.interval.ms",
                match settings.discovery_interval.as_millis() {
                    0 => "-1".to_string(),
                    ms => ms.to_string(),
                },
            )
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // Paused from the moment it is assigned, a partition fetches at most this much.
            .set("fetch.max.bytes", "1024")
            .set("message.max.bytes", "1000")
            .set("max.partition.fetch.bytes", "1024")
            .set("queued.min.messages", "1");
        for (key, value) in &settings.properties {
            config.set(key, value);
        }
        let consumer: MemberConsumer = config
            .create_with_context(MemberContext {
                events,
                leaving: leaving.clone(),
            })
            .map_err(|e| {
                Error::config(
                    "source.properties",
                    format!("the Kafka client refuses its settings: {e}"),
                )
            })?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|e| {
            client::source_error(&settings.bootstrap, "joining the consumer group", &e)
        })?;
        let consumer = Arc::new(consumer);
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (consumer, stop) = (consumer.clone(), stop.clone());
            std::thread::Builder::new()
                .name("sluice-group".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // Rebalances run inside poll; messages of paused partitions fetched
                        // before the pause took effect are dropped (the tasks read them).
                        let _ = consumer.poll(Duration::from_millis(100));
                    }
                })
                .map_err(|e| Error::Internal(format!("starting the group thread: {e}")))?
        };
        let member = GroupMember {
            consumer,
            bootstrap: settings.bootstrap.clone(),
            stop,
            leaving,
            poller: Mutex::new(Some(poller)),
        };
        Ok((Arc::new(member), rx))
    }

    /// Commits `offsets` (`topic/partition`, next offset) to the group, as its member.
    pub fn commit(&self, offsets: &[(String, u64)]) -> Result<()> {
        let Some(list) = client::offset_list(offsets)? else {
            return Ok(());
        };
        self.consumer
            .commit(&list, CommitMode::Async)
            .map_err(|e| client::source_error(&self.bootstrap, "committing offsets", &e))
    }

    /// Leaves the group: the partitions go to the other workers at once, without waiting
    /// for the session to time out. Call after this worker's tasks have stopped.
    pub fn leave(&self) {
        self.leaving.store(true, Ordering::Relaxed);
        self.stop_polling();
        self.consumer.unsubscribe();
        // Serves the revocation the unsubscribe causes (the worker has nothing left to stop).
        for _ in 0..10 {
            let _ = self.consumer.poll(Duration::from_millis(50));
        }
    }

    fn stop_polling(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let poller = self.poller.lock().ok().and_then(|mut p| p.take());
        if let Some(poller) = poller {
            let _ = poller.join();
        }
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        // Closing the consumer (when the last handle goes) revokes without waiting for anyone.
        self.leaving.store(true, Ordering::Relaxed);
        self.stop_polling();
    }
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember")
            .field("bootstrap", &self.bootstrap)
            .finish_non_exhaustive()
    }
}

/// Turns rebalance callbacks into [`Membership`] events.
struct MemberContext {
    events: mpsc::UnboundedSender<Membership>,
    leaving: Arc<AtomicBool>,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn pre_rebalance(&self, consumer: &MemberConsumer, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let partitions = names(list);
        if partitions.is_empty() || self.leaving.load(Ordering::Relaxed) {
            return;
        }
        let (done, stopped) = std::sync::mpsc::channel();
        let lost = consumer.assignment_lost();
        let revoked = Membership::Revoked {
            partitions,
            lost,
            done,
        };
        // Blocks this (the group's) thread until the tasks have stopped; a worker that is
        // gone has nothing running.
        if self.events.send(revoked).is_ok() {
            let _ = stopped.recv();
        }
    }

    fn post_rebalance(&self, consumer: &MemberConsumer, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                if let Err(e) = consumer.pause(list) {
                    let _ = self
                        .events
                        .send(Membership::Error(format!("pausing the assignment: {e}")));
                }
                let _ = self.events.send(Membership::Assigned(names(list)));
            }
            Rebalance::Error(e) => {
                let _ = self.events.send(Membership::Error(e.to_string()));
            }
            Rebalance::Revoke(_) => {}
        }
    }
}

/// `topic/partition` of each element of `list`.
fn names(list: &TopicPartitionList) -> Vec<String> {
    list.elements()
        .iter()
        .map(|e| {
            TopicPartition {
                topic: e.topic().to_string(),
                partition: e.partition(),
            }
            .name()
        })
        .collect()
}

/// Creates `topic` with `partitions` partitions unless the broker has it (a job's repartition
/// topic, made by its first worker; the others find it).
pub fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    properties: &BTreeMap<String, String>,
) -> Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (key, value) in properties {
        config.set(key, value);
    }
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|e| {
        Error::config(
            "source.properties",
            format!("the Kafka client refuses its settings: {e}"),
        )
    })?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_topics([&new], &options))
        .map_err(|e| client::source_error(bootstrap, &format!("creating topic {topic}"), &e))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::Source {
                    name: format!("kafka {bootstrap}"),
                    message: format!("creating topic {name}: {code}"),
                });
            }
        }
    }
    Ok(())
}
