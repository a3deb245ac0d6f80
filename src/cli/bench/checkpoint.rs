//! The `checkpoint` workload: how big a checkpoint of one million keys of window state is,
//! how long taking it takes, and how long recovering from it takes.
//!
//! A window operator (the core query: 1 s tumbling count and sum per card) is filled with one
//! million distinct cards in one open window; then its state is copied out (read back from
//! the GPU on that backend), encoded as Arrow IPC and written to a checkpoint folder with its
//! manifest, exactly as a job's checkpoint does; recovery reads the newest checkpoint back,
//! verifies it, decodes it and restores a fresh operator, which must then close the same
//! million groups.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMillisecondArray};
use bytes::Bytes;
use serde::Serialize;
use sluice::bench_input::{START_MS, schema, spec};
use sluice_engine::backend::Backend;
use sluice_engine::checkpoint::{CheckpointStore, NewCheckpoint};
use sluice_engine::operator::{Emitted, Operator, WindowAggregateOperator};
use sluice_engine::state::{StateSnapshot, batch_from_ipc, batch_to_ipc};

/// Keys of window state checkpointed.
pub const KEYS: usize = 1_000_000;

/// One backend's checkpoint figures (medians over runs).
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointMeasurement {
    pub backend: String,
    pub device: String,
    pub keys: usize,
    /// Bytes of the checkpoint's files.
    pub bytes: u64,
    /// Copying the state out of the operator (and off the GPU).
    pub snapshot_ms: f64,
    /// Snapshot, Arrow IPC encoding and writing files and manifest: the whole checkpoint.
    pub checkpoint_ms: f64,
    /// Reading and verifying the newest checkpoint, decoding it, restoring a fresh operator.
    pub recovery_ms: f64,
}

/// Measures `runs` checkpoints and recoveries of [`KEYS`] keys on `backend` under `folder`.
pub fn run(
    backend: &Arc<dyn Backend>,
    runs: usize,
    folder: &std::path::Path,
) -> Result<CheckpointMeasurement> {
    let mut samples = Vec::with_capacity(runs);
    for run in 0..runs {
        let dir = folder.join(format!("{}-{run}", backend.name()));
        let _ = std::fs::remove_dir_all(&dir);
        samples.push(once(backend, &dir)?);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let median = |f: fn(&Sample) -> Duration| {
        let mut v: Vec<Duration> = samples.iter().map(f).collect();
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    Ok(CheckpointMeasurement {
        backend: backend.name().to_string(),
        device: backend.describe(),
        keys: KEYS,
        bytes: samples[0].bytes,
        snapshot_ms: median(|s| s.snapshot),
        checkpoint_ms: median(|s| s.checkpoint),
        recovery_ms: median(|s| s.recovery),
    })
}

struct Sample {
    bytes: u64,
    snapshot: Duration,
    checkpoint: Duration,
    recovery: Duration,
}

fn operator(backend: &Arc<dyn Backend>) -> Result<WindowAggregateOperator> {
    WindowAggregateOperator::try_new(&spec(), schema(), "ts", backend.as_ref(), "bench")
        .context("creating the window operator")
}

/// One million distinct cards, all in the first second of event time.
fn input() -> Result<RecordBatch> {
    let ts: Vec<i64> = (0..KEYS as i64).map(|i| START_MS + i % 1_000).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMillisecondArray::from(ts).with_timezone("UTC")),
        Arc::new(Int64Array::from_iter_values(0..KEYS as i64)),
        Arc::new(Int64Array::from_iter_values(
            (0..KEYS as i64).map(|i| i % 50_000),
        )),
    ];
    Ok(RecordBatch::try_new(schema(), columns)?)
}

fn once(backend: &Arc<dyn Backend>, dir: &std::path::Path) -> Result<Sample> {
    let mut original = operator(backend)?;
    original.process(input()?, &mut Emitted::default())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let store = CheckpointStore::open(&dir.display().to_string())?;
    // A GPU operator may still be applying the batch: let it finish untimed, so the figures
    // are of the checkpoint alone.
    original.snapshot()?;

    let begin = Instant::now();
    let state = original
        .snapshot()?
        .context("the window operator keeps state")?;
    let snapshot = begin.elapsed();
    let files = state
        .batches
        .iter()
        .map(|(name, batch)| Ok((format!("{name}.arrow"), Bytes::from(batch_to_ipc(batch)?))))
        .collect::<Result<Vec<_>>>()?;
    let info = serde_json::to_value(state.header())?;
    let manifest = runtime.block_on(store.write(NewCheckpoint {
        id: 1,
        epoch: 1,
        files,
        info,
    }))?;
    let checkpoint = begin.elapsed();

    let begin = Instant::now();
    let loaded = runtime
        .block_on(store.load_latest())?
        .context("the checkpoint just written")?;
    let header: sluice_engine::state::StateHeader =
        serde_json::from_value(loaded.manifest.info.clone())?;
    let batches = header
        .batches
        .iter()
        .map(|name| {
            let bytes = loaded
                .files
                .get(&format!("{name}.arrow"))
                .with_context(|| format!("the checkpoint lacks {name}"))?;
            Ok(batch_from_ipc(bytes)?)
        })
        .collect::<Result<Vec<_>>>()?;
    let restored_state = StateSnapshot::from_parts(header, batches)?;
    let mut restored = operator(backend)?;
    restored.restore(&restored_state)?;
    let recovery = begin.elapsed();

    // The restored operator must close exactly the groups the original holds.
    let (mut a, mut b) = (Emitted::default(), Emitted::default());
    original.on_watermark(i64::MAX, &mut a)?;
    restored.on_watermark(i64::MAX, &mut b)?;
    if a.rows() != KEYS || a.batches != b.batches {
        bail!(
            "the restored operator closed {} groups, the original {} (expected {KEYS})",
            b.rows(),
            a.rows()
        );
    }
    Ok(Sample {
        bytes: manifest.bytes(),
        snapshot,
        checkpoint,
        recovery,
    })
}
