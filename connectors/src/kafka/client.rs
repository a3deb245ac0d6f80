//! The librdkafka consumer behind a Kafka source: its settings, the topics' partitions, and
//! their start and end offsets, resolved to numbers before any data moves.

use std::ffi::CString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use sluice_engine::{Error, Result};

use super::spec::{Bounded, KafkaSourceSpec, StartFrom};

/// The consumer every partition of a source shares.
pub(super) type KafkaConsumer = BaseConsumer<DefaultConsumerContext>;

/// How long a request to the broker may take before the job is told it failed (metadata,
/// offsets): long enough for a broker under load, short enough to fail a bad job quickly.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`end_offsets`] waits for a fetch response of every partition.
const PROBE_WAIT: Duration = Duration::from_secs(5);

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
    create(&config(spec)).map(Arc::new)
}

fn config(spec: &KafkaSourceSpec) -> ClientConfig {
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
    config
}

fn create(config: &ClientConfig) -> Result<KafkaConsumer> {
    config.create::<KafkaConsumer>().map_err(|e| {
        Error::config(
            "source.properties",
            format!("the Kafka client refuses its settings: {e}"),
        )
    })
}

/// Every partition of `topics`, in topic then partition order; a topic the broker does not
/// have is a setting error, a broker that cannot be reached a source error. A topic that
/// begins with `^` is a regular expression: every topic whose whole name it matches (at
/// least one), in name order.
pub(super) fn partitions(
    consumer: &KafkaConsumer,
    bootstrap: &str,
    topics: &[String],
) -> Result<Vec<TopicPartition>> {
    let mut out = Vec::new();
    for topic in topics {
        let pattern = topic_pattern(topic)?;
        let metadata = consumer
            .fetch_metadata(pattern.is_none().then_some(topic.as_str()), REQUEST_TIMEOUT)
            .map_err(|e| unreachable(bootstrap, &e))?;
        let mut found: Vec<_> = metadata
            .topics()
            .iter()
            .filter(|t| match &pattern {
                Some(re) => re.is_match(t.name()),
                None => t.name() == topic,
            })
            .filter(|t| t.error().is_none() && !t.partitions().is_empty())
            .collect();
        if found.is_empty() {
            let what = match pattern {
                Some(_) => format!("no topic that matches `{topic}`"),
                None => format!("no topic `{topic}`"),
            };
            return Err(Error::config(
                "source.topics",
                format!("the broker at {bootstrap} has {what}"),
            ));
        }
        found.sort_by_key(|t| t.name());
        for t in found {
            let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
            ids.sort_unstable();
            out.extend(ids.into_iter().map(|partition| TopicPartition {
                topic: t.name().to_string(),
                partition,
            }));
        }
    }
    out.dedup();
    Ok(out)
}

