//! File sources: CSV, JSON lines and Parquet, one partition per file.
//!
//! A source's `path` names a file, a glob or a directory ([`paths`]). Text formats turn records
//! they cannot parse into dead letters located by line instead of failing ([`text`]).

mod convert;
mod csv;
mod infer;
mod jsonl;
mod lines;
mod parquet;
mod paths;
mod quoting;
mod records;
mod schema;
mod text;

pub use csv::CsvSource;
pub use jsonl::JsonlSource;
pub use parquet::ParquetSource;

// Shared with the Kafka payload formats, which read the same JSON and CSV values.
pub(crate) use convert::{check_time_ranges, parse_column, parse_columns, type_name};
pub(crate) use infer::json_columns;
pub(crate) use jsonl::json_reason;
pub(crate) use schema::{Order, normalise, with_declared};

/// How many records of the first file schema inference looks at.
const INFER_RECORDS: usize = 1_000;

/// Reads every partition of `source` in order: (partition name, batches).
#[cfg(test)]
pub(crate) fn read_all(
    source: Box<dyn sluice_engine::source::Source>,
    batch_rows: usize,
) -> Vec<(String, Vec<sluice_engine::source::SourceBatch>)> {
    let ctx = sluice_engine::source::SourceContext {
        batch_rows,
        projection: None,
    };
    let partitions = source.open(&ctx).expect("open");
    partitions
        .into_iter()
        .map(|mut p| {
            (
                p.name(),
                std::iter::from_fn(|| p.next_batch().expect("next batch")).collect(),
            )
        })
        .collect()
}
