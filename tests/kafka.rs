//! Kafka sources against a real broker (tansu, started by `scripts/test`): window results equal
//! a count made here from the messages produced; malformed messages are dead letters with
//! partition and offset; checkpointed jobs killed and restarted publish exactly the output of
//! an uninterrupted run and commit their offsets to the group, from which a later job can
//! start; dead letters can go to a topic; the Kafka sinks deliver at least once and, with
//! transactions, exactly once; bad settings fail before any data moves; `sluice bench`
//! times a Kafka workload.

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

/// A window: (key, start as the sink prints it).
type Window = (String, String);
/// A window's aggregates: (messages, sum of their offsets).
type Counts = (u64, i64);

/// Each window's counts, counted from the produced messages: offsets are each partition's
/// message count so far.
fn expected(messages: &[Message]) -> BTreeMap<Window, Counts> {
    expected_after(messages, BTreeMap::new())
}

/// As [`expected`], for messages produced after `next_offset[p]` others in partition `p`.
fn expected_after(
    messages: &[Message],
    mut next_offset: BTreeMap<i32, i64>,
) -> BTreeMap<Window, Counts> {
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

/// Checkpoints every 100 ms into `checkpoints/`, for [`job`]'s `extra`.
const CHECKPOINTS: &str = "[checkpoint]\nlocation = \"checkpoints\"\ninterval = \"100ms\"\n";
/// Replacements that make [`job`] read 20 messages at a time and cut micro-batches of 20
/// rows, so a run lasts long enough for kills to land mid-run.
const SMALL_BATCHES: (&str, &str) = ("batch_rows = 150", "batch_rows = 20");
const SMALLER_MICRO_BATCHES: (&str, &str) = ("[late]", "[batching]\nmax_rows = 20\n\n[late]");

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
fn windows(path: &Path) -> BTreeMap<Window, Counts> {
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
    // Every partition was read to its end: the summary reports each one's lag, all zero.
    let lag = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("lag "))
        .unwrap_or_else(|| panic!("no lag line: {stderr}"));
    for p in 0..3 {
        assert!(lag.contains(&format!("{topic}/{p} 0")), "{lag}");
    }
    assert!(lag.trim_start().starts_with("lag         0  ("), "{lag}");
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

/// Runs sluice with `args` in `dir` and SIGKILLs it after a random time in `after_ms` (seeded
/// by `seed`), until ten runs were killed while still going; a run that fails on its own
/// fails the test.
fn kill_ten_times(dir: &Path, args: &[&str], seed: u64, after_ms: std::ops::Range<u64>) {
    let mut rng = Rng::new(seed);
    let (mut killed, mut tries) = (0, 0);
    while killed < 10 {
        tries += 1;
        assert!(
            tries <= 40,
            "only {killed} of {tries} runs were still going when killed"
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let wait = after_ms.start + rng.below(after_ms.end - after_ms.start);
        std::thread::sleep(std::time::Duration::from_millis(wait));
        if child.try_wait().expect("poll").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("error"), "{stderr}");
    }
}

/// The windows of every Parquet part in `folder`, as [`expected`] builds them.
fn parquet_windows(folder: &Path) -> BTreeMap<Window, Counts> {
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::{Int64Type, TimestampMillisecondType};
    let mut got = BTreeMap::new();
    let mut parts: Vec<_> = std::fs::read_dir(folder)
        .expect("parts")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    parts.sort();
    for part in parts {
        let file = std::fs::File::open(&part).expect("part");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch: RecordBatch = batch.expect("batch");
            let column = |name: &str| batch.column_by_name(name).expect("column").clone();
            let (keys, starts) = (column("kafka_key"), column("window_start"));
            let (n, offsets) = (column("n"), column("offsets"));
            for i in 0..batch.num_rows() {
                let start = starts.as_primitive::<TimestampMillisecondType>().value(i);
                let second = (start - T0) / 1_000;
                let key = (
                    keys.as_string::<i32>().value(i).to_string(),
                    format!("2026-01-01T00:{:02}:{:02}Z", second / 60, second % 60),
                );
                let row = (
                    n.as_primitive::<Int64Type>().value(i) as u64,
                    offsets.as_primitive::<Int64Type>().value(i),
                );
                assert!(got.insert(key, row).is_none(), "a window published twice");
            }
        }
    }
    got
}

/// The offsets the group has committed for `topic`'s partitions.
fn committed(broker: &str, topic: &str, group: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let found = consumer
        .committed_offsets(list, std::time::Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(
            |p| match found.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(n)) => n,
                other => panic!("partition {p}: no committed offset ({other:?})"),
            },
        )
        .collect()
}

