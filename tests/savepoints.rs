//! Operating checkpoints from the command line: SIGTERM stops a job with a final checkpoint
//! (exit 0) and the next run continues; `sluice checkpoints` lists them; a damaged newest
//! checkpoint is skipped with a warning and the output stays exact; a job changed
//! incompatibly is refused saying what differs.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::crash::{published, reference, sluice, sorted_rows};

const RUN: [&str; 5] = ["run", "job.toml", "--backend", "cpu", "--quiet"];

fn finish(dir: &Path) -> String {
    let out = sluice(dir, &["run", "job.toml", "--backend", "cpu"])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
}

#[test]
fn sigterm_takes_a_savepoint_and_the_next_run_continues_from_it() {
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    let child = sluice(dir.path(), &["run", "job.toml", "--backend", "cpu"])
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(800));
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a graceful stop exits 0: {stderr}");
    assert!(stderr.contains("stopped at checkpoint"), "{stderr}");
    let rows_before = sorted_rows(&published(&dir.path().join("out"))).len();
    assert!(
        rows_before > 0 && rows_before < expected.len(),
        "{rows_before} rows published at the stop, of {}",
        expected.len()
    );

    let listing = sluice(dir.path(), &["checkpoints", "job.toml"])
        .stdout(std::process::Stdio::piped())
        .output()
        .expect("list");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("epoch") && listing.contains("transactions[0] @"),
        "{listing}"
    );

    let stderr = finish(dir.path());
    assert!(stderr.contains("resumed from"), "{stderr}");
    assert_eq!(sorted_rows(&published(&dir.path().join("out"))), expected);
}

#[test]
fn a_damaged_newest_checkpoint_is_skipped_and_the_output_stays_exact() {
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    let mut child = sluice(dir.path(), &RUN).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(1_200));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    // Truncate the first state file of the newest complete checkpoint.
    let checkpoints = dir.path().join("checkpoints");
    let mut complete: Vec<_> = std::fs::read_dir(&checkpoints)
        .expect("checkpoints")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("_manifest.json").exists())
        .collect();
    complete.sort();
    assert!(complete.len() >= 2, "{complete:?}");
    let newest = complete.last().expect("newest");
    let state = std::fs::read_dir(newest)
        .expect("newest")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "arrow"))
        .expect("a state file");
    let bytes = std::fs::read(&state).expect("read");
    std::fs::write(&state, &bytes[..bytes.len() / 2]).expect("truncate");

    let stderr = finish(dir.path());
    assert!(
        stderr.contains("skipping a damaged checkpoint") && stderr.contains("bytes"),
        "{stderr}"
    );
    assert_eq!(sorted_rows(&published(&dir.path().join("out"))), expected);
}

#[test]
fn an_incompatible_job_change_is_refused_before_any_data_moves() {
    let dir = tempfile::tempdir().expect("dir");
    reference(dir.path());
    let mut child = sluice(dir.path(), &RUN).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(700));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");
    let job = std::fs::read_to_string(dir.path().join("job.toml")).expect("job");
    let changed = job.replace(r#"size = "2s""#, r#"size = "4s""#);
    assert_ne!(job, changed);
    std::fs::write(dir.path().join("job.toml"), changed).expect("job");
    let parts_before = published(&dir.path().join("out"));
    let out = sluice(dir.path(), &RUN).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("operators[1]") && stderr.contains("the window was Tumbling"),
        "{stderr}"
    );
    assert_eq!(
        published(&dir.path().join("out")),
        parts_before,
        "nothing moved"
    );
}

#[test]
fn checkpoints_are_listed_deleted_and_chosen_by_id_with_clear_errors() {
    let dir = tempfile::tempdir().expect("dir");
    reference(dir.path());
    let fast = ["--set", "source.rate=0", "--set", "source.events=3000"];
    let mut args = RUN.to_vec();
    args.extend(fast);
    assert!(sluice(dir.path(), &args).status().expect("run").success());
    let list = || {
        let out = sluice(dir.path(), &["checkpoints", "job.toml"])
            .stdout(std::process::Stdio::piped())
            .output()
            .expect("list");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listing = list();
    let newest: u64 = listing
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("id ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .max()
        .expect("a checkpoint is listed");

    let mut from = RUN.to_vec();
    from.extend(["--from-checkpoint", "999"]);
    let out = sluice(dir.path(), &from).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("there is no checkpoint 999"),
        "{stderr}"
    );
    let out = sluice(dir.path(), &["checkpoints", "job.toml", "--delete", "999"])
        .output()
        .expect("delete");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("there is no checkpoint 999"),
        "{stderr}"
    );

    let id = newest.to_string();
    let out = sluice(dir.path(), &["checkpoints", "job.toml", "--delete", &id])
        .output()
        .expect("delete");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!list().contains(&format!("id {id} ")), "{}", list());
}

/// Resuming from an older checkpoint withdraws the newer epochs' output; a crash before the
/// next checkpoint then restarted from the newest checkpoint, whose parts were gone ("rows
/// are lost"). The newer checkpoints are deleted when the older one is chosen, so the plain
/// restart resumes from the chosen one and the output is exact.
#[test]
fn a_crash_after_resuming_from_an_older_checkpoint_still_recovers_exactly() {
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path());
    let mut child = sluice(dir.path(), &RUN).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(2_000));
    child.kill().expect("kill");
    child.wait().expect("wait");
    let ids: Vec<u64> = std::fs::read_dir(dir.path().join("checkpoints"))
        .expect("checkpoints")
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_prefix("chk-")?
                .parse()
                .ok()
        })
        .collect();
    let oldest = *ids.iter().min().expect("a checkpoint");
    assert!(ids.len() >= 2, "older and newer checkpoints: {ids:?}");
    // Resumed from the oldest, with no checkpoint of its own before the kill.
    let oldest = oldest.to_string();
    let mut resumed = RUN.to_vec();
    resumed.extend([
        "--from-checkpoint",
        &oldest,
        "--set",
        "checkpoint.interval=1h",
    ]);
    let child = sluice(dir.path(), &resumed).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(1_500));
    let mut child = child;
    child.kill().expect("kill");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deletes the newer checkpoints"), "{stderr}");
    finish(dir.path());
    assert_eq!(sorted_rows(&published(&dir.path().join("out"))), expected);
}