/// The regular expression of a `^`-prefixed topic (librdkafka's convention for
/// subscriptions), anchored at both ends as librdkafka matches; `None` for a plain name.
pub(super) fn topic_pattern(topic: &str) -> Result<Option<regex::Regex>> {
    if !topic.starts_with('^') {
        return Ok(None);
    }
    let anchored = if topic.ends_with('$') {
        topic.to_string()
    } else {
        format!("{topic}$")
    };
    regex::Regex::new(&anchored).map(Some).map_err(|e| {
        Error::config(
            "source.topics",
            format!("`{topic}` is not a valid topic pattern: {e}"),
        )
    })
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

/// Each partition's offsets when the job starts: where it starts reading and, for a bounded
/// source, where it stops.
pub(super) struct Offsets {
    pub starts: Vec<i64>,
    pub ends: Option<Vec<i64>>,
}

/// Where each of `partitions` starts, as offsets (the first offset, the end, the group's
/// committed offset (or the first offset where the group has none), or the first message at
/// or after a time (or the end, where none is that late)) and, with `bounded = "latest"`,
/// the end where it stops.
pub(super) fn offsets(
    consumer: &KafkaConsumer,
    spec: &KafkaSourceSpec,
    partitions: &[TopicPartition],
) -> Result<Offsets> {
    let bootstrap = spec.bootstrap.as_str();
    let mut bounds: Vec<(i64, i64)> = partitions
        .iter()
        .map(|tp| watermarks(consumer, bootstrap, tp))
        .collect::<Result<_>>()?;
    if spec.start != StartFrom::Earliest || spec.bounded.is_some() {
        let listed: Vec<i64> = bounds.iter().map(|b| b.1).collect();
        for (bound, end) in bounds
            .iter_mut()
            .zip(end_offsets(spec, partitions, &listed)?)
        {
            bound.1 = end;
        }
    }
    // `bounded = "latest"`, the only bound there is, stops at the ends found now.
    let ends = spec
        .bounded
        .map(|Bounded::Latest| bounds.iter().map(|b| b.1).collect());
    Ok(Offsets {
        starts: start_offsets(consumer, spec, partitions, &bounds)?,
        ends,
    })
}

fn start_offsets(
    consumer: &KafkaConsumer,
    spec: &KafkaSourceSpec,
    partitions: &[TopicPartition],
    bounds: &[(i64, i64)],
) -> Result<Vec<i64>> {
    let bootstrap = spec.bootstrap.as_str();
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
        .zip(bounds)
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

/// The end (one past the last offset) of each of `partitions`: the larger of the broker's
/// answer to ListOffsets (`listed`) and the high watermark that its fetch responses carry,
/// read by a short-lived consumer that fetches at `listed`. Kafka answers both alike; tansu
/// 0.6 answers ListOffsets with the base offset of the partition's last record batch plus
/// one, short of the end whenever that batch holds more than one message, while its fetch
/// responses are right. A partition whose fetch does not answer within [`PROBE_WAIT`] keeps
/// `listed`.
fn end_offsets(
    spec: &KafkaSourceSpec,
    partitions: &[TopicPartition],
    listed: &[i64],
) -> Result<Vec<i64>> {
    let mut config = config(spec);
    // Fetches only to read the high watermark: small and quick, whatever the partitions hold.
    config
        .set("fetch.wait.max.ms", "10")
        .set("fetch.max.bytes", "1024")
        .set("message.max.bytes", "1000")
        .set("max.partition.fetch.bytes", "1024")
        .set("queued.min.messages", "1");
    let probe = create(&config)?;
    probe
        .assign(&list(partitions, |i| Offset::Offset(listed[i]))?)
        .map_err(|e| source_error(&spec.bootstrap, "assigning the partitions", &e))?;
    let mut ends: Vec<Option<i64>> = vec![None; partitions.len()];
    let deadline = Instant::now() + PROBE_WAIT;
    while ends.iter().any(Option::is_none) && Instant::now() < deadline {
        // Messages and errors alike are dropped: only the fetches' high watermarks count.
        let _ = probe.poll(Duration::from_millis(10));
        for (end, tp) in ends.iter_mut().zip(partitions) {
            if end.is_none() {
                *end = high_watermark(&probe, tp);
            }
        }
    }
    Ok(ends
        .iter()
        .zip(listed)
        .map(|(end, &listed)| end.map_or(listed, |e| e.max(listed)))
        .collect())
}

/// The high watermark of `tp` as the consumer's last fetch response for it said; `None`
/// before the first one.
pub(super) fn high_watermark(consumer: &KafkaConsumer, tp: &TopicPartition) -> Option<i64> {
    let topic = CString::new(tp.topic.as_str()).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` is borrowed; `topic` outlives the
    // call, and `low` and `high` are valid for writes. librdkafka only reads its cached offsets
    // (under its own lock) and writes the two out-parameters. The rdkafka crate has no safe
    // wrapper of this call (only `fetch_watermarks`, which asks the broker by ListOffsets).
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            tp.partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}

/// The partition list of `offsets` (`topic/partition`, next offset) to commit; names that are
/// no Kafka partition are skipped. `None` when nothing is left.
pub(super) fn offset_list(offsets: &[(String, u64)]) -> Result<Option<TopicPartitionList>> {
    let partitions: Vec<(TopicPartition, u64)> = offsets
        .iter()
        .filter_map(|(name, offset)| Some((TopicPartition::parse(name)?, *offset)))
        .collect();
    if partitions.is_empty() {
        return Ok(None);
    }
    let tps: Vec<TopicPartition> = partitions.iter().map(|(tp, _)| tp.clone()).collect();
    list(&tps, |i| {
        Offset::Offset(i64::try_from(partitions[i].1).unwrap_or(i64::MAX))
    })
    .map(Some)
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
