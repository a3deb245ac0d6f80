//! `WITH ('connector' = 'kafka', ...)`: Flink's Kafka connector options into sluice's Kafka
//! source and sink specs.
//!
//! | Flink option | sluice |
//! |---|---|
//! | `topic` (`a;b` for several), `topic-pattern` | `topics` (a pattern starts with `^`) |
//! | `properties.bootstrap.servers` | `bootstrap` |
//! | `properties.group.id` | `group` |
//! | `properties.*` (others) | librdkafka properties, passed through |
//! | `scan.startup.mode`: `earliest-offset`, `latest-offset`, `group-offsets`, `timestamp` (+ `scan.startup.timestamp-millis`) | `start` |
//! | `scan.bounded.mode`: `unbounded`, `latest-offset` | `bounded` |
//! | `scan.topic-partition-discovery.interval` | `partition_discovery` |
//! | `format`: `json`, `csv` (+ `csv.field-delimiter`), `raw` | `format` |
//! | `key.fields` (`a;b`), sink | `key` |
//! | `sink.delivery-guarantee`: `at-least-once`, `exactly-once` (`none` is at least once) | `delivery` |
//! | `METADATA FROM 'timestamp' / 'partition' / 'offset' / 'topic' / 'key'` columns | `metadata` |

use std::collections::BTreeMap;

use sluice_connectors::kafka::format::CsvOptions;
use sluice_connectors::kafka::{
    Bounded, Delivery, FormatSpec, KafkaSinkSpec, KafkaSourceSpec, MetadataColumn, Names, StartFrom,
};
use sluice_connectors::{SinkSpec, SourceSpec};
use sluice_engine::duration::DurationMs;

use super::connectors::{OptionError, Options, declared_columns};
use crate::sql::create_table::{ColumnKind, CreateTable};

const SOURCE_OPTIONS: [&str; 12] = [
    "connector",
    "topic",
    "topic-pattern",
    "properties.bootstrap.servers",
    "properties.group.id",
    "properties.*",
    "scan.startup.mode",
    "scan.startup.timestamp-millis",
    "scan.bounded.mode",
    "scan.topic-partition-discovery.interval",
    "format",
    "csv.field-delimiter",
];
const SINK_OPTIONS: [&str; 8] = [
    "connector",
    "topic",
    "properties.bootstrap.servers",
    "properties.*",
    "format",
    "csv.field-delimiter",
    "key.fields",
    "sink.delivery-guarantee",
];

/// The Kafka source `table` reads.
pub(super) fn source(table: &CreateTable, mut options: Options) -> Result<SourceSpec, OptionError> {
    let bootstrap = options
        .required("properties.bootstrap.servers", "kafka")?
        .value
        .clone();
    let topics = match (options.take("topic"), options.take("topic-pattern")) {
        (Some(topic), None) => Names::Many(list(&topic.value)),
        (None, Some(pattern)) if pattern.value.starts_with('^') => {
            Names::One(pattern.value.clone())
        }
        (None, Some(pattern)) => Names::One(format!("^{}", pattern.value)),
        (Some(_), Some(pattern)) => {
            return Err(OptionError {
                at: Some(pattern.at),
                message: "give 'topic' or 'topic-pattern', not both".into(),
            });
        }
        (None, None) => {
            return Err(OptionError {
                at: None,
                message: "the kafka connector needs 'topic' (or 'topic-pattern')".into(),
            });
        }
    };
    let group = options
        .take("properties.group.id")
        .map_or_else(|| "sluice".to_string(), |o| o.value.clone());
    let start = match options.take("scan.startup.mode") {
        None => StartFrom::Earliest,
        Some(mode) => match mode.value.as_str() {
            "earliest-offset" => StartFrom::Earliest,
            "latest-offset" => StartFrom::Latest,
            "group-offsets" => StartFrom::Group,
            "timestamp" => StartFrom::Timestamp(
                options
                    .number("scan.startup.timestamp-millis")?
                    .ok_or_else(|| OptionError {
                        at: Some(mode.at),
                        message: "'scan.startup.mode' = 'timestamp' needs \
                                  'scan.startup.timestamp-millis'"
                            .into(),
                    })?,
            ),
            other => {
                return Err(OptionError {
                    at: Some(mode.at),
                    message: format!(
                        "scan.startup.mode '{other}': use 'earliest-offset', 'latest-offset', \
                         'group-offsets' or 'timestamp'"
                    ),
                });
            }
        },
    };
    let bounded = match options.take("scan.bounded.mode") {
        None => None,
        Some(mode) => match mode.value.as_str() {
            "unbounded" => None,
            "latest-offset" => Some(Bounded::Latest),
            other => {
                return Err(OptionError {
                    at: Some(mode.at),
                    message: format!(
                        "scan.bounded.mode '{other}': use 'unbounded' or 'latest-offset'"
                    ),
                });
            }
        },
    };
    let format = format(&mut options)?;
    let partition_discovery = options
        .parsed("scan.topic-partition-discovery.interval", DurationMs::parse)?
        .unwrap_or(DurationMs(30_000));
    let properties = properties(&mut options);
    let metadata = metadata(table)?;
    let columns = match format {
        FormatSpec::Raw => Vec::new(),
        _ => declared_columns(table)?,
    };
    options.finish("kafka", &SOURCE_OPTIONS)?;
    Ok(SourceSpec::Kafka(Box::new(KafkaSourceSpec {
        bootstrap,
        topics,
        group,
        start,
        bounded,
        format,
        columns,
        metadata,
        properties,
        batch_rows: None,
        partition_discovery,
    })))
}

