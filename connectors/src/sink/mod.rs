//! Sinks: where a job's output batches go (stdout, CSV, JSON lines, Parquet, nowhere).
//!
//! File sinks create their file and its parent folders when built, so a bad path fails before
//! any data moves, and every error names the path. Each file sink writes either one file
//! directly or, through [`PartSink`], exactly-once part files published per checkpoint epoch
//! in a local folder or an object-store prefix.

mod csv;
mod discard;
mod jsonl;
mod local_parts;
mod object_parts;
#[cfg(test)]
mod outputs;
mod parquet;
mod parts;
mod spool;
mod stdout;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use sluice_engine::{Error, Result};

pub use csv::CsvSink;
pub use discard::DiscardSink;
pub use jsonl::JsonlSink;
pub use parquet::ParquetSink;
pub(crate) use parts::{PartSink, open_output};
pub use stdout::StdoutSink;

/// Creates (or truncates) `path` and its parent folders, buffered.
fn create_file(path: &Path) -> Result<BufWriter<File>> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
    }
    let file = File::create(path).map_err(Error::io(path))?;
    Ok(BufWriter::with_capacity(1 << 20, file))
}

/// An error of the sink writing `path`.
fn sink_error<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> Error + '_ {
    move |e| Error::Sink {
        name: path.display().to_string(),
        message: e.to_string(),
    }
}
