//! `sluice run`: builds the pipeline, shows progress on a terminal, prints the summary.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sluice::job::{BackendChoice, JobFile};
use sluice_engine::metrics::{Metrics, RunSummary};
use sluice_engine::runtime::RunOptions;
use tokio::sync::watch;

use super::progress::{format_summary, progress_line};

/// Runs `jobs` (one pipeline, or a statement set's) side by side to completion; exit status
/// 130 when interrupted. A run that stopped because its source's partitions changed (a
/// checkpoint was taken) is run again over all of them.
pub fn run(jobs: &[JobFile], backend: BackendChoice, quiet: bool) -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    // One stop request for every run: a Ctrl-C between two runs stops the next at once.
    let (cancel_tx, cancel) = watch::channel(false);
    runtime.spawn(async move {
        stop_requested().await;
        let _ = cancel_tx.send(true);
    });
    // The progress line is one job's: a statement set's pipelines print their summaries only.
    let progress = jobs.len() == 1;
    let codes = std::thread::scope(|scope| {
        let runs: Vec<_> = jobs
            .iter()
            .map(|job| {
                let (runtime, cancel) = (&runtime, cancel.clone());
                scope.spawn(move || run_to_end(job, backend, quiet, progress, runtime, cancel))
            })
            .collect();
        runs.into_iter()
            .map(|run| {
                run.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a pipeline's thread panicked")))
            })
            .collect::<Vec<Result<ExitCode>>>()
    });
    // The first failure is the job's; an interrupted pipeline makes the job interrupted.
    let mut status = ExitCode::SUCCESS;
    for code in codes {
        let code = code?;
        if code != ExitCode::SUCCESS {
            status = code;
        }
    }
    Ok(status)
}

/// Runs one pipeline until it ends, again while its partitions change.
fn run_to_end(
    job: &JobFile,
    backend: BackendChoice,
    quiet: bool,
    progress: bool,
    runtime: &tokio::runtime::Runtime,
    cancel: watch::Receiver<bool>,
) -> Result<ExitCode> {
    loop {
        let summary = run_once(job, backend, quiet, progress, runtime, cancel.clone())?;
        if let Some(why) = &summary.partitions_changed {
            eprintln!(
                "sluice: {why}; stopped at checkpoint {}, starting again to read them",
                summary
                    .checkpoint
                    .map_or_else(|| "none".to_string(), |id| id.to_string())
            );
            continue;
        }
        if !quiet {
            let summary = format_summary(&summary);
            match progress {
                true => eprintln!("{summary}"),
                false => eprintln!("sluice: {}:\n{summary}", job.name()),
            }
        }
        // A stop that ended in a checkpoint is graceful: a later run continues from it.
        return Ok(match (summary.cancelled, summary.checkpoint) {
            (true, Some(id)) => {
                if !quiet {
                    eprintln!(
                        "sluice: {} stopped at checkpoint {id}; run the job again to continue",
                        job.name()
                    );
                }
                ExitCode::SUCCESS
            }
            (true, None) => ExitCode::from(130),
            (false, _) => ExitCode::SUCCESS,
        });
    }
}

/// One run of `job`'s pipeline, with the progress line on a terminal.
fn run_once(
    job: &JobFile,
    backend: BackendChoice,
    quiet: bool,
    progress: bool,
    runtime: &tokio::runtime::Runtime,
    cancel: watch::Receiver<bool>,
) -> Result<RunSummary> {
    let pipeline = job.pipeline(backend)?;
    let threads = rayon_threads();
    if !quiet {
        eprintln!(
            "sluice: job `{}`, backend {} ({threads} CPU threads)",
            job.name(),
            pipeline.backend_label()
        );
    }
    let summary = runtime.block_on(async {
        let metrics = Arc::new(Metrics::default());
        let show = progress && !quiet && std::io::stderr().is_terminal();
        let reporter = show.then(|| {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tick.tick().await;
                    eprint!(
                        "\r\x1b[2K{}",
                        progress_line(&metrics.snapshot(), &metrics.lag(), started.elapsed())
                    );
                }
            })
        });
        let result = pipeline
            .run(RunOptions::new(metrics).with_cancel(cancel))
            .await;
        if let Some(reporter) = reporter {
            reporter.abort();
            eprint!("\r\x1b[2K");
        }
        result
    })?;
    Ok(summary)
}

/// Resolves on Ctrl-C or SIGTERM (how service managers and `kill` ask a job to stop).
pub(super) async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