#[test]
fn a_checkpointed_kafka_job_killed_ten_times_publishes_exactly_once_and_commits_offsets() {
    let Some(broker) = kafka_test_broker("kafka exactly once") else {
        return;
    };
    let topic = unique_topic("crash");
    create_topic(&broker, &topic, 4);
    // Enough messages that a run with small micro-batches lasts several seconds, so that
    // kills land mid-run.
    let sent = messages(400_000, 4, 2);
    produce(&broker, &topic, &sent);
    let dir = tempfile::tempdir().expect("dir");
    let checkpointed = job(&broker, &topic, CHECKPOINTS)
        .replace(
            "type = \"csv\"\npath = \"out\"",
            "type = \"parquet\"\npath = \"out\"",
        )
        .replace(SMALL_BATCHES.0, SMALL_BATCHES.1)
        .replace(SMALLER_MICRO_BATCHES.0, SMALLER_MICRO_BATCHES.1);
    std::fs::write(dir.path().join("job.toml"), checkpointed).expect("job");
    let args = ["run", "job.toml", "--backend", "cpu", "--quiet"];
    kill_ten_times(dir.path(), &args, 9, 100..400);
    let last = sluice(dir.path(), &args);
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    assert_eq!(parquet_windows(&dir.path().join("out")), expected(&sent));
    // The last checkpoint's offsets (each partition's end) are the group's.
    let mut ends = vec![0i64; 4];
    for m in &sent {
        ends[m.partition as usize] += 1;
    }
    assert_eq!(
        committed(&broker, &topic, &format!("{topic}-group"), 4),
        ends
    );
}

#[test]
fn bad_kafka_settings_fail_before_any_data_moves_naming_the_setting() {
    let Some(broker) = kafka_test_broker("kafka settings") else {
        return;
    };
    let topic = unique_topic("settings");
    create_topic(&broker, &topic, 1);
    let dir = tempfile::tempdir().expect("dir");
    let good = job(&broker, &topic, "");
    let cases = [
        (
            good.replace(
                &format!("topics = \"{topic}\""),
                "topics = \"no-such-topic\"",
            ),
            format!("source.topics: the broker at {broker} has no topic `no-such-topic`"),
        ),
        (
            good.replace(
                "batch_rows = 150",
                "batch_rows = 150\n[source.properties]\n\"no.such.property\" = \"1\"",
            ),
            "source.properties: the Kafka client refuses its settings".to_string(),
        ),
        (
            good.replace(
                "batch_rows = 150",
                "batch_rows = 150\nproperties = { \"group.id\" = \"x\" }",
            ),
            "source.properties.group.id: sluice sets this property itself (set `group`)"
                .to_string(),
        ),
        (
            good.replace(
                "format = \"raw\"",
                "format = \"raw\"\ncolumns = [{ name = \"v\", type = \"int64\" }]",
            ),
            "source.columns: format \"raw\" has the columns key and value".to_string(),
        ),
        (
            good.replace(
                &format!("bootstrap = \"{broker}\""),
                "bootstrap = \"127.0.0.1:1\"",
            ),
            "source kafka 127.0.0.1:1: cannot reach a Kafka broker".to_string(),
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let file = format!("bad{i}.toml");
        std::fs::write(dir.path().join(&file), text).expect("job");
        for command in ["validate", "run"] {
            if command == "run" && message.contains("cannot reach") {
                continue; // the same check; once is enough at 10 s a try
            }
            let out = sluice(
                dir.path(),
                &[command, &file, "--backend", "cpu"][..if command == "run" { 4 } else { 2 }],
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "case {i} ({command}) must fail");
            assert!(
                stderr.contains(message.as_str()),
                "case {i} ({command}): {stderr}"
            );
        }
        assert!(
            !dir.path().join("out").exists(),
            "case {i}: nothing was written"
        );
    }
}

/// A partition without messages holds the watermark back until its idle timeout, then the
/// other partition's windows fire; the job runs on (unbounded) until stopped.
#[test]
fn an_idle_partition_stops_holding_back_an_unbounded_job() {
    let Some(broker) = kafka_test_broker("kafka idle") else {
        return;
    };
    let topic = unique_topic("idle");
    create_topic(&broker, &topic, 2);
    let sent: Vec<Message> = messages(2_000, 1, 3);
    produce(&broker, &topic, &sent);
    let dir = tempfile::tempdir().expect("dir");
    let text = job(&broker, &topic, "")
        .replace("bounded = \"latest\"\n", "")
        .replace(
            "watermark_delay = \"400ms\"",
            "watermark_delay = \"400ms\"\nidle_timeout = \"300ms\"",
        )
        .replace(
            "type = \"csv\"\npath = \"out\"",
            "type = \"csv\"\npath = \"out.csv\"",
        );
    std::fs::write(dir.path().join("job.toml"), text).expect("job");
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "job.toml", "--backend", "cpu", "--quiet"])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Every message is read within a second; the empty partition turns idle after 300 ms.
    std::thread::sleep(std::time::Duration::from_millis(3_000));
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let out = child.wait_with_output().expect("wait");
    assert!(
        !out.status.success() || out.status.code() == Some(0),
        "stopped"
    );
    // The windows that close at the watermark partition 0 reached: the last time minus
    // the delay. The rest stay open: the job never saw the end of its input.
    let watermark = sent.iter().map(|m| m.timestamp).max().expect("messages") - 400;
    let want: BTreeMap<_, _> = expected(&sent)
        .into_iter()
        .filter(|((_, start), _)| {
            let second: i64 = start[17..19].parse::<i64>().expect("second")
                + 60 * start[14..16].parse::<i64>().expect("minute");
            T0 + second * 1_000 + 1_000 <= watermark
        })
        .collect();
    assert!(want.len() > 20, "{} windows closed", want.len());
    assert_eq!(windows(&dir.path().join("out.csv")), want);
}

