//! Kafka sources against a real broker (tansu, started by `scripts/test`): window results equal
//! a count made here from the messages produced; malformed messages are dead letters with
//! partition and offset; checkpointed jobs killed and restarted publish exactly the output of
//! an uninterrupted run and commit their offsets to the group; bad settings fail before any
//! data moves.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::common::Rng;
use crate::common::kafka::{Message, create_topic, kafka_test_broker, produce, unique_topic};

/// 2026-01-01T00:00:00Z: window starts within the hour print as `2026-01-01T00:MM:SSZ`.
const T0: i64 = 1_767_225_600_000;

fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run sluice")
}

/// `count` messages over `partitions` partitions: key `card-<i % 7>`, time T0 + 1 s + 5 ms per
/// message minus up to 300 ms of disorder, every 97th payload not UTF-8.
fn messages(count: usize, partitions: i32, seed: u64) -> Vec<Message> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| Message {
            partition: rng.below(partitions as u64) as i32,
            key: Some(format!("card-{}", i % 7).into_bytes()),
            payload: if i % 97 == 13 {
                vec![0xff, 0xfe, i as u8]
            } else {
                format!("payment {i}").into_bytes()
            },
            timestamp: T0 + 1_000 + i as i64 * 5 - rng.below(301) as i64,
        })
        .collect()
}

/// (key, window start as the sink prints it) → (messages, sum of their offsets), counted from
/// the produced messages: offsets are each partition's message count so far.
fn expected(messages: &[Message]) -> BTreeMap<(String, String), (u64, i64)> {
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut want = BTreeMap::new();
    for m in messages {
        let offset = next_offset.entry(m.partition).or_insert(0);
        let this = *offset;
        *offset += 1;
        if std::str::from_utf8(&m.payload).is_err() {
            continue;
        }
        let second = (m.timestamp - T0).div_euclid(1_000);
        let start = format!("2026-01-01T00:{:02}:{:02}Z", second / 60, second % 60);
        let key = String::from_utf8(m.key.clone().unwrap_or_default()).expect("key");
        let entry = want.entry((key, start)).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += this;
    }
    want
}

fn job(broker: &str, topic: &str, extra: &str) -> String {
    format!(
        r#"name = "kafka-windows"
[source]
type = "kafka"
bootstrap = "{broker}"
topics = "{topic}"
group = "{topic}-group"
format = "raw"
metadata = ["timestamp", "key", "partition", "offset"]
bounded = "latest"
batch_rows = 150

[event_time]
column = "kafka_timestamp"
watermark_delay = "400ms"

[[operators]]
type = "window"
key = "kafka_key"
window = {{ type = "tumbling", size = "1s" }}
aggregates = [{{ fn = "count", as = "n" }}, {{ fn = "sum", column = "kafka_offset", as = "offsets" }}]

[sink]
type = "csv"
path = "out"

[late]
type = "jsonl"
path = "late.jsonl"

[dead_letter]
type = "jsonl"
path = "dead.jsonl"
{extra}"#
    )
}

/// The CSV rows of every file under `path` (a file, or a folder of parts) as the table
/// [`expected`] builds.
fn windows(path: &Path) -> BTreeMap<(String, String), (u64, i64)> {
    let files: Vec<std::path::PathBuf> = if path.is_dir() {
        let mut parts: Vec<_> = std::fs::read_dir(path)
            .expect("parts")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "csv"))
            .collect();
        parts.sort();
        parts
    } else {
        vec![path.to_path_buf()]
    };
    let mut got = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("output");
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let row = (f[3].parse().expect("n"), f[4].parse().expect("offsets"));
            let key = (f[0].to_string(), f[1].to_string());
            assert!(got.insert(key, row).is_none(), "a window twice: {line}");
        }
    }
    got
}

#[test]
fn windows_over_a_topic_equal_a_count_of_the_messages_and_bad_ones_are_dead_letters() {
    let Some(broker) = kafka_test_broker("kafka windows") else {
        return;
    };
    let topic = unique_topic("windows");
    create_topic(&broker, &topic, 3);
    let sent = messages(3_000, 3, 1);
    produce(&broker, &topic, &sent);
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("job.toml"), job(&broker, &topic, "")).expect("job");
    let out = sluice(
        dir.path(),
        &[
            "run",
            "job.toml",
            "--backend",
            "cpu",
            "--set",
            "sink.path=out.csv",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let want = expected(&sent);
    assert!(want.len() > 50);
    assert_eq!(windows(&dir.path().join("out.csv")), want);
    let late = std::fs::read_to_string(dir.path().join("late.jsonl")).unwrap_or_default();
    assert!(late.is_empty(), "disorder below the delay: {late}");
    // Every bad payload is one dead letter naming its partition and offset.
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).expect("dead letters");
    let mut letters: Vec<(String, u64)> = dead
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert!(
                v["reason"].as_str().expect("reason").contains("not UTF-8"),
                "{l}"
            );
            (
                v["source"].as_str().expect("source").to_string(),
                v["offset"].as_u64().expect("offset"),
            )
        })
        .collect();
    letters.sort();
    let mut next_offset: BTreeMap<i32, u64> = BTreeMap::new();
    let mut bad: Vec<(String, u64)> = Vec::new();
    for m in &sent {
        let offset = next_offset.entry(m.partition).or_insert(0);
        if std::str::from_utf8(&m.payload).is_err() {
            bad.push((format!("{topic}/{}", m.partition), *offset));
        }
        *offset += 1;
    }
    bad.sort();
    assert_eq!(letters, bad);
}
