//! The settings tables of a job file besides its source, operators and sinks: the backend
//! choice, `[checkpoint]`, `[event_time]` and `[batching]`, with their defaults.

use std::sync::Arc;

use serde::Deserialize;
use sluice_engine::backend::{Backend, CpuBackend, GpuBackend};
use sluice_engine::batching::BatchingSpec;
use sluice_engine::duration::DurationMs;
use sluice_engine::event_time::EventTimeSpec;

/// Which backend runs window math.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    /// A hardware GPU when there is one, else the CPU (never a software GPU).
    #[default]
    Auto,
    /// The GPU: hardware first, else a software adapter such as lavapipe; fails without one.
    Gpu,
    /// The Rayon CPU backend.
    Cpu,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "gpu" => Ok(BackendChoice::Gpu),
            "cpu" => Ok(BackendChoice::Cpu),
            other => Err(format!("unknown backend `{other}` (use auto, gpu or cpu)")),
        }
    }
}

impl BackendChoice {
    /// Opens the backend this choice names. `auto` falls back to the CPU, saying why on
    /// stderr when a GPU was there but failed to open; `gpu` without an adapter is an error.
    pub fn open(self) -> Result<Arc<dyn Backend>, sluice_engine::Error> {
        use sluice_engine::backend::gpu::AdapterChoice;
        match self {
            BackendChoice::Cpu => Ok(Arc::new(CpuBackend::new())),
            BackendChoice::Gpu => match GpuBackend::open(AdapterChoice::Any)? {
                Some(gpu) => Ok(Arc::new(gpu)),
                None => Err(sluice_engine::Error::Gpu(
                    "no GPU adapter found (`sluice devices` lists what wgpu sees; \
                     `apt-get install mesa-vulkan-drivers` adds the lavapipe software \
                     adapter); use --backend cpu"
                        .into(),
                )),
            },
            BackendChoice::Auto => match GpuBackend::open(AdapterChoice::Hardware) {
                Ok(Some(gpu)) => Ok(Arc::new(gpu)),
                Ok(None) => Ok(Arc::new(CpuBackend::new())),
                Err(e) => {
                    eprintln!("sluice: {e}; using the CPU backend");
                    Ok(Arc::new(CpuBackend::new()))
                }
            },
        }
    }
}

/// `[checkpoint]`: where and how often the job saves its progress.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointFile {
    /// A folder (relative to the job file), `file://` URL or object-store URL.
    pub location: String,
    /// Time between checkpoints (default 10s).
    #[serde(default = "default_checkpoint_interval")]
    pub interval: DurationMs,
    /// Complete checkpoints to keep (default 3).
    #[serde(default = "default_retain")]
    pub retain: usize,
    /// Checkpoints that may fail in a row before the job fails (default 3).
    #[serde(default = "default_tolerable_failures")]
    pub tolerable_failures: u32,
}

fn default_checkpoint_interval() -> DurationMs {
    DurationMs(10_000)
}
fn default_retain() -> usize {
    3
}
fn default_tolerable_failures() -> u32 {
    sluice_engine::checkpoint::DEFAULT_TOLERABLE_FAILURES
}

/// `[event_time]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTimeFile {
    /// The column holding event time (integer ms, timestamp, or RFC 3339 string).
    pub column: String,
    /// Bounded out-of-orderness; default 0.
    #[serde(default)]
    pub watermark_delay: DurationMs,
    /// A partition silent for this long stops holding the watermark back.
    #[serde(default)]
    pub idle_timeout: Option<DurationMs>,
}

impl EventTimeFile {
    /// The engine's event-time spec.
    pub fn to_spec(&self) -> EventTimeSpec {
        let mut event_time = EventTimeSpec::new(&self.column, self.watermark_delay.as_millis());
        event_time.idle_timeout = self.idle_timeout.map(DurationMs::as_millis);
        event_time
    }
}

/// `[batching]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchingFile {
    /// Cut a micro-batch at this many rows (default 262144).
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Cut a micro-batch when its oldest row is this old (default 100ms).
    #[serde(default = "default_max_delay")]
    pub max_delay: DurationMs,
    /// Batches buffered between stages (default 4); bounds memory under backpressure.
    #[serde(default = "default_capacity")]
    pub channel_capacity: usize,
}

fn default_max_rows() -> usize {
    BatchingSpec::default().max_rows
}
fn default_max_delay() -> DurationMs {
    DurationMs(BatchingSpec::default().max_delay.as_millis() as i64)
}
fn default_capacity() -> usize {
    4
}

impl Default for BatchingFile {
    fn default() -> Self {
        BatchingFile {
            max_rows: default_max_rows(),
            max_delay: default_max_delay(),
            channel_capacity: default_capacity(),
        }
    }
}
