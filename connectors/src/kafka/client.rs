//! The librdkafka consumer behind a Kafka source: its settings, the topics' partitions, and
//! their start and end offsets, resolved to numbers before any data moves.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sluice_engine::{Error, Result};

use super::spec::{KafkaSourceSpec, StartFrom};

/// The consumer every partition of a source shares.
pub(super) type KafkaConsumer = BaseConsumer<DefaultConsumerContext>;

/// How long a request to the broker may take before the job is told it failed (metadata,
/// offsets): long enough for a broker under load, short enough to fail a bad job quickly.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    /// `topic/partition`: the source partition's name in checkpoints, dead letters and logs.
    pub fn name(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }

    /// Parses [`TopicPartition::name`] (topic names may contain `/`; the partition follows
    /// the last one).
    pub fn parse(name: &str) -> Option<TopicPartition> {
        let (topic, partition) = name.rsplit_once('/')?;
        Some(TopicPartition {
            topic: topic.to_string(),
            partition: partition.parse().ok()?,
        })
    }
}

/// A consumer with sluice's settings: no automatic commits or offset stores (checkpoints
/// hold the offsets), the job's client properties on top.
pub(super) fn consumer(spec: &KafkaSourceSpec) -> Result<Arc<KafkaConsumer>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &spec.bootstrap)
        .set("group.id", &spec.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    for (key, value) in &spec.properties {
        config.set(key, value);
    }
    config.create::<KafkaConsumer>().map(Arc::new).map_err(|e| {
        Error::config(
            "source.properties",
            format!("the Kafka client refuses its settings: {e}"),
        )
    })
}

/// Every partition of `topics`, in topic then partition order; a topic the broker does not
/// have is a setting error, a broker that cannot be reached a source error.
pub(super) fn partitions(
    consumer: &KafkaConsumer,
    bootstrap: &str,
    topics: &[String],
) -> Result<Vec<TopicPartition>> {
    let mut out = Vec::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|e| unreachable(bootstrap, &e))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        let missing = match found {
            None => true,
            Some(t) => t.error().is_some() || t.partitions().is_empty(),
        };
        if missing {
            return Err(Error::config(
                "source.topics",
                format!("the broker at {bootstrap} has no topic `{topic}`"),
            ));
        }
        let mut ids: Vec<i32> = found
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        ids.sort_unstable();
        out.extend(ids.into_iter().map(|partition| TopicPartition {
            topic: topic.clone(),
            partition,
        }));
    }
    Ok(out)
}

/// The first and one-past-last offsets of `tp` now.
pub(super) fn watermarks(
    consumer: &KafkaConsumer,
    bootstrap: &str,
    tp: &TopicPartition,
) -> Result<(i64, i64)> {
    consumer
        .fetch_watermarks(&tp.topic, tp.partition, REQUEST_TIMEOUT)
        .map_err(|e| {
            source_error(
                bootstrap,
                &format!("reading the offsets of {}", tp.name()),
                &e,
            )
        })
}

/// Where each of `partitions` starts, as offsets: the first offset, the end, the group's
/// committed offset (or the first offset where the group has none), or the first message at
/// or after a time (or the end, where none is that late).
pub(super) fn start_offsets(
    consumer: &KafkaConsumer,
    spec: &KafkaSourceSpec,
    partitions: &[TopicPartition],
) -> Result<Vec<i64>> {
    let bootstrap = spec.bootstrap.as_str();
    let bounds: Vec<(i64, i64)> = partitions
        .iter()
        .map(|tp| watermarks(consumer, bootstrap, tp))
        .collect::<Result<_>>()?;
    let asked = match spec.start {
        StartFrom::Earliest => return Ok(bounds.iter().map(|b| b.0).collect()),
        StartFrom::Latest => return Ok(bounds.iter().map(|b| b.1).collect()),
        StartFrom::Group => consumer
            .committed_offsets(list(partitions, |_| Offset::Invalid)?, REQUEST_TIMEOUT)
            .map_err(|e| source_error(bootstrap, "reading the group's committed offsets", &e))?,
        StartFrom::Timestamp(ms) => consumer
            .offsets_for_times(list(partitions, |_| Offset::Offset(ms))?, REQUEST_TIMEOUT)
            .map_err(|e| source_error(bootstrap, "looking up offsets by time", &e))?,
    };
    partitions
        .iter()
        .zip(&bounds)
        .map(|(tp, &(low, high))| {
            let found = asked
                .find_partition(&tp.topic, tp.partition)
                .map(|e| e.offset());
            Ok(match (spec.start, found) {
                (_, Some(Offset::Offset(n))) => n.clamp(low, high),
                (StartFrom::Timestamp(_), _) => high,
                _ => low,
            })
        })
        .collect()
}

/// A partition list of `partitions`, each at `offset(i)`.
pub(super) fn list(
    partitions: &[TopicPartition],
    offset: impl Fn(usize) -> Offset,
) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for (i, tp) in partitions.iter().enumerate() {
        tpl.add_partition_offset(&tp.topic, tp.partition, offset(i))
            .map_err(|e| Error::Internal(format!("listing Kafka partition {}: {e}", tp.name())))?;
    }
    Ok(tpl)
}

/// The broker did not answer.
fn unreachable(bootstrap: &str, error: &KafkaError) -> Error {
    Error::Source {
        name: format!("kafka {bootstrap}"),
        message: format!(
            "cannot reach a Kafka broker within {} s: {error}",
            REQUEST_TIMEOUT.as_secs()
        ),
    }
}

/// A request to the broker failed.
pub(super) fn source_error(bootstrap: &str, doing: &str, error: &KafkaError) -> Error {
    Error::Source {
        name: format!("kafka {bootstrap}"),
        message: format!("{doing}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip_even_with_slashes_in_the_topic() {
        let tp = TopicPartition {
            topic: "team/payments".into(),
            partition: 11,
        };
        assert_eq!(tp.name(), "team/payments/11");
        assert_eq!(TopicPartition::parse(&tp.name()), Some(tp));
        assert_eq!(TopicPartition::parse("payments"), None);
        assert_eq!(TopicPartition::parse("payments/x"), None);
    }
}
