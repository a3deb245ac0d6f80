//! Kafka: topics read partition by partition, each a watermark partition that resumes from the
//! offset its checkpoint holds, messages decoded column-wise into Arrow batches.
//!
//! - [`KafkaRecord`]: one message as the decoders see it, borrowed from the client's buffers;
//! - [`format`]: `format = "json" | "csv" | "avro" | "raw"`, the payload's columns plus the
//!   metadata columns a job asks for, and a dead letter for each message that does not decode.

pub mod format;
mod record;

pub use format::{FormatSpec, MetadataColumn, PayloadDecoder};
pub use record::KafkaRecord;
