//! Exactly-once under crashes: a checkpointed job (a lookup join, then windows) killed with
//! SIGKILL at random moments, ten times, then allowed to finish, publishes exactly the rows of
//! an uninterrupted run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{Rng, s3_test_prefix};

pub(crate) const JOB: &str = r#"
name = "crash"

[source]
type = "generator"
generator = "transactions"
events = 40_000
rate = 10_000             # four seconds of input when throttled
keys = 300
merchants = 40
disorder = "1s"           # never more than the watermark delay: no late rows
event_time_rate = 1_000
seed = 11

[event_time]
column = "ts"
watermark_delay = "1s"

[batching]
max_rows = 700
max_delay = "20ms"

# Enrichment first (merchants.csv is written next to the job: 30 of the 40 merchants, so the
# inner join also drops rows), then windows over the joined columns.
[[operators]]
type = "lookup_join"
name = "merchants"
table = { type = "csv", path = "merchants.csv" }
on = "merchant_id"

[[operators]]
type = "window"
key = "card_id"
window = { type = "tumbling", size = "2s" }
aggregates = [
  { fn = "count", as = "n" },
  { fn = "sum", column = "amount_cents", as = "total" },
  { fn = "sum", column = "risk", as = "risk" },
  { fn = "count_distinct", column = "merchant_id", as = "merchants" },
]

[sink]
type = "csv"
path = "out"

[checkpoint]
location = "checkpoints"
interval = "100ms"
"#;

