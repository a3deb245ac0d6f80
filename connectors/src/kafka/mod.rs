//! Kafka: topics read partition by partition, each a watermark partition that resumes from the
//! offset its checkpoint holds, messages decoded column-wise into Arrow batches.
//!
//! - [`KafkaSourceSpec`] (`[source] type = "kafka"`) builds a [`KafkaSource`]: every partition
//!   of its topics is a source partition with its own watermark and its offset in checkpoints;
//! - [`KafkaSinkSpec`] builds a [`KafkaSink`]: each output row one message (JSON, CSV or Avro),
//!   at least once; or, in a job with checkpoints and `delivery = "exactly_once"`, a
//!   [`TransactionalKafkaSink`]: a Kafka transaction per checkpoint epoch;
//! - [`KafkaRecord`]: one message as the decoders see it, borrowed from the client's buffers;
//! - [`GroupMember`]: a worker's membership of the consumer group that spreads partitions over
//!   the processes of a scaled-out job (`[cluster]`), each partition then read by a task;
//! - `assignment`: the consumer the partitions of a source share, assigned once at the first read;
//! - [`format`]: `format = "json" | "csv" | "avro" | "raw"`, the payload's columns plus the
//!   metadata columns a job asks for, and a dead letter for each message that does not decode.

mod assignment;
mod client;
mod discovery;
mod encode;
mod exactly_once;
pub mod format;
mod group;
mod producer;
mod record;
mod sink;
mod source;
mod spec;
mod watermarks;

pub use exactly_once::{TransactionScope, TransactionalKafkaSink};
pub use format::{FormatSpec, MetadataColumn, PayloadDecoder};
pub use group::{GroupMember, GroupSettings, Membership, ensure_topic};
pub use record::KafkaRecord;
pub use sink::KafkaSink;
pub use source::KafkaSource;
pub use spec::{Bounded, Delivery, KafkaSinkSpec, KafkaSourceSpec, Names, StartFrom};