/// The windows of the JSON messages of `topic` (each keyed by its `kafka_key`), counting
/// repeats: (window, message key) → how many times it was written.
fn topic_windows(broker: &str, topic: &str) -> BTreeMap<(Window, Counts), usize> {
    let mut got = BTreeMap::new();
    for (key, value) in crate::common::kafka::consume_all(broker, topic) {
        let row: serde_json::Value = serde_json::from_slice(&value).expect("a JSON message");
        let card = row["kafka_key"].as_str().expect("kafka_key").to_string();
        let key: serde_json::Value = serde_json::from_slice(&key.expect("a key")).expect("key");
        assert_eq!(
            key,
            serde_json::json!({ "kafka_key": card }),
            "the key is the key column"
        );
        let window = (
            (
                card,
                row["window_start"].as_str().expect("start").to_string(),
            ),
            (
                row["n"].as_u64().expect("n"),
                row["offsets"].as_i64().expect("offsets"),
            ),
        );
        *got.entry(window).or_insert(0) += 1;
    }
    got
}

#[test]
fn windows_written_to_a_topic_arrive_once_each_and_at_least_once_across_kills() {
    let Some(broker) = kafka_test_broker("kafka sink") else {
        return;
    };
    let (input, output) = (unique_topic("sink-in"), unique_topic("sink-out"));
    create_topic(&broker, &input, 3);
    create_topic(&broker, &output, 2);
    let sent = messages(200_000, 3, 4);
    produce(&broker, &input, &sent);
    let dir = tempfile::tempdir().expect("dir");
    let to_topic = |extra: &str| {
        job(&broker, &input, extra)
            .replace(
                "[sink]\ntype = \"csv\"\npath = \"out\"",
                &format!(
                    "[sink]\ntype = \"kafka\"\nbootstrap = \"{broker}\"\ntopic = \"{output}\"\n\
                     key = \"kafka_key\""
                ),
            )
            .replace(SMALL_BATCHES.0, SMALL_BATCHES.1)
            .replace(SMALLER_MICRO_BATCHES.0, SMALLER_MICRO_BATCHES.1)
    };
    let want = expected(&sent);
    // Uninterrupted: every window exactly once.
    std::fs::write(dir.path().join("once.toml"), to_topic("")).expect("job");
    let run = sluice(
        dir.path(),
        &["run", "once.toml", "--backend", "cpu", "--quiet"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let got = topic_windows(&broker, &output);
    let once: BTreeMap<_, _> = want.iter().map(|(k, v)| ((k.clone(), *v), 1)).collect();
    assert_eq!(got, once);
    // Killed mid-run with checkpoints, into a second topic: every window arrives, some
    // perhaps more than once, and nothing else does.
    let again = unique_topic("sink-again");
    create_topic(&broker, &again, 2);
    let checkpointed = to_topic(CHECKPOINTS).replace(
        &format!("topic = \"{output}\""),
        &format!("topic = \"{again}\""),
    );
    // Its own folder: checkpointed, the late and dead-letter paths are folders of parts.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("job.toml"), checkpointed).expect("job");
    let args = ["run", "job.toml", "--backend", "cpu", "--quiet"];
    let mut rng = Rng::new(5);
    let mut killed = 0;
    for _ in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(300 + rng.below(500)));
        if child.try_wait().expect("poll").is_none() {
            child.kill().expect("SIGKILL");
            killed += 1;
        }
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("error"), "{stderr}");
    }
    assert!(killed >= 3, "only {killed} runs were killed mid-run");
    let last = sluice(dir.path(), &args);
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    let got = topic_windows(&broker, &again);
    let windows: std::collections::BTreeSet<_> = got.keys().cloned().collect();
    let wanted: std::collections::BTreeSet<_> = want.into_iter().collect();
    assert_eq!(windows, wanted, "every window, and only those");
}

