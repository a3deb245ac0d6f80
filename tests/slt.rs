//! SQL behaviour as data: every `tests/slt/*.slt` file (the sqllogictest format) runs through
//! a [`Session`] (the `sluice sql` shell's), which keeps the `CREATE` and `SET` statements and
//! plans each query as a job; here it writes to memory, on every backend (the CPU, and the GPU
//! when present), which must give the same rows. `EXPLAIN <query>` returns the plan's lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice::job::{BackendChoice, JobFile};
use sluice::sql::{Request, Session};
use sluice_engine::backend::Backend;
use sluice_engine::memory::CollectSink;
use sqllogictest::{DBOutput, DefaultColumnType};

/// A session as the shell has one; queries run into memory on every backend.
struct SltSession(Session);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SessionError(String);

type Rows = (Vec<DefaultColumnType>, Vec<Vec<String>>);

fn failed(err: impl std::fmt::Display) -> SessionError {
    SessionError(err.to_string())
}

impl sqllogictest::DB for SltSession {
    type Error = SessionError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SessionError> {
        match Session::request(sql) {
            Request::Define => {
                self.0.define(sql).map_err(failed)?;
                Ok(DBOutput::StatementComplete(0))
            }
            Request::Explain(select) => {
                let job = self.0.query(select, "blackhole").map_err(failed)?;
                let plan = job.explain(BackendChoice::Cpu).map_err(failed)?;
                let rows = plan
                    .lines()
                    .map(|line| vec![line.trim_end().to_string()])
                    .collect();
                Ok(DBOutput::Rows {
                    types: vec![DefaultColumnType::Text],
                    rows,
                })
            }
            Request::Query(select) => {
                let job = self.0.query(select, "blackhole").map_err(failed)?;
                query(&job)
            }
            Request::Insert => {
                // A whole job: it runs with its own sink.
                let job = self.0.insert(sql).map_err(failed)?;
                let pipeline = job.pipeline(BackendChoice::Cpu).map_err(failed)?;
                let summary = pipeline.run_blocking().map_err(failed)?;
                Ok(DBOutput::StatementComplete(summary.counts.events_out))
            }
        }
    }

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

/// Runs a query's job into memory on every backend; they must give the same rows.
fn query(job: &JobFile) -> Result<DBOutput<DefaultColumnType>, SessionError> {
    let mut first: Option<(String, Rows)> = None;
    for backend in crate::common::backends() {
        let name = backend.name().to_string();
        let rows = rows(&run(job, backend)?)?;
        match &first {
            None => first = Some((name, rows)),
            Some((first_name, first_rows)) => {
                let sorted = |rows: &[Vec<String>]| {
                    let mut rows = rows.to_vec();
                    rows.sort();
                    rows
                };
                if sorted(&first_rows.1) != sorted(&rows.1) {
                    return Err(SessionError(format!(
                        "{first_name} and {name} disagree:\n{:?}\n{:?}",
                        first_rows.1, rows.1
                    )));
                }
            }
        }
    }
    let (types, rows) = first.map(|(_, rows)| rows).unwrap_or_default();
    Ok(DBOutput::Rows { types, rows })
}

/// Runs `job` on `backend` into memory.
fn run(job: &JobFile, backend: Arc<dyn Backend>) -> Result<RecordBatch, SessionError> {
    let builder = job.builder_on(backend).map_err(failed)?;
    let schemas = builder.schemas().map_err(failed)?;
    let sink = CollectSink::new();
    let pipeline = builder
        .sink(Box::new(sink.clone()))
        .build()
        .map_err(failed)?;
    pipeline.run_blocking().map_err(failed)?;
    sink.concat(&schemas.output).map_err(failed)
}

/// The batch as sqllogictest rows: `NULL` for nulls, Arrow's display for the rest.
fn rows(batch: &RecordBatch) -> Result<Rows, SessionError> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(failed)?;
    let rows = (0..batch.num_rows())
        .map(|row| {
            formatters
                .iter()
                .map(|f| f.value(row).to_string())
                .collect()
        })
        .collect();
    let types = batch
        .schema()
        .fields()
        .iter()
        .map(|field| match field.data_type() {
            t if t.is_integer() => DefaultColumnType::Integer,
            DataType::Float32 | DataType::Float64 => DefaultColumnType::FloatingPoint,
            _ => DefaultColumnType::Text,
        })
        .collect();
    Ok((types, rows))
}

#[test]
fn sql_logic_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "the .slt files are there: {files:?}");
    for file in files {
        let data = dir.join("data");
        let mut runner = sqllogictest::Runner::new(move || {
            let dir = data.clone();
            async move { Ok(SltSession(Session::new(dir))) }
        });
        if let Err(err) = runner.run_file(&file) {
            panic!("{}: {}", file.display(), err.display(true));
        }
    }
}
