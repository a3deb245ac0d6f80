//! Limits instead of crashes (issue 12): many partitions share a bounded pool of reader
//! threads, and every row still arrives, counted against an independent computation.

use std::path::Path;
use std::process::Command;

fn sluice(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sluice");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), text)
}

/// A thread per partition aborted the process at ~24 600 threads.
#[test]
fn a_generator_with_100_000_partitions_runs_to_the_end() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("job.toml"),
        "[source]\ntype = \"generator\"\ngenerator = \"transactions\"\nevents = 300000\n\
         partitions = 100000\n\
         [event_time]\ncolumn = \"ts\"\n\
         [[operators]]\ntype = \"window\"\nkey = \"card_id\"\n\
         window = { type = \"tumbling\", size = \"1s\" }\naggregates = [{ fn = \"count\", as = \"n\" }]\n\
         [sink]\ntype = \"csv\"\npath = \"out.csv\"\n",
    )
    .expect("job");
    let (ok, stderr) = sluice(dir.path(), &["run", "job.toml", "--backend", "cpu"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("events in   300000"), "{stderr}");
    // Every event is counted in exactly one window.
    let out = std::fs::read_to_string(dir.path().join("out.csv")).expect("output");
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let n = header.iter().position(|h| *h == "n").expect("n");
    let total: u64 = lines
        .map(|l| {
            l.split(',')
                .nth(n)
                .expect("n")
                .parse::<u64>()
                .expect("count")
        })
        .sum();
    assert_eq!(total, 300_000);
}

/// More files than the pool keeps open at once (4 threads × 32 and more): every file's rows
/// arrive and windows equal a count made here from the files.
#[test]
fn a_folder_of_many_files_is_read_whole_by_a_bounded_pool() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("in")).expect("mkdir");
    let mut want = std::collections::BTreeMap::new();
    for f in 0..700u64 {
        let mut text = String::from("ts,k,v\n");
        for r in 0..5u64 {
            let ts = (f * 7 + r * 13) % 4_000;
            let k = (f + r) % 3;
            text.push_str(&format!("{ts},{k},{}\n", f * 10 + r));
            *want.entry((k, ts / 1_000 * 1_000)).or_insert(0u64) += 1;
        }
        std::fs::write(dir.path().join(format!("in/{f:04}.csv")), text).expect("csv");
    }
    std::fs::write(
        dir.path().join("job.toml"),
        "[source]\ntype = \"csv\"\npath = \"in\"\n\
         [event_time]\ncolumn = \"ts\"\nwatermark_delay = \"10s\"\n\
         [[operators]]\ntype = \"window\"\nkey = \"k\"\n\
         window = { type = \"tumbling\", size = \"1s\" }\naggregates = [{ fn = \"count\", as = \"n\" }]\n\
         [sink]\ntype = \"jsonl\"\npath = \"out.jsonl\"\n[late]\ntype = \"jsonl\"\npath = \"late.jsonl\"\n",
    )
    .expect("job");
    let (ok, stderr) = sluice(
        dir.path(),
        &["run", "job.toml", "--backend", "cpu", "--quiet"],
    );
    assert!(ok, "{stderr}");
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).expect("output");
    let mut got = std::collections::BTreeMap::new();
    for line in out.lines() {
        let row: serde_json::Value = serde_json::from_str(line).expect("json");
        let k = row["k"].as_u64().expect("k");
        let start = row["window_start"].as_str().expect("start");
        // 1970-01-01T00:00:0S(Z|.mmmZ): the second is the window start in seconds.
        let second: u64 = start[17..19].parse().expect("second");
        got.insert((k, second * 1_000), row["n"].as_u64().expect("n"));
    }
    assert_eq!(got, want);
    let late = std::fs::read_to_string(dir.path().join("late.jsonl")).unwrap_or_default();
    assert!(late.is_empty(), "no file is late: {late}");
}
