//! `type = "kafka"` sources and sinks: which broker and topics, where a source starts and
//! stops, the payload format, the sink's message key and delivery guarantee, and the client
//! properties passed through to librdkafka.

use std::collections::BTreeMap;
use std::fmt;

use arrow::compute::kernels::cast_utils::string_to_timestamp_nanos;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use sluice_engine::duration::DurationMs;
use sluice_engine::{Error, Result};

use super::format::{FormatSpec, MetadataColumn};
use crate::spec::ColumnSpec;

/// A Kafka source's settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceSpec {
    /// `host:port`, or several separated by commas.
    pub bootstrap: String,
    /// One topic (`"payments"`) or several (`["payments", "refunds"]`); every partition of
    /// each is one source partition. A name that begins with `^` is a regular expression of
    /// topic names (`"^sensors-.*"`).
    pub topics: Names,
    /// The consumer group: offsets are committed to it after each completed checkpoint (so
    /// that lag tools see progress), and `start = "group"` reads from its committed offsets.
    #[serde(default = "default_group")]
    pub group: String,
    /// Where a job without a checkpoint starts reading (a checkpoint's offsets always win).
    #[serde(default)]
    pub start: StartFrom,
    /// `"latest"`: stop at the end offsets each partition had when the job started, so the
    /// job ends like a file job (replays, tests, benchmarks); absent: read forever.
    #[serde(default)]
    pub bounded: Option<Bounded>,
    /// How payloads become columns.
    pub format: FormatSpec,
    /// Declared payload columns (JSON, CSV; Avro takes its schema's).
    #[serde(default)]
    pub columns: Vec<ColumnSpec>,
    /// Message properties read as extra columns (`kafka_timestamp`, ...).
    #[serde(default)]
    pub metadata: Vec<MetadataColumn>,
    /// librdkafka client properties (`security.protocol`, `sasl.mechanism`, ...), passed
    /// through; the ones sluice sets itself are refused.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Messages per batch read from a partition (default: the job's `batching.max_rows`).
    #[serde(default)]
    pub batch_rows: Option<usize>,
    /// How often the topics' partitions are listed again while the job runs (default 30s;
    /// `"0s"`: never): a job that checkpoints stops with a checkpoint when partitions were
    /// added (or topics matching a `^` pattern created) and `sluice run` starts it again over
    /// all of them; workers rebalance instead.
    #[serde(default = "default_discovery")]
    pub partition_discovery: DurationMs,
}

fn default_discovery() -> DurationMs {
    DurationMs(30_000)
}

/// One name or a list of them (topics, key columns).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Names {
    One(String),
    Many(Vec<String>),
}

impl Names {
    /// The names, in order.
    pub fn names(&self) -> Vec<String> {
        match self {
            Names::One(name) => vec![name.clone()],
            Names::Many(names) => names.clone(),
        }
    }
}

fn default_group() -> String {
    "sluice".into()
}

/// Where a partition starts when no checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// The partition's first offset (`"earliest"`, the default).
    #[default]
    Earliest,
    /// The end of the partition when the job starts (`"latest"`).
    Latest,
    /// The group's committed offset, or the first offset where it has none (`"group"`).
    Group,
    /// The first message at or after this time, epoch ms (RFC 3339 in the job file).
    Timestamp(i64),
}

impl<'de> Deserialize<'de> for StartFrom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StartVisitor;
        impl Visitor<'_> for StartVisitor {
            type Value = StartFrom;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "\"earliest\", \"latest\", \"group\" or an RFC 3339 time such as \
                     \"2026-01-01T00:00:00Z\"",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StartFrom, E> {
                match v {
                    "earliest" => Ok(StartFrom::Earliest),
                    "latest" => Ok(StartFrom::Latest),
                    "group" => Ok(StartFrom::Group),
                    time => string_to_timestamp_nanos(time)
                        .map(|ns| StartFrom::Timestamp(ns.div_euclid(1_000_000)))
                        .map_err(|_| {
                            E::custom(format!(
                                "`{time}` is not a start (expected \"earliest\", \"latest\", \
                                 \"group\" or an RFC 3339 time)"
                            ))
                        }),
                }
            }
        }
        deserializer.deserialize_str(StartVisitor)
    }
}

/// Where a bounded Kafka source stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bounded {
    /// At the end offsets the partitions had when the job started.
    Latest,
}

/// Client properties sluice sets itself: a job that sets them would break offsets in
/// checkpoints, or the consumer's assignment.
const OWNED_PROPERTIES: [&str; 5] = [
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
];

impl KafkaSourceSpec {
    /// Checks what can be checked without the broker, naming the setting.
    pub fn check(&self) -> Result<()> {
        if self.bootstrap.trim().is_empty() {
            return Err(Error::config(
                "source.bootstrap",
                "needs at least one broker, `host:port`",
            ));
        }
        let topics = self.topics.names();
        if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
            return Err(Error::config(
                "source.topics",
                "needs a topic name, or a list of them",
            ));
        }
        for topic in &topics {
            super::client::topic_pattern(topic)?;
        }
        if let Some(key) = self
            .properties
            .keys()
            .find(|k| OWNED_PROPERTIES.contains(&k.as_str()))
        {
            let instead = match key.as_str() {
                "bootstrap.servers" => "set `bootstrap`",
                "group.id" => "set `group`",
                "auto.offset.reset" => "set `start`",
                _ => "sluice commits offsets itself, after each completed checkpoint",
            };
            return Err(Error::config(
                format!("source.properties.{key}"),
                format!("sluice sets this property itself ({instead})"),
            ));
        }
        if self.batch_rows == Some(0) {
            return Err(Error::config("source.batch_rows", "must be at least 1"));
        }
        Ok(())
    }
}

