//! A Kafka sink: each output row one message (the row as JSON, CSV or Avro; the key, from
//! chosen columns, as a JSON object of them), at least once: every message is acknowledged by the
//! broker before a checkpoint completes and before the job ends, with an idempotent producer
//! so that its own retries never duplicate.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use sluice_engine::sink::{Sink, Staged};
use sluice_engine::{Error, Result};

use super::encode::{PayloadEncoder, json_rows};
use super::spec::KafkaSinkSpec;

/// How long a flush waits for the broker to acknowledge everything sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes rows as Kafka messages.
pub struct KafkaSink {
    name: String,
    topic: String,
    producer: BaseProducer<Deliveries>,
    values: PayloadEncoder,
    /// Indices of the key columns in the output; empty: messages without a key.
    key: Vec<usize>,
    headers: Vec<(String, String)>,
    /// The first delivery that failed since the last flush.
    failed: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
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

impl KafkaSink {
    /// Checks `spec` against the output `schema` (key columns exist, the format fits) and
    /// connects a producer; `setting` names the table (`sink`, `late`, `dead_letter`) in
    /// errors, and a schema file is read relative to `base_dir`.
    pub fn create(
        spec: &KafkaSinkSpec,
        schema: SchemaRef,
        setting: &str,
        base_dir: &Path,
    ) -> Result<Self> {
        spec.check(setting)?;
        let values = PayloadEncoder::new(&spec.format, &schema, setting, base_dir)?;
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
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &spec.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5");
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
        let sink = KafkaSink {
            name: format!("kafka {}", spec.topic),
            topic: spec.topic.clone(),
            producer,
            values,
            key,
            headers: spec
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            failed,
        };
        sink.check_topic(setting, &spec.bootstrap)?;
        Ok(sink)
    }

    /// Fails before any data moves when the broker cannot be reached or lacks the topic.
    fn check_topic(&self, setting: &str, bootstrap: &str) -> Result<()> {
        let metadata = self
            .producer
            .client()
            .fetch_metadata(Some(&self.topic), Duration::from_secs(10))
            .map_err(|e| Error::Sink {
                name: self.name.clone(),
                message: format!("cannot reach a Kafka broker at {bootstrap}: {e}"),
            })?;
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

    /// Waits until the broker has acknowledged every message sent so far.
    fn wait_for_acks(&mut self) -> Result<()> {
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| self.error(format!("waiting for the broker to acknowledge: {e}")))?;
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

    fn error(&self, message: impl Into<String>) -> Error {
        Error::Sink {
            name: self.name.clone(),
            message: message.into(),
        }
    }

    /// Sends one message, waiting for room in the producer's queue when it is full.
    fn send(&self, key: Option<&[u8]>, value: &[u8], headers: &OwnedHeaders) -> Result<()> {
        let mut record = BaseRecord::to(&self.topic)
            .payload(value)
            .headers(headers.clone());
        if let Some(key) = key {
            record = record.key(key);
        }
        let mut record = Some(record);
        while let Some(r) = record.take() {
            match self.producer.send(r) {
                Ok(()) => {}
                Err((e, r)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    // Backpressure: serve deliveries until the queue has room.
                    self.producer.poll(Duration::from_millis(10));
                    record = Some(r);
                }
                Err((e, _)) => return Err(self.error(format!("sending a message: {e}"))),
            }
        }
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
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
        let headers = self
            .headers
            .iter()
            .fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value.as_bytes()),
                })
            });
        for (i, value) in values.iter().enumerate() {
            let key = keys.as_ref().and_then(|k| k.get(i)).map(Vec::as_slice);
            self.send(key, value, &headers)?;
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    /// Hands what was written to the broker without waiting for it: the runtime flushes after
    /// every watermark step that emitted rows, and a round trip each time would cap a job at
    /// a few hundred steps a second. Deliveries that failed so far fail the job here.
    fn flush(&mut self) -> Result<()> {
        self.producer.poll(Duration::ZERO);
        self.check_deliveries()
    }

    /// Waits until the broker has acknowledged every message.
    fn close(&mut self) -> Result<()> {
        self.wait_for_acks()
    }

    /// At least once: everything written so far is acknowledged before the checkpoint
    /// completes; nothing is staged.
    fn prepare(&mut self, _epoch: u64) -> Result<Option<Staged>> {
        self.wait_for_acks()?;
        Ok(None)
    }
}