/// The windows of the JSON messages in committed transactions of `topic` (read from its log,
/// transaction markers applied: [`crate::common::kafka_log`]), counting repeats, and the
/// number of aborted transactions.
fn committed_windows(
    broker: &str,
    topic: &str,
    partitions: i32,
) -> (BTreeMap<(Window, Counts), usize>, usize) {
    let (records, aborts) = crate::common::kafka_log::committed_records(broker, topic, partitions);
    let mut got = BTreeMap::new();
    for record in records {
        assert!(
            record.transaction.is_some(),
            "a message outside a transaction"
        );
        let row: serde_json::Value =
            serde_json::from_slice(&record.value.expect("a value")).expect("a JSON message");
        // `timestamp = "window_end"`: the message time is the window's end.
        let end = row["window_end"].as_str().expect("end");
        let seconds = |at: std::ops::Range<usize>| end[at].parse::<i64>().expect("time");
        assert_eq!(
            record.timestamp,
            T0 + (seconds(14..16) * 60 + seconds(17..19)) * 1_000,
            "message time of a window ending {end}"
        );
        let window = (
            (
                row["kafka_key"].as_str().expect("kafka_key").to_string(),
                row["window_start"].as_str().expect("start").to_string(),
            ),
            (
                row["n"].as_u64().expect("n"),
                row["offsets"].as_i64().expect("offsets"),
            ),
        );
        *got.entry(window).or_insert(0) += 1;
    }
    (got, aborts)
}

#[test]
fn windows_written_to_a_topic_exactly_once_are_committed_once_each_across_ten_kills() {
    let Some(broker) = kafka_test_broker("kafka exactly-once sink") else {
        return;
    };
    let (input, output) = (unique_topic("eo-in"), unique_topic("eo-out"));
    create_topic(&broker, &input, 3);
    create_topic(&broker, &output, 2);
    let sent = messages(300_000, 3, 6);
    produce(&broker, &input, &sent);
    let dir = tempfile::tempdir().expect("dir");
    let checkpointed = job(&broker, &input, CHECKPOINTS)
        .replace(
            "[sink]\ntype = \"csv\"\npath = \"out\"",
            &format!(
                "[sink]\ntype = \"kafka\"\nbootstrap = \"{broker}\"\ntopic = \"{output}\"\n\
             key = \"kafka_key\"\ndelivery = \"exactly_once\"\ntimestamp = \"window_end\""
            ),
        )
        .replace(SMALL_BATCHES.0, SMALL_BATCHES.1)
        .replace(SMALLER_MICRO_BATCHES.0, SMALLER_MICRO_BATCHES.1);
    std::fs::write(dir.path().join("job.toml"), checkpointed).expect("job");
    let args = ["run", "job.toml", "--backend", "cpu", "--quiet"];
    kill_ten_times(dir.path(), &args, 11, 200..600);
    let last = sluice(dir.path(), &args);
    assert!(
        last.status.success(),
        "{}",
        String::from_utf8_lossy(&last.stderr)
    );
    let (got, aborts) = committed_windows(&broker, &output, 2);
    let once: BTreeMap<_, _> = expected(&sent)
        .into_iter()
        .map(|(k, v)| ((k, v), 1))
        .collect();
    let wrong: Vec<_> = once
        .iter()
        .filter(|(k, n)| got.get(*k) != Some(*n))
        .map(|(k, _)| (k, got.get(k)))
        .chain(
            got.iter()
                .filter(|(k, _)| !once.contains_key(*k))
                .map(|(k, n)| (k, Some(n))),
        )
        .take(10)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} windows, {aborts} aborted transactions; (window, committed copies): {wrong:?}",
        once.len()
    );
    eprintln!("10 kills, {aborts} aborted transactions, every window committed once");
}

