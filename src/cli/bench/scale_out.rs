//! Scale-out of the `kafka` workload (`--kafka-workers 1,2,3`): the same job started as that
//! many worker processes of one consumer group, sharing the topic's 12 partitions.
//!
//! A run is timed from the first partition any worker starts reading (the group join, ~3 s on
//! tansu, is left out) to the last worker's exit (bounded: each exits once the partitions it
//! holds have ended). Rebalances while workers join are inside the time, as they would be in
//! production. The workers' own counts must add up to the topic's messages.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// One scale-out run.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleOutRun {
    pub workers: usize,
    /// From the first partition read to the last worker's exit.
    pub seconds: f64,
    pub messages_per_second: f64,
}

/// Runs `workers` worker processes over `topic` (`messages` messages) once.
pub fn run(
    broker: &str,
    topic: &str,
    messages: u64,
    workers: usize,
    batch_rows: usize,
    folder: &Path,
) -> Result<ScaleOutRun> {
    let unique = now_ms();
    let dir = folder.join(format!("scale-out-{workers}-{unique}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let job = format!(
        "{}\n[cluster]\npartitioned_by = \"card_id\"\nsession_timeout = \"6s\"\n\n\
         [checkpoint]\nlocation = \"checkpoints\"\n",
        super::kafka::job(broker, topic, batch_rows).replace(
            &format!("topics = \"{topic}\""),
            &format!("topics = \"{topic}\"\ngroup = \"{topic}-workers-{unique}\"")
        )
    );
    std::fs::write(dir.join("job.toml"), job).context("writing the worker job")?;
    let exe = std::env::current_exe().context("finding the sluice binary")?;
    let children = (0..workers)
        .map(|_| {
            Command::new(&exe)
                .args(["run", "job.toml", "--backend", "cpu"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting a worker")
        })
        .collect::<Result<Vec<_>>>()?;
    let mut first_read = u128::MAX;
    let mut events = 0u64;
    for child in children {
        let out = child.wait_with_output().context("waiting for a worker")?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("a worker failed ({}):\n{log}", out.status);
        }
        for line in log.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.get(3) == Some(&"reading")
                && let Some(at) = words.get(6).and_then(|w| w.parse::<u128>().ok())
            {
                first_read = first_read.min(at);
            }
            if let Some(rest) = line.strip_prefix("sluice: worker finished after ")
                && let Some(n) = rest
                    .split(": ")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
            {
                events += n;
            }
        }
    }
    let seconds = (now_ms().saturating_sub(first_read)) as f64 / 1e3;
    if events != messages {
        bail!("{workers} workers read {events} events of the topic's {messages}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    let rate = messages as f64 / seconds.max(1e-3);
    eprintln!(
        "  {workers} worker process(es): {messages} messages in {seconds:.2} s, {}/s",
        super::human(rate)
    );
    Ok(ScaleOutRun {
        workers,
        seconds,
        messages_per_second: rate,
    })
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
