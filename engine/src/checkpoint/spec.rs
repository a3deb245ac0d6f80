//! How a job checkpoints: where, how often, how many to keep, and where to resume from.

use std::time::Duration;

use crate::error::{Error, Result};

/// Checkpoints that may fail in a row unless the job says otherwise: an outage longer than
/// one checkpoint's retries (a minute) is ridden out for a few more intervals, as Flink's
/// `tolerable-failed-checkpoints` allows, before the job gives up.
pub const DEFAULT_TOLERABLE_FAILURES: u32 = 3;

/// A job's checkpoint settings (`[checkpoint]` in a job file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSpec {
    /// A local folder, `file://` URL or object-store URL (`s3://bucket/prefix`).
    pub location: String,
    /// Time between checkpoints (the end of input and a graceful stop always take one).
    pub interval: Duration,
    /// Complete checkpoints kept; older ones are deleted after each new one.
    pub retain: usize,
    /// Checkpoints that may fail in a row (storage down past its retries, a sink unable to
    /// stage or publish) before the job fails; 0 fails it at the first.
    pub tolerable_failures: u32,
    /// Where the job starts.
    pub resume: Resume,
}

/// Which checkpoint a job resumes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resume {
    /// The newest complete checkpoint, or the beginning when there is none.
    #[default]
    Latest,
    /// This checkpoint id (`--from-checkpoint`); failing when it is missing or damaged.
    Id(u64),
}

impl CheckpointSpec {
    /// Checkpoints at `location` every `interval`, keeping 3, tolerating 3 failures in a
    /// row, resuming from the newest.
    pub fn new(location: impl Into<String>, interval: Duration) -> Self {
        CheckpointSpec {
            location: location.into(),
            interval,
            retain: 3,
            tolerable_failures: DEFAULT_TOLERABLE_FAILURES,
            resume: Resume::Latest,
        }
    }

    /// Fails, naming the setting, when a value cannot work: the same checks whether the job
    /// is run or only validated. Creates nothing and sends no request.
    pub fn validate(&self) -> Result<()> {
        if self.location.trim().is_empty() {
            return Err(Error::config("checkpoint.location", "must not be empty"));
        }
        super::location::check(&self.location)?;
        if self.interval < Duration::from_millis(10) {
            return Err(Error::config(
                "checkpoint.interval",
                "must be at least 10ms",
            ));
        }
        if self.retain == 0 {
            return Err(Error::config("checkpoint.retain", "must be at least 1"));
        }
        Ok(())
    }
}