pub(crate) fn sluice(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// The data lines of CSV text (header dropped), sorted.
pub(crate) fn sorted_rows(texts: &[String]) -> Vec<String> {
    let mut rows: Vec<String> = texts
        .iter()
        .flat_map(|t| t.lines().skip(1).map(str::to_string))
        .collect();
    rows.sort();
    rows
}

/// Every published part of the folder, in name (epoch) order.
pub(crate) fn published(folder: &Path) -> Vec<String> {
    let mut parts: Vec<_> = std::fs::read_dir(folder)
        .expect("output folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "csv"))
        .collect();
    parts.sort();
    parts
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("part"))
        .collect()
}

/// Writes `job.toml` (checkpointed) into `dir` and returns the rows of an uninterrupted run
/// of the same job: unthrottled, uncheckpointed, into one file.
pub(crate) fn reference(dir: &Path) -> Vec<String> {
    std::fs::write(dir.join("job.toml"), JOB).expect("job");
    let merchants: String = std::iter::once("merchant_id,risk\n".to_string())
        .chain((1..=30).map(|m| format!("{m},{}\n", m * 7 % 100)))
        .collect();
    std::fs::write(dir.join("merchants.csv"), merchants).expect("table");
    uninterrupted(dir, JOB, &["source.rate=0"])
}

/// The sorted rows of `job` run in `dir` without its `[checkpoint]` section, unthrottled by
/// `settings` (`--set` values), on the CPU, into one file: what every crash must add up to.
pub(crate) fn uninterrupted(dir: &Path, job: &str, settings: &[&str]) -> Vec<String> {
    let uncheckpointed = job.split("[checkpoint]").next().unwrap_or(job);
    std::fs::write(dir.join("whole.toml"), uncheckpointed).expect("job");
    let mut args = vec!["run", "whole.toml", "--backend", "cpu", "--quiet"];
    for s in settings.iter().chain(&["sink.path=whole.csv"]) {
        args.extend(["--set", s]);
    }
    let whole = sluice(dir, &args).output().expect("run");
    assert!(
        whole.status.success(),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let expected = sorted_rows(&[std::fs::read_to_string(dir.join("whole.csv")).expect("whole")]);
    assert!(expected.len() > 1_000, "{} rows", expected.len());
    expected
}

/// Kills `job.toml` in `dir` with SIGKILL at ten random moments, then lets it finish, on
/// `backend` with `settings` (`--set` values) added to every run.
fn kill_ten_times_then_finish(dir: &Path, backend: &str, settings: &[String]) {
    kill_then_finish(dir, backend, settings, &[], 10, 2026);
}

/// Kills `job.toml` in `dir` with SIGKILL `times` times, each 150-450 ms into a run (seeded
/// by `seed`), then lets it finish; most runs must still be going when killed. Every run
/// gets `env` added to its environment.
pub(crate) fn kill_then_finish(
    dir: &Path,
    backend: &str,
    settings: &[String],
    env: &[(&str, &str)],
    times: usize,
    seed: u64,
) {
    let mut args: Vec<&str> = vec!["run", "job.toml", "--backend", backend, "--quiet"];
    for s in settings {
        args.extend(["--set", s.as_str()]);
    }
    let mut rng = Rng::new(seed);
    let mut killed = 0;
    for _ in 0..times {
        let mut child = sluice(dir, &args)
            .envs(env.iter().copied())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(150 + rng.below(300)));
        if child.try_wait().expect("poll").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        child.wait().expect("wait");
    }
    assert!(
        killed * 4 >= times * 3,
        "only {killed} of {times} runs were still going when killed"
    );
    let last = sluice(dir, &args)
        .envs(env.iter().copied())
        .output()
        .expect("final run");
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
}

#[test]
fn a_job_killed_ten_times_publishes_exactly_the_uninterrupted_output() {
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    // What a kill inside a put leaves on a local disk: the object store's temporary file,
    // which it neither lists nor deletes. Issue 12: such folders piled up.
    let leftover = dir.path().join("checkpoints/chk-00000000000000000000");
    std::fs::create_dir_all(&leftover).expect("folder");
    std::fs::write(leftover.join("op0.backend.groups.arrow#1"), [0u8; 1024]).expect("temp");
    kill_ten_times_then_finish(dir.path(), "cpu", &[]);
    assert_published(dir.path(), &expected);
    assert!(!leftover.exists(), "the killed write's folder was deleted");
    let folders = std::fs::read_dir(dir.path().join("checkpoints"))
        .expect("checkpoints")
        .count();
    assert!(folders <= 3, "{folders} checkpoint folders, retain is 3");
}

#[test]
fn a_gpu_job_killed_ten_times_publishes_exactly_the_uninterrupted_output() {
    if sluice_engine::backend::GpuBackend::for_tests().is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    kill_ten_times_then_finish(dir.path(), "gpu", &[]);
    assert_published(dir.path(), &expected);
}

#[test]
fn a_job_checkpointing_to_s3_killed_ten_times_publishes_exactly_the_uninterrupted_output() {
    let Some(prefix) = s3_test_prefix("crash") else {
        return;
    };
    let location = format!("checkpoint.location={prefix}");
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    kill_ten_times_then_finish(dir.path(), "cpu", &[location]);
    assert_published(dir.path(), &expected);
    assert!(
        !dir.path().join("checkpoints").exists(),
        "the checkpoints went to S3, not the local folder"
    );
}

/// The published parts hold exactly `expected` and nothing is left staged.
pub(crate) fn assert_published(dir: &Path, expected: &[String]) {
    assert_same_rows(&published(&dir.join("out")), expected);
    let staging = dir.join("out/_staging");
    let leftovers = std::fs::read_dir(&staging).map_or(0, |d| d.count());
    assert_eq!(leftovers, 0, "nothing is left staged after the final run");
}

/// The data rows of the published CSV `parts` equal `expected` (sorted rows of the
/// uninterrupted run), saying first how many there are and how many are missing.
pub(crate) fn assert_same_rows(parts: &[String], expected: &[String]) {
    let rows = sorted_rows(parts);
    let missing = expected
        .iter()
        .filter(|r| rows.binary_search(r).is_err())
        .count();
    assert_eq!(
        (rows.len(), missing),
        (expected.len(), 0),
        "published rows (count, missing from the uninterrupted run's)"
    );
    assert_eq!(rows, expected);
}