#[test]
fn bench_kafka_times_sluice_next_to_a_plain_consumer_on_the_same_topic() {
    let Some(broker) = kafka_test_broker("kafka bench") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "bench",
            "--workloads",
            "kafka",
            "--kafka",
            &broker,
            "--backends",
            "cpu",
            "--events",
            "30000",
            "--runs",
            "1",
            "--out",
            &dir.path().display().to_string(),
        ])
        .output()
        .expect("run sluice bench");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("of the plain consumer"), "{stdout}");
    let json = std::fs::read_to_string(dir.path().join("results.json")).expect("results.json");
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let kafka = &report["kafka"];
    assert_eq!(kafka["messages"], 30_000, "{json}");
    assert_eq!(kafka["partitions"], 12, "{json}");
    for rate in [
        "consumer_messages_per_second",
        "json_decoded_per_second_one_thread",
    ] {
        assert!(
            kafka[rate].as_f64().is_some_and(|r| r > 0.0),
            "{rate}: {json}"
        );
    }
    let runs = report["results"].as_array().expect("results");
    assert_eq!(runs.len(), 1, "{json}");
    // Every produced message was read, decoded and windowed.
    assert_eq!(runs[0]["events"], 30_000, "{json}");
    assert!(
        runs[0]["rows_out"].as_u64().is_some_and(|n| n > 0),
        "{json}"
    );
}

#[test]
fn a_job_starting_from_the_group_reads_on_where_a_checkpointed_one_committed() {
    let Some(broker) = kafka_test_broker("kafka group start") else {
        return;
    };
    let (topic, dead_topic) = (unique_topic("group"), unique_topic("group-dead"));
    create_topic(&broker, &topic, 2);
    create_topic(&broker, &dead_topic, 1);
    let group = format!("{topic}-group");
    let first = messages(1_000, 2, 21);
    produce(&broker, &topic, &first);
    // A checkpointed job reads the first messages and commits their offsets to the group;
    // its dead letters go to a topic.
    let dir = tempfile::tempdir().expect("dir");
    let checkpointed = job(&broker, &topic, CHECKPOINTS).replace(
        "[dead_letter]\ntype = \"jsonl\"\npath = \"dead.jsonl\"",
        &format!(
            "[dead_letter]\ntype = \"kafka\"\nbootstrap = \"{broker}\"\ntopic = \"{dead_topic}\""
        ),
    );
    std::fs::write(dir.path().join("job.toml"), checkpointed).expect("job");
    let run = sluice(
        dir.path(),
        &["run", "job.toml", "--backend", "cpu", "--quiet"],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut ends = BTreeMap::new();
    for m in &first {
        *ends.entry(m.partition).or_insert(0i64) += 1;
    }
    assert_eq!(
        committed(&broker, &topic, &group, 2),
        ends.values().copied().collect::<Vec<_>>()
    );
    // Each bad message of the first run is one dead letter in the topic, as JSON.
    let mut letters: Vec<(String, u64)> = crate::common::kafka::consume_all(&broker, &dead_topic)
        .into_iter()
        .map(|(_, value)| {
            let v: serde_json::Value = serde_json::from_slice(&value).expect("JSON");
            (
                v["source"].as_str().expect("source").to_string(),
                v["offset"].as_u64().expect("offset"),
            )
        })
        .collect();
    letters.sort();
    let mut offsets: BTreeMap<i32, u64> = BTreeMap::new();
    let mut bad = Vec::new();
    for m in &first {
        let offset = offsets.entry(m.partition).or_insert(0);
        if std::str::from_utf8(&m.payload).is_err() {
            bad.push((format!("{topic}/{}", m.partition), *offset));
        }
        *offset += 1;
    }
    bad.sort();
    assert!(!bad.is_empty());
    assert_eq!(letters, bad);
    // Later messages, 10 s later in event time; a new job (no checkpoint) starting from the
    // group's offsets reads exactly those.
    let second: Vec<Message> = messages(1_000, 2, 22)
        .into_iter()
        .map(|m| Message {
            timestamp: m.timestamp + 10_000,
            ..m
        })
        .collect();
    produce(&broker, &topic, &second);
    let dir = tempfile::tempdir().expect("dir");
    let from_group = job(&broker, &topic, "").replace("group = ", "start = \"group\"\ngroup = ");
    std::fs::write(dir.path().join("job.toml"), from_group).expect("job");
    let run = sluice(
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
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // The second messages' windows, their offsets continuing after the first's.
    assert_eq!(
        windows(&dir.path().join("out.csv")),
        expected_after(&second, ends)
    );
}
