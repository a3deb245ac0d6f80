//! A Kafka sink: each output row one message (the row as JSON, CSV or Avro; the key, from
//! chosen columns, as a JSON object of them), at least once: every message is acknowledged by
//! the broker before a checkpoint completes and before the job ends, with an idempotent
//! producer so that its own retries never duplicate.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_engine::Result;
use sluice_engine::sink::{Sink, Staged};

use super::producer::KafkaWriter;
use super::spec::KafkaSinkSpec;

/// Writes rows as Kafka messages, at least once.
#[derive(Debug)]
pub struct KafkaSink {
    out: KafkaWriter,
}

impl KafkaSink {
    /// Checks `spec` against the output `schema` (key columns exist, the format fits) and
    /// connects a producer; `setting` names the table (`sink`, `late`, `dead_letter`) in
    /// errors, and a schema file is read relative to `base_dir`. `delivery = "exactly_once"`
    /// is refused here: it needs checkpoints ([`super::TransactionalKafkaSink`]).
    pub fn create(
        spec: &KafkaSinkSpec,
        schema: SchemaRef,
        setting: &str,
        base_dir: &Path,
    ) -> Result<Self> {
        // Exactly-once Kafka sinks are `TransactionalKafkaSink`s; one here has no checkpoints.
        spec.check(setting, false)?;
        let out = KafkaWriter::create(spec, &schema, setting, base_dir, None)?;
        Ok(KafkaSink { out })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> String {
        self.out.name.clone()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.out.send_batch(batch)
    }

    /// Hands what was written to the broker without waiting for it: the runtime flushes after
    /// every watermark step that emitted rows, and a round trip each time would cap a job at
    /// a few hundred steps a second. Deliveries that failed so far fail the job here.
    fn flush(&mut self) -> Result<()> {
        self.out.poll()
    }

    /// Waits until the broker has acknowledged every message.
    fn close(&mut self) -> Result<()> {
        self.out.wait_for_acks()
    }

    /// At least once: everything written so far is acknowledged before the checkpoint
    /// completes; nothing is staged.
    fn prepare(&mut self, _epoch: u64) -> Result<Option<Staged>> {
        self.out.wait_for_acks()?;
        Ok(None)
    }
}
