//! Sources and sinks for sluice, built from the `[source]` and `[sink]` tables of a job file.
//!
//! - [`SourceSpec`] builds a seeded [`GeneratorSource`] or a file source ([`CsvSource`],
//!   [`JsonlSource`], [`ParquetSource`]) that turns unparsable records into dead letters;
//! - [`SinkSpec`] builds a sink: [`StdoutSink`], [`CsvSink`], [`JsonlSink`], [`ParquetSink`] or
//!   [`DiscardSink`]; for jobs with checkpoints, [`SinkSpec::build_exactly_once`] makes the file
//!   sinks publish one part file per checkpoint epoch, once that checkpoint has committed, in a
//!   local folder or an `s3://`, `gs://` or `az://` prefix.
//!
//! ```no_run
//! use std::path::Path;
//! use sluice_connectors::{SinkSpec, SourceSpec};
//! use sluice_engine::source::SourceContext;
//!
//! # fn demo() -> sluice_engine::Result<()> {
//! let source: SourceSpec = toml::from_str(
//!     r#"type = "generator"
//!        generator = "transactions"
//!        events = 1000"#,
//! ).expect("valid spec");
//! let source = source.build(Path::new("."))?;
//! let mut sink = SinkSpec::Discard.build(source.schema(), Path::new("."))?;
//! for mut partition in source.open(&SourceContext::default())? {
//!     while let Some(batch) = partition.next_batch()? {
//!         sink.write(&batch.batch)?;
//!     }
//! }
//! sink.close()?;
//! # Ok(()) }
//! ```

mod file;
mod generator;
pub mod kafka;
#[cfg(test)]
mod resume;
mod sink;
mod spec;
mod table;

pub use file::{CsvSource, JsonlSource, ParquetSource};
pub use generator::GeneratorSource;
pub use sink::{CsvSink, DiscardSink, JsonlSink, ParquetSink, StdoutSink};
pub use spec::{
    ColumnSpec, ColumnType, FileSourceSpec, GeneratorKind, GeneratorSpec, SinkSpec, SourceSpec,
    StdoutFormat, timestamp_type,
};
pub use table::load_table;
