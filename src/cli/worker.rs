//! `sluice run --worker` (or a job with `[cluster]`): runs the job as one worker of a group
//! and prints what it ran when it stops.

use std::process::ExitCode;

use anyhow::{Context, Result};
use sluice::job::{BackendChoice, JobFile};
use sluice::worker::run_worker;
use tokio::sync::watch;

use super::run::stop_requested;

/// Runs `job` as a worker until Ctrl-C / SIGTERM (or, bounded, until its partitions end).
pub fn run(job: &JobFile, backend: BackendChoice, quiet: bool) -> Result<ExitCode> {
    let backend = backend.open()?;
    if !quiet {
        eprintln!(
            "sluice: job `{}` as a worker, backend {}",
            job.name(),
            backend.name()
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let summary = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            stop_requested().await;
            let _ = stop_tx.send(true);
        });
        run_worker(job, backend, stop_rx, quiet).await
    })?;
    if !quiet {
        let events: u64 = summary
            .tasks
            .iter()
            .map(|(_, s)| s.counts.events_in.saturating_sub(s.earlier_events))
            .sum();
        let out: u64 = summary.tasks.iter().map(|(_, s)| s.counts.events_out).sum();
        eprintln!(
            "sluice: worker {} after {} task runs: {events} events in, {out} rows out",
            if summary.cancelled {
                "stopped"
            } else {
                "finished"
            },
            summary.tasks.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
