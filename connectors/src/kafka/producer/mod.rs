//! The producer behind both Kafka sinks: rows encoded as message values (and keys), sent with
//! backpressure, deliveries checked, watermark markers of a repartition topic; and, for the
//! exactly-once sink, the transaction calls (`transactions`).

mod transactions;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use sluice_engine::{Error, Result};

use super::encode::{PayloadEncoder, json_rows};
use super::spec::KafkaSinkSpec;

/// How long a flush waits for the broker.
const BROKER_TIMEOUT: Duration = Duration::from_secs(60);

/// Encodes rows and sends them to one topic.
pub(super) struct KafkaWriter {
    pub(super) name: String,
    topic: String,
    producer: BaseProducer<Deliveries>,
    values: PayloadEncoder,
    /// Indices of the key columns in the output; empty: messages without a key.
    key: Vec<usize>,
    /// The column giving each message's timestamp.
    timestamp: Option<usize>,
    /// The configured headers; `None` when there are none, so that messages carry no header
    /// list (librdkafka takes a copy of one per message).
    headers: Option<OwnedHeaders>,
    /// How long a transaction call (init, commit, abort) waits: the transaction timeout
    /// (`transaction.timeout.ms` in `properties`, else librdkafka's default of 60 s).
    transaction_timeout: Duration,
    /// The headers of the open transaction: `headers` and its epoch and attempt.
    stamped: Option<OwnedHeaders>,
    /// The first delivery that failed since the last check.
    failed: Arc<Mutex<Option<String>>>,
    /// The topic's partitions, once watermarks were sent to them.
    partitions: Option<i32>,
    /// An abort that did not finish (it timed out): librdkafka wants it called again before
    /// the next transaction begins.
    aborting: bool,
}

impl std::fmt::Debug for KafkaWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaWriter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Remembers the first failed delivery for the sink to report.
struct Deliveries {
    failed: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result
            && let Ok(mut failed) = self.failed.lock()
        {
            failed.get_or_insert_with(|| e.to_string());
        }
    }
}

