//! `SET 'key' = 'value'`: job settings under Flink's names where Flink has the setting.
//!
//! | key | job-file equivalent |
//! |---|---|
//! | `pipeline.name` | `name` |
//! | `sluice.backend` | `backend` (`auto`, `cpu`, `gpu`) |
//! | `sluice.strict` | `strict` |
//! | `execution.checkpointing.interval` | `[checkpoint] interval` |
//! | `state.checkpoints.dir` | `[checkpoint] location` |
//! | `state.checkpoints.num-retained` | `[checkpoint] retain` |
//! | `execution.checkpointing.tolerable-failed-checkpoints` | `[checkpoint] tolerable_failures` |
//! | `table.exec.mini-batch.size` | `[batching] max_rows` |
//! | `table.exec.mini-batch.allow-latency` | `[batching] max_delay` |
//! | `table.exec.source.idle-timeout` | `[event_time] idle_timeout` |

use sluice_engine::duration::DurationMs;

use crate::job::{BackendChoice, BatchingFile};

/// Every key `SET` knows, for the error about an unknown one.
pub const KEYS: [&str; 10] = [
    "pipeline.name",
    "sluice.backend",
    "sluice.strict",
    "execution.checkpointing.interval",
    "state.checkpoints.dir",
    "state.checkpoints.num-retained",
    "execution.checkpointing.tolerable-failed-checkpoints",
    "table.exec.mini-batch.size",
    "table.exec.mini-batch.allow-latency",
    "table.exec.source.idle-timeout",
];

/// The settings of a script, as its `SET` statements leave them.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub name: Option<String>,
    pub backend: BackendChoice,
    pub strict: bool,
    pub checkpoint_interval: Option<DurationMs>,
    pub checkpoint_dir: Option<String>,
    pub checkpoint_retain: Option<usize>,
    pub tolerable_failures: Option<u32>,
    pub batching: BatchingFile,
    pub idle_timeout: Option<DurationMs>,
}

impl Settings {
    /// Applies `SET key = value`; the error says what is wrong with it.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let duration = || DurationMs::parse(&value.replace(' ', ""));
        let number = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("'{key}' takes a whole number, not '{value}'"))
        };
        match key {
            "pipeline.name" => self.name = Some(value.to_string()),
            "sluice.backend" => self.backend = value.parse()?,
            "sluice.strict" => {
                self.strict = value
                    .parse()
                    .map_err(|_| format!("'{key}' takes 'true' or 'false', not '{value}'"))?;
            }
            "execution.checkpointing.interval" => self.checkpoint_interval = Some(duration()?),
            "state.checkpoints.dir" => self.checkpoint_dir = Some(value.to_string()),
            "state.checkpoints.num-retained" => {
                self.checkpoint_retain = Some(number()? as usize);
            }
            "execution.checkpointing.tolerable-failed-checkpoints" => {
                let failures = number()?;
                self.tolerable_failures = Some(
                    u32::try_from(failures)
                        .map_err(|_| format!("'{key}' = '{value}' is too large"))?,
                );
            }
            "table.exec.mini-batch.size" => self.batching.max_rows = number()? as usize,
            "table.exec.mini-batch.allow-latency" => self.batching.max_delay = duration()?,
            "table.exec.source.idle-timeout" => self.idle_timeout = Some(duration()?),
            _ => {
                return Err(format!(
                    "unknown setting '{key}'; sluice knows {}",
                    KEYS.map(|k| format!("'{k}'")).join(", ")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_names_set_the_job_settings() -> Result<(), String> {
        let mut settings = Settings::default();
        settings.set("execution.checkpointing.interval", "10 s")?;
        settings.set("state.checkpoints.dir", "ckpt")?;
        settings.set("table.exec.mini-batch.size", "5000")?;
        settings.set("sluice.backend", "cpu")?;
        assert_eq!(settings.checkpoint_interval, Some(DurationMs(10_000)));
        assert_eq!(settings.batching.max_rows, 5000);
        assert_eq!(settings.backend, BackendChoice::Cpu);
        assert!(
            settings
                .set("parallelism.default", "2")
                .is_err_and(|e| e.starts_with("unknown setting 'parallelism.default'"))
        );
        assert!(
            settings
                .set("table.exec.mini-batch.size", "many")
                .is_err_and(|e| e.contains("whole number"))
        );
        Ok(())
    }
}
