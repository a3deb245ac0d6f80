//! `sluice checkpoints JOB`: lists a job's complete checkpoints, or deletes one.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use sluice::job::JobFile;
use sluice_engine::checkpoint::{CheckpointStore, JobState, Resume};

/// Prints one line per complete checkpoint (oldest first), or deletes checkpoint `delete`;
/// a statement set's pipelines each have their own checkpoints, listed one after the other.
pub fn checkpoints(job: &JobFile, delete: Option<u64>) -> Result<ExitCode> {
    let pipelines = job.pipelines();
    if pipelines.len() == 1 {
        return pipeline_checkpoints(job, delete);
    }
    if delete.is_some() {
        bail!(
            "{}: the {} pipelines of this statement set number their checkpoints apart; \
             delete one in its own folder with `sluice checkpoints` on a script of that INSERT",
            job.path.display(),
            pipelines.len()
        );
    }
    for pipeline in &pipelines {
        println!("{}:", pipeline.name());
        pipeline_checkpoints(pipeline, None)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// [`checkpoints`] of one pipeline.
fn pipeline_checkpoints(job: &JobFile, delete: Option<u64>) -> Result<ExitCode> {
    let Some(spec) = job.checkpoint_spec(Resume::Latest) else {
        bail!(
            "{}: the job has no [checkpoint] section",
            job.path.display()
        );
    };
    let store = CheckpointStore::open(&spec.location)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    if let Some(id) = delete {
        if !runtime.block_on(store.folders())?.contains(&id) {
            bail!(
                "there is no checkpoint {id} at {} (`sluice checkpoints {}` lists them)",
                spec.location,
                job.path.display()
            );
        }
        runtime.block_on(store.delete(id))?;
        println!("deleted checkpoint {id} at {}", spec.location);
        return Ok(ExitCode::SUCCESS);
    }
    let manifests = runtime.block_on(store.list())?;
    if manifests.is_empty() {
        println!("no checkpoints at {}", spec.location);
        return Ok(ExitCode::SUCCESS);
    }
    println!("checkpoints at {} (newest last):", spec.location);
    for m in manifests {
        let time = arrow::temporal_conversions::timestamp_ms_to_datetime(m.created_unix_ms as i64)
            .map_or_else(
                || "?".to_string(),
                |t| format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S%.3f")),
            );
        let sources = match serde_json::from_value::<JobState>(m.info.clone()) {
            Ok(state) => state
                .sources
                .iter()
                .map(|(name, p)| {
                    format!(
                        "{name} @ {} ({} records)",
                        p.position.offset, p.position.records
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
            Err(_) => "(not a job checkpoint)".into(),
        };
        println!(
            "  id {}  {time}  epoch {}  {} bytes  sources: {sources}",
            m.id,
            m.epoch,
            m.bytes()
        );
    }
    Ok(ExitCode::SUCCESS)
}
