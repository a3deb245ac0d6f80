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

/// Runs `job` to completion; exit status 130 when interrupted.
pub fn run(job: &JobFile, backend: BackendChoice, quiet: bool) -> Result<ExitCode> {
    let pipeline = job.pipeline(backend)?;
    let threads = rayon_threads();
    if !quiet {
        eprintln!(
            "sluice: job `{}`, backend {} ({threads} CPU threads)",
            job.name(),
            pipeline.backend_label()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let summary: RunSummary = runtime.block_on(async {
        let metrics = Arc::new(Metrics::default());
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tokio::spawn(async move {
            stop_requested().await;
            let _ = cancel_tx.send(true);
        });
        let show = !quiet && std::io::stderr().is_terminal();
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
            .run(RunOptions::new(metrics).with_cancel(cancel_rx))
            .await;
        if let Some(reporter) = reporter {
            reporter.abort();
            eprint!("\r\x1b[2K");
        }
        result
    })?;
    if !quiet {
        eprintln!("{}", format_summary(&summary));
    }
    // A stop that ended in a checkpoint is graceful: a later run continues from it.
    Ok(match (summary.cancelled, summary.checkpoint) {
        (true, Some(id)) => {
            if !quiet {
                eprintln!("sluice: stopped at checkpoint {id}; run the job again to continue");
            }
            ExitCode::SUCCESS
        }
        (true, None) => ExitCode::from(130),
        (false, _) => ExitCode::SUCCESS,
    })
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