impl KafkaWriter {
    /// Checks `spec` against the output `schema` (key columns exist, the format fits) and
    /// connects an idempotent producer, transactional under `transactional_id` when given;
    /// `setting` names the table (`sink`, `late`, `dead_letter`) in errors.
    pub(super) fn create(
        spec: &KafkaSinkSpec,
        schema: &SchemaRef,
        setting: &str,
        base_dir: &Path,
        transactional_id: Option<&str>,
    ) -> Result<Self> {
        let values = PayloadEncoder::new(&spec.format, schema, setting, base_dir)?;
        let key = spec
            .key
            .as_ref()
            .map(super::spec::Names::names)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                schema.index_of(name).map_err(|_| {
                    let columns: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    Error::config(
                        format!("{setting}.key[{i}]"),
                        format!("no column `{name}` (the output has {})", columns.join(", ")),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let timestamp = spec
            .timestamp
            .as_ref()
            .map(|name| timestamp_column(schema, name, setting))
            .transpose()?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &spec.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
        if let Some(id) = transactional_id {
            config.set("transactional.id", id);
        }
        for (k, v) in &spec.properties {
            config.set(k, v);
        }
        let failed = Arc::new(Mutex::new(None));
        let producer = config
            .create_with_context(Deliveries {
                failed: failed.clone(),
            })
            .map_err(|e| {
                Error::config(
                    format!("{setting}.properties"),
                    format!("the Kafka client refuses its settings: {e}"),
                )
            })?;
        let writer = KafkaWriter {
            name: format!("kafka {}", spec.topic),
            topic: spec.topic.clone(),
            producer,
            values,
            key,
            timestamp,
            headers: (!spec.headers.is_empty()).then(|| {
                spec.headers
                    .iter()
                    .fold(OwnedHeaders::new(), |h, (key, value)| {
                        h.insert(Header {
                            key,
                            value: Some(value.as_bytes()),
                        })
                    })
            }),
            stamped: None,
            transaction_timeout: Duration::from_millis(
                spec.properties
                    .get("transaction.timeout.ms")
                    .and_then(|ms| ms.parse().ok())
                    .unwrap_or(60_000),
            ),
            failed,
            partitions: None,
            aborting: false,
        };
        writer.check_topic(setting, &spec.bootstrap)?;
        Ok(writer)
    }

    /// Fails before any data moves when the broker cannot be reached or lacks the topic.
    fn check_topic(&self, setting: &str, bootstrap: &str) -> Result<()> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .map_err(|e| self.error(format!("cannot reach a Kafka broker at {bootstrap}: {e}")))?;
        let found = metadata
            .topics()
            .iter()
            .any(|t| t.name() == self.topic && t.error().is_none() && !t.partitions().is_empty());
        if found {
            Ok(())
        } else {
            Err(Error::config(
                format!("{setting}.topic"),
                format!("the broker at {bootstrap} has no topic `{}`", self.topic),
            ))
        }
    }

    pub(super) fn error(&self, message: impl Into<String>) -> Error {
        Error::Sink {
            name: self.name.clone(),
            message: message.into(),
        }
    }

    fn failed<'a>(&'a self, doing: &'a str) -> impl Fn(KafkaError) -> Error + 'a {
        move |e| self.error(format!("{doing}: {e}"))
    }

    /// Sends every row of `batch` as one message (not waiting for acknowledgements).
    pub(super) fn send_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let values = self.values.encode(batch)?;
        let keys = if self.key.is_empty() {
            None
        } else {
            let keyed = batch
                .project(&self.key)
                .map_err(Error::arrow("selecting the message key columns"))?;
            Some(json_rows(&keyed)?)
        };
        let times = match self.timestamp {
            Some(column) => {
                let ms = arrow::compute::cast(batch.column(column), &DataType::Int64)
                    .map_err(Error::arrow("reading the message timestamp column"))?;
                Some(ms.as_primitive::<Int64Type>().clone())
            }
            None => None,
        };
        for (i, value) in values.iter().enumerate() {
            let key = keys.as_ref().and_then(|k| k.get(i)).map(Vec::as_slice);
            let time = times
                .as_ref()
                .and_then(|t| t.is_valid(i).then(|| t.value(i)));
            self.send(key, value, time)?;
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Sends one message, waiting for room in the producer's queue when it is full.
    fn send(&self, key: Option<&[u8]>, value: &[u8], time: Option<i64>) -> Result<()> {
        let mut record = BaseRecord::to(&self.topic).payload(value);
        if let Some(headers) = self.stamped.as_ref().or(self.headers.as_ref()) {
            record = record.headers(headers.clone());
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(time) = time {
            record = record.timestamp(time);
        }
        self.enqueue(record)
    }

    /// Hands `record` to the producer, serving deliveries while its queue is full
    /// (backpressure).
    fn enqueue(&self, record: BaseRecord<'_, [u8], [u8]>) -> Result<()> {
        let mut record = Some(record);
        while let Some(r) = record.take() {
            match self.producer.send(r) {
                Ok(()) => {}
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    self.producer.poll(Duration::from_millis(10));
                    record = Some(r);
                }
                Err((e, _)) => return Err(self.error(format!("sending a message: {e}"))),
            }
        }
        Ok(())
    }

    /// Sends a watermark marker from `writer` (one of `writers`) to every partition of the
    /// topic, after what was sent before it (a repartition topic; see `watermarks`).
    pub(super) fn send_watermark(
        &mut self,
        writer: &str,
        writers: usize,
        watermark: i64,
    ) -> Result<()> {
        let partitions = match self.partitions {
            Some(n) => n,
            None => {
                let metadata = self
                    .producer
                    .client()
                    .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
                    .map_err(self.failed("listing the topic's partitions"))?;
                let n = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == self.topic)
                    .map_or(0, |t| t.partitions().len() as i32);
                *self.partitions.insert(n)
            }
        };
        let headers = super::watermarks::marker(writer, writers, watermark);
        for partition in 0..partitions {
            let record = BaseRecord::to(&self.topic)
                .partition(partition)
                .payload(&[][..])
                .headers(headers.clone());
            self.enqueue(record)?;
        }
        Ok(())
    }

    /// Serves delivery reports without waiting; fails when a delivery failed so far.
    pub(super) fn poll(&self) -> Result<()> {
        self.producer.poll(Duration::ZERO);
        self.check_deliveries()
    }

    /// Waits until the broker has acknowledged every message sent so far.
    pub(super) fn wait_for_acks(&self) -> Result<()> {
        self.producer
            .flush(BROKER_TIMEOUT)
            .map_err(self.failed("waiting for the broker to acknowledge"))?;
        self.check_deliveries()
    }

    /// Fails when a message could not be delivered (after the producer's own retries).
    fn check_deliveries(&self) -> Result<()> {
        let failed = self
            .failed
            .lock()
            .map_err(|_| Error::Internal("a Kafka sink's delivery record is poisoned".into()))?
            .take();
        match failed {
            None => Ok(()),
            Some(why) => Err(self.error(format!("a message was not delivered: {why}"))),
        }
    }
}

/// The index of `name` in `schema`, which must hold times: a timestamp or integer epoch ms.
fn timestamp_column(schema: &SchemaRef, name: &str, setting: &str) -> Result<usize> {
    let setting = format!("{setting}.timestamp");
    let index = schema.index_of(name).map_err(|_| {
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        Error::config(
            &setting,
            format!("no column `{name}` (the output has {})", columns.join(", ")),
        )
    })?;
    match schema.field(index).data_type() {
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Int64 => Ok(index),
        other => Err(Error::config(
            &setting,
            format!("`{name}` is {other}, not a timestamp or integer epoch milliseconds"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn the_timestamp_column_must_exist_and_hold_times() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new(
                "window_end",
                DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
                false,
            ),
            Field::new("ms", DataType::Int64, false),
            Field::new("card", DataType::Utf8, false),
        ]));
        assert_eq!(
            timestamp_column(&schema, "window_end", "sink").ok(),
            Some(0)
        );
        assert_eq!(timestamp_column(&schema, "ms", "sink").ok(), Some(1));
        let err = timestamp_column(&schema, "card", "late")
            .expect_err("text")
            .to_string();
        assert!(err.starts_with("late.timestamp: `card` is Utf8"), "{err}");
        let err = timestamp_column(&schema, "ts", "sink")
            .expect_err("missing")
            .to_string();
        assert!(
            err.starts_with("sink.timestamp: no column `ts` (the output has window_end, ms, card)"),
            "{err}"
        );
    }
}