/// The Kafka sink `table` writes.
pub(super) fn sink(mut options: Options) -> Result<SinkSpec, OptionError> {
    let bootstrap = options
        .required("properties.bootstrap.servers", "kafka")?
        .value
        .clone();
    let topic = options.required("topic", "kafka")?;
    if topic.value.contains(';') {
        return Err(OptionError {
            at: Some(topic.at),
            message: "a sink writes one topic".into(),
        });
    }
    let format = format(&mut options)?;
    let key = options
        .take("key.fields")
        .map(|o| Names::Many(list(&o.value)));
    let delivery = match options.take("sink.delivery-guarantee") {
        None => Delivery::AtLeastOnce,
        Some(guarantee) => match guarantee.value.as_str() {
            "at-least-once" | "none" => Delivery::AtLeastOnce,
            "exactly-once" => Delivery::ExactlyOnce,
            other => {
                return Err(OptionError {
                    at: Some(guarantee.at),
                    message: format!(
                        "sink.delivery-guarantee '{other}': use 'at-least-once' or 'exactly-once'"
                    ),
                });
            }
        },
    };
    let properties = properties(&mut options);
    options.finish("kafka", &SINK_OPTIONS)?;
    Ok(SinkSpec::Kafka(Box::new(KafkaSinkSpec {
        bootstrap,
        topic: topic.value.clone(),
        key,
        format,
        headers: BTreeMap::new(),
        timestamp: None,
        properties,
        delivery,
    })))
}

/// `a;b` as names, as Flink lists topics and key fields.
fn list(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}

fn format(options: &mut Options) -> Result<FormatSpec, OptionError> {
    let format = options.required("format", "kafka")?;
    let spec = match format.value.as_str() {
        "json" => FormatSpec::Json,
        "raw" => FormatSpec::Raw,
        "csv" => {
            let delimiter = options
                .parsed("csv.field-delimiter", |text| {
                    let mut chars = text.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Ok(c),
                        _ => Err("expected one character".to_string()),
                    }
                })?
                .unwrap_or(',');
            FormatSpec::Csv(CsvOptions { delimiter })
        }
        other => {
            return Err(OptionError {
                at: Some(format.at),
                message: format!(
                    "kafka format '{other}': use 'json', 'csv' or 'raw' (Avro: a job file's \
                     `format = {{ type = \"avro\", ... }}`)"
                ),
            });
        }
    };
    Ok(spec)
}

/// The `properties.*` options other than the ones mapped to settings, without the prefix.
fn properties(options: &mut Options) -> BTreeMap<String, String> {
    options
        .take_prefixed("properties.")
        .into_iter()
        .map(|option| {
            let key = option.key["properties.".len()..].to_string();
            (key, option.value.clone())
        })
        .collect()
}

/// The table's `METADATA` columns as the message properties the source reads.
fn metadata(table: &CreateTable) -> Result<Vec<MetadataColumn>, OptionError> {
    let mut columns = Vec::new();
    for column in &table.columns {
        let ColumnKind::Metadata { key, .. } = &column.kind else {
            continue;
        };
        let key = key.clone().unwrap_or_else(|| column.name.value.clone());
        let property = metadata_column(&key).ok_or_else(|| OptionError {
            at: Some(column.name.span.start),
            message: format!(
                "column `{}`: the kafka connector has no metadata '{key}'; it has 'timestamp', \
                 'partition', 'offset', 'topic' and 'key'",
                column.name.value
            ),
        })?;
        if !columns.contains(&property) {
            columns.push(property);
        }
    }
    Ok(columns)
}

/// The message property Flink's metadata key `key` names.
pub(super) fn metadata_column(key: &str) -> Option<MetadataColumn> {
    let column = match key {
        "timestamp" => MetadataColumn::Timestamp,
        "partition" => MetadataColumn::Partition,
        "offset" => MetadataColumn::Offset,
        "topic" => MetadataColumn::Topic,
        "key" => MetadataColumn::Key,
        _ => return None,
    };
    Some(column)
}
