//! `sluice sql`: an interactive SQL prompt over a [`Session`], or a script on standard input.
//!
//! Definitions persist for the session; `SELECT` streams its rows to the terminal as tables
//! until its input ends or Ctrl-C stops it (back to the prompt); `EXPLAIN SELECT` prints the
//! plan; `INSERT INTO` runs a job into the table's sink. A statement ends with `;`.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use sluice::job::{BackendChoice, JobError, JobFile};
use sluice::sql::{Request, Session, ends_statement, split_statements};
use sluice_engine::metrics::Metrics;
use sluice_engine::runtime::RunOptions;
use tokio::sync::watch;

/// Runs the shell; statements come from the terminal, or from standard input when it is not one.
pub fn shell(backend: Option<BackendChoice>) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let mut shell = Shell {
        session: Session::new(std::env::current_dir().context("the current folder")?),
        backend,
        runtime,
        interactive: std::io::stdin().is_terminal(),
    };
    if shell.interactive {
        shell.prompt()
    } else {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading SQL from standard input")?;
        Ok(if shell.execute_all(&text) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

struct Shell {
    session: Session,
    backend: Option<BackendChoice>,
    runtime: tokio::runtime::Runtime,
    interactive: bool,
}

impl Shell {
    /// Reads statements at a prompt, with history, until Ctrl-D.
    fn prompt(&mut self) -> Result<ExitCode> {
        let mut editor = DefaultEditor::new().context("opening the terminal")?;
        let history = std::env::var_os("HOME")
            .map(|home| std::path::Path::new(&home).join(".sluice_history"));
        if let Some(history) = &history {
            let _ = editor.load_history(history);
        }
        eprintln!("sluice sql: statements end with `;`, Ctrl-C stops a query, Ctrl-D leaves.");
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.is_empty() {
                "sluice> "
            } else {
                "     -> "
            };
            match editor.readline(prompt) {
                Ok(line) => {
                    buffer.push_str(&line);
                    buffer.push('\n');
                    if ends_statement(&buffer) {
                        let _ = editor.add_history_entry(buffer.trim_end());
                        self.execute_all(&buffer);
                        buffer.clear();
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(err) => return Err(err).context("reading a line"),
            }
        }
        if let Some(history) = &history {
            let _ = editor.save_history(history);
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Executes every statement of `text` in order; an error is printed and the next runs.
    /// Whether all succeeded.
    fn execute_all(&mut self, text: &str) -> bool {
        let statements = match split_statements(text) {
            Ok(statements) => statements,
            Err(err) => {
                eprintln!("error: {err}");
                return false;
            }
        };
        let mut ok = true;
        for statement in statements {
            if let Err(err) = self.execute(statement) {
                // A SQL error shows its line and caret; the session's path says nothing.
                match err.downcast_ref::<JobError>() {
                    Some(JobError::Sql { error, .. }) => eprintln!("error: {error}"),
                    _ => eprintln!("error: {err:#}"),
                }
                ok = false;
            }
        }
        ok
    }

    fn execute(&mut self, sql: &str) -> Result<()> {
        match Session::request(sql) {
            Request::Define => {
                self.session.define(sql)?;
                if self.interactive {
                    eprintln!("ok");
                }
            }
            Request::Explain(select) => {
                let job = self.session.query(select, "blackhole")?;
                println!("{}", job.explain(self.backend(&job))?);
            }
            Request::Query(select) => {
                let job = self.session.query(select, "print")?;
                let rows = self.run(&job)?;
                eprintln!("{rows} row(s)");
            }
            Request::Insert => {
                let job = self.session.insert(sql)?;
                if job.explain {
                    println!("{}", job.explain(self.backend(&job))?);
                } else {
                    let rows = self.run(&job)?;
                    eprintln!("{rows} row(s) written");
                }
            }
        }
        Ok(())
    }

    fn backend(&self, job: &JobFile) -> BackendChoice {
        self.backend.unwrap_or(job.spec.backend)
    }

    /// Runs `job` (a statement set: its pipelines side by side) until its input ends or
    /// Ctrl-C; the number of rows it wrote.
    fn run(&self, job: &JobFile) -> Result<u64> {
        let backend = self.backend(job);
        let pipelines = job
            .pipelines()
            .iter()
            .map(|file| file.pipeline(backend))
            .collect::<Result<Vec<_>, _>>()?;
        let (cancel_tx, cancel) = watch::channel(false);
        let stop = self.runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = cancel_tx.send(true);
            }
        });
        let runtime = &self.runtime;
        let results = std::thread::scope(|scope| {
            let runs: Vec<_> = pipelines
                .into_iter()
                .map(|pipeline| {
                    let cancel = cancel.clone();
                    scope.spawn(move || {
                        let options =
                            RunOptions::new(Arc::new(Metrics::default())).with_cancel(cancel);
                        runtime.block_on(pipeline.run(options))
                    })
                })
                .collect();
            runs.into_iter().map(|run| run.join()).collect::<Vec<_>>()
        });
        stop.abort();
        let mut rows = 0;
        for result in results {
            let summary = result.map_err(|_| anyhow::anyhow!("a pipeline's thread panicked"))??;
            rows += summary.counts.events_out;
        }
        Ok(rows)
    }
}