/// A Kafka sink's settings (`[sink]`, `[late]` or `[dead_letter]` with `type = "kafka"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkSpec {
    /// `host:port`, or several separated by commas.
    pub bootstrap: String,
    /// The topic every row goes to (it must exist).
    pub topic: String,
    /// Columns whose values, as a JSON object, are each message's key (Kafka then keeps a
    /// key's messages in one partition); absent: messages without a key.
    #[serde(default)]
    pub key: Option<Names>,
    /// How rows become message values: `"json"` (one object per row, every column), a CSV
    /// record or an Avro record; the same shape as a source's `format`.
    #[serde(default = "json")]
    pub format: FormatSpec,
    /// Headers every message carries.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A column (timestamp, or integer epoch ms) whose value is each message's timestamp,
    /// e.g. `window_end`; absent: the producer's clock.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// librdkafka producer properties, passed through.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// `"at_least_once"`: every message acknowledged before a checkpoint completes.
    #[serde(default)]
    pub delivery: Delivery,
}

fn json() -> FormatSpec {
    FormatSpec::Json
}

/// What a Kafka sink promises after a crash and restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Every message is acknowledged (idempotent producer, `acks = all`) before a checkpoint
    /// completes: nothing is lost; what was sent after the last checkpoint is sent again.
    #[default]
    AtLeastOnce,
    /// One Kafka transaction per checkpoint epoch, committed once the checkpoint is durable
    /// (needs `[checkpoint]`).
    ExactlyOnce,
}

impl KafkaSinkSpec {
    /// Checks what can be checked without the broker; `setting` names the table.
    /// `checkpointed`: the job has `[checkpoint]`, which `delivery = "exactly_once"` needs.
    pub fn check(&self, setting: &str, checkpointed: bool) -> Result<()> {
        if self.delivery == Delivery::ExactlyOnce && !checkpointed {
            return Err(Error::config(
                format!("{setting}.delivery"),
                "exactly_once commits a Kafka transaction per checkpoint: it needs a \
                 [checkpoint] section",
            ));
        }
        if self.bootstrap.trim().is_empty() {
            return Err(Error::config(
                format!("{setting}.bootstrap"),
                "needs at least one broker, `host:port`",
            ));
        }
        if self.topic.trim().is_empty() {
            return Err(Error::config(
                format!("{setting}.topic"),
                "needs a topic name",
            ));
        }
        if let Some(key) = self.properties.keys().find(|k| {
            matches!(
                k.as_str(),
                "bootstrap.servers" | "enable.idempotence" | "acks" | "transactional.id"
            )
        }) {
            return Err(Error::config(
                format!("{setting}.properties.{key}"),
                "sluice sets this property itself (the delivery guarantee depends on it)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<KafkaSourceSpec, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    const BASE: &str = "bootstrap = \"127.0.0.1:9092\"\ntopics = \"payments\"\nformat = \"raw\"\n";

    #[test]
    fn a_minimal_source_reads_one_topic_from_the_start_unbounded() {
        let spec = parse(BASE).expect("spec");
        assert_eq!(spec.topics.names(), ["payments"]);
        assert_eq!(spec.start, StartFrom::Earliest);
        assert_eq!(spec.bounded, None);
        assert_eq!(spec.group, "sluice");
        spec.check().expect("valid");
    }

    #[test]
    fn starts_and_bounds_parse_and_bad_ones_say_what_is_expected() {
        let spec = parse(&format!(
            "{BASE}start = \"2026-01-01T00:00:01Z\"\nbounded = \"latest\"\n"
        ))
        .expect("spec");
        assert_eq!(spec.start, StartFrom::Timestamp(1_767_225_601_000));
        assert_eq!(spec.bounded, Some(Bounded::Latest));
        for (start, want) in [("latest", StartFrom::Latest), ("group", StartFrom::Group)] {
            let spec = parse(&format!("{BASE}start = \"{start}\"\n")).expect("spec");
            assert_eq!(spec.start, want);
        }
        let err = parse(&format!("{BASE}start = \"yesterday\"\n")).expect_err("bad start");
        assert!(err.contains("`yesterday` is not a start"), "{err}");
    }

    #[test]
    fn properties_sluice_owns_and_empty_names_are_refused_naming_the_setting() {
        let spec = parse(&format!(
            "{BASE}[properties]\n\"enable.auto.commit\" = \"true\"\n"
        ))
        .expect("spec");
        let err = spec.check().expect_err("owned").to_string();
        assert!(
            err.starts_with("source.properties.enable.auto.commit: sluice sets this property"),
            "{err}"
        );
        let spec = parse(&format!(
            "{BASE}[properties]\n\"security.protocol\" = \"ssl\"\n"
        ))
        .expect("spec");
        spec.check().expect("passed through");
        let spec =
            parse("bootstrap = \"\"\ntopics = [\"a\", \"b\"]\nformat = \"raw\"\n").expect("spec");
        assert!(
            spec.check()
                .expect_err("no broker")
                .to_string()
                .starts_with("source.bootstrap")
        );
    }
}
