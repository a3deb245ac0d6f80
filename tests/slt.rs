//! SQL behaviour as data: every `tests/slt/*.slt` file (the sqllogictest format) runs through
//! a session that keeps the script's `CREATE` and `SET` statements and plans each query as a
//! job writing to memory, on every backend (the CPU, and the GPU when present), which must
//! give the same rows. `EXPLAIN <query>` returns the plan's lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice::job::{BackendChoice, JobFile};
use sluice::sql::{Statement, parse_script};
use sluice_engine::backend::Backend;
use sluice_engine::memory::CollectSink;
use sqllogictest::{DBOutput, DefaultColumnType};

/// A SQL session: the `CREATE` and `SET` statements so far, prepended to every query.
struct Session {
    dir: PathBuf,
    ddl: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SessionError(String);

type Rows = (Vec<DefaultColumnType>, Vec<Vec<String>>);

impl sqllogictest::DB for Session {
    type Error = SessionError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SessionError> {
        let words: Vec<String> = sql
            .split_whitespace()
            .take(2)
            .map(str::to_ascii_uppercase)
            .collect();
        match words.first().map(String::as_str) {
            Some("SELECT" | "EXPLAIN") => self.query(sql),
            Some("INSERT") => {
                // A whole job: it runs with its own sink.
                let script = format!("{}{sql}", self.ddl);
                let job = JobFile::from_sql(&script, &self.dir.join("session.sql"), &[])
                    .map_err(|err| SessionError(err.to_string()))?;
                let pipeline = job
                    .pipeline(BackendChoice::Cpu)
                    .map_err(|err| SessionError(err.to_string()))?;
                let summary = pipeline
                    .run_blocking()
                    .map_err(|err| SessionError(err.to_string()))?;
                Ok(DBOutput::StatementComplete(summary.counts.events_out))
            }
            _ => {
                // DDL and SET: checked by the parser now, planned with the next query.
                let statements = parse_script(sql).map_err(|err| SessionError(err.to_string()))?;
                if statements.iter().any(|s| {
                    !matches!(s.statement, Statement::CreateTable(_) | Statement::Other(_))
                }) {
                    return Err(SessionError(format!("unexpected statement: {sql}")));
                }
                self.ddl.push_str(sql.trim_end().trim_end_matches(';'));
                self.ddl.push_str(";\n");
                Ok(DBOutput::StatementComplete(0))
            }
        }
    }

    fn engine_name(&self) -> &str {
        "sluice"
    }
}

impl Session {
    /// A query planned as `INSERT INTO` a table that discards rows, run into memory.
    fn query(&self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SessionError> {
        let trimmed = sql.trim_start();
        let explain = trimmed.to_ascii_uppercase().starts_with("EXPLAIN");
        let select = if explain {
            trimmed[7..].trim_start()
        } else {
            trimmed
        };
        let script = format!(
            "{}CREATE TABLE slt_out WITH ('connector' = 'blackhole');\nINSERT INTO slt_out\n{select}",
            self.ddl
        );
        let job = JobFile::from_sql(&script, &self.dir.join("session.sql"), &[])
            .map_err(|err| SessionError(err.to_string()))?;
        if explain {
            let plan = job
                .explain(BackendChoice::Cpu)
                .map_err(|err| SessionError(err.to_string()))?;
            let rows = plan
                .lines()
                .map(|line| vec![line.trim_end().to_string()])
                .collect();
            return Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Text],
                rows,
            });
        }
        let mut first: Option<(String, Rows)> = None;
        for backend in crate::common::backends() {
            let name = backend.name().to_string();
            let rows = rows(&run(&job, backend)?)?;
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
}

/// Runs `job` on `backend` into memory.
fn run(job: &JobFile, backend: Arc<dyn Backend>) -> Result<RecordBatch, SessionError> {
    let failed = |err: &dyn std::fmt::Display| SessionError(err.to_string());
    let builder = job.builder_on(backend).map_err(|e| failed(&e))?;
    let schemas = builder.schemas().map_err(|e| failed(&e))?;
    let sink = CollectSink::new();
    let pipeline = builder
        .sink(Box::new(sink.clone()))
        .build()
        .map_err(|e| failed(&e))?;
    pipeline.run_blocking().map_err(|e| failed(&e))?;
    sink.concat(&schemas.output).map_err(|e| failed(&e))
}

/// The batch as sqllogictest rows: `NULL` for nulls, Arrow's display for the rest.
fn rows(batch: &RecordBatch) -> Result<Rows, SessionError> {
    let options = FormatOptions::default().with_null("NULL");
    let formatters = batch
        .columns()
        .iter()
        .map(|column| ArrayFormatter::try_new(column.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| SessionError(err.to_string()))?;
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
            async move {
                Ok(Session {
                    dir,
                    ddl: String::new(),
                })
            }
        });
        if let Err(err) = runner.run_file(&file) {
            panic!("{}: {}", file.display(), err.display(true));
        }
    }
}
