//! Kafka message formats end to end against the real broker: the same rows, written as JSON,
//! CSV and Avro (Confluent framing) messages over four partitions with disorder and late rows,
//! and as four CSV files, give the windows a polars batch query computes from the rows the job
//! did not report late; the late rows are exactly among those made late; every malformed
//! message is one dead letter naming its partition and offset.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use polars::prelude::*;

use crate::common::Rng;
use crate::common::kafka::{Message, create_topic, kafka_test_broker, produce, unique_topic};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const PARTITIONS: i32 = 4;
/// Rows made late: 5 s behind their place in the stream, against a 400 ms watermark delay.
const LATE_BY: i64 = 5_000;

const AVRO_SCHEMA: &str = r#"{"type": "record", "name": "Payment", "fields": [
    {"name": "id", "type": "long"}, {"name": "card", "type": "string"},
    {"name": "cents", "type": "long"}, {"name": "speed", "type": "double"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#;

#[derive(Debug, Clone)]
struct Row {
    id: i64,
    partition: i32,
    card: String,
    cents: i64,
    speed: f64,
    ts: i64,
    late: bool,
}

/// `count` rows: 10 ms apart with up to 300 ms of disorder, every 40th one 5 s late.
fn rows(count: usize, seed: u64) -> Vec<Row> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let late = i % 40 == 39;
            let base = T0 + 10_000 + i as i64 * 10 - rng.below(301) as i64;
            Row {
                id: i as i64,
                partition: rng.below(PARTITIONS as u64) as i32,
                card: format!("card-{}", rng.below(9)),
                cents: 1 + rng.below(10_000) as i64,
                speed: rng.below(13_000) as f64 / 100.0,
                ts: if late { base - LATE_BY } else { base },
                late,
            }
        })
        .collect()
}

/// Avro's `long`: zig-zag, then 7 bits a byte, low first.
fn avro_long(out: &mut Vec<u8>, value: i64) {
    let mut z = ((value << 1) ^ (value >> 63)) as u64;
    while z >= 0x80 {
        out.push((z & 0x7f) as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// The payload of `row` in `format`, framed as the job expects (Avro: Confluent, schema id 1).
fn payload(row: &Row, format: &str) -> Vec<u8> {
    match format {
        "json" => serde_json::json!({
            "id": row.id, "card": row.card, "cents": row.cents, "speed": row.speed, "ts": row.ts,
        })
        .to_string()
        .into_bytes(),
        "csv" => format!(
            "{},{},{},{},{}",
            row.id, row.card, row.cents, row.speed, row.ts
        )
        .into_bytes(),
        "avro" => {
            let mut out = vec![0, 0, 0, 0, 1];
            avro_long(&mut out, row.id);
            avro_long(&mut out, row.card.len() as i64);
            out.extend_from_slice(row.card.as_bytes());
            avro_long(&mut out, row.cents);
            out.extend_from_slice(&row.speed.to_le_bytes());
            avro_long(&mut out, row.ts);
            out
        }
        other => panic!("no format {other}"),
    }
}

/// A message of `format` that must not decode, and why, for the `i`th bad one.
fn malformed(format: &str, i: usize) -> Vec<u8> {
    match (format, i % 3) {
        ("json", 0) => b"{\"id\": 1, \"card\": ".to_vec(),
        ("json", 1) => b"{\"id\": 1, \"cents\": \"lots\"}".to_vec(),
        ("json", _) => vec![0xff, 0x00, i as u8],
        ("csv", 0) => b"1,card-1".to_vec(),
        ("csv", 1) => b"1,card-1,lots,2.5,3".to_vec(),
        ("csv", _) => b"1,\"card-1,2,2.5,3".to_vec(),
        ("avro", 0) => vec![0, 0, 0, 0, 1, 2],
        ("avro", 1) => vec![9, 9, 9],
        ("avro", _) => {
            let mut body = payload(&rows(1, 9)[0], "avro");
            body.push(0);
            body
        }
        (other, _) => panic!("no format {other}"),
    }
}

/// Produces `rows` to a new topic in `format`, a malformed message after every 61st row; returns
/// the topic and the (`topic/partition`, offset) of each malformed message.
fn topic_of(broker: &str, rows: &[Row], format: &str) -> (String, BTreeSet<(String, u64)>) {
    let topic = unique_topic(&format!("formats-{format}"));
    create_topic(broker, &topic, PARTITIONS);
    let mut messages = Vec::new();
    let mut offsets = BTreeMap::<i32, u64>::new();
    let mut bad = BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        let mut push = |payload: Vec<u8>, is_bad: bool| {
            let offset = offsets.entry(row.partition).or_insert(0);
            if is_bad {
                bad.insert((format!("{topic}/{}", row.partition), *offset));
            }
            *offset += 1;
            messages.push(Message {
                partition: row.partition,
                key: Some(row.card.clone().into_bytes()),
                payload,
                timestamp: row.ts,
            });
        };
        push(payload(row, format), false);
        if i % 61 == 60 {
            push(malformed(format, i / 61), true);
        }
    }
    produce(broker, &topic, &messages);
    (topic, bad)
}

fn job(source: &str) -> String {
    format!(
        r#"name = "formats"
[source]
{source}

[event_time]
column = "ts"
watermark_delay = "400ms"

[[operators]]
type = "window"
key = "card"
window = {{ type = "tumbling", size = "1s" }}
aggregates = [
  {{ fn = "count", as = "n" }},
  {{ fn = "sum", column = "cents", as = "cents" }},
  {{ fn = "max", column = "speed", as = "top" }},
]

[sink]
type = "csv"
path = "out.csv"

[late]
type = "jsonl"
path = "late.jsonl"

[dead_letter]
type = "jsonl"
path = "dead.jsonl"

# Micro-batches of 100 rows, so that the watermark moves within the input and late rows are late.
[batching]
max_rows = 100
"#
    )
}

const COLUMNS: &str = r#"columns = [
  { name = "id", type = "int64" }, { name = "card", type = "string" },
  { name = "cents", type = "int64" }, { name = "speed", type = "float64" },
  { name = "ts", type = "timestamp" },
]"#;

fn kafka_source(broker: &str, topic: &str, format: &str) -> String {
    let format = match format {
        "avro" => format!(
            "format = {{ type = \"avro\", schema = '''{AVRO_SCHEMA}''', confluent = true }}"
        ),
        // JSON infers its columns from the messages; CSV needs them declared.
        "json" => "format = \"json\"".to_string(),
        _ => format!("format = \"{format}\"\n{COLUMNS}"),
    };
    format!(
        "type = \"kafka\"\nbootstrap = \"{broker}\"\ntopics = \"{topic}\"\n\
         bounded = \"latest\"\nbatch_rows = 100\n{format}"
    )
}

/// Window (card, start) → (rows, sum of cents, max speed).
type Windows = BTreeMap<(String, String), (u32, i64, f64)>;

fn start_text(start: i64) -> String {
    let second = (start - T0) / 1_000;
    format!("2026-01-01T00:{:02}:{:02}Z", second / 60, second % 60)
}

/// The windows of `rows` but those in `late`, computed by a polars batch query.
fn oracle(rows: &[Row], late: &BTreeSet<i64>) -> Windows {
    let kept: Vec<&Row> = rows.iter().filter(|r| !late.contains(&r.id)).collect();
    let frame = df!(
        "card" => kept.iter().map(|r| r.card.clone()).collect::<Vec<_>>(),
        "cents" => kept.iter().map(|r| r.cents).collect::<Vec<_>>(),
        "speed" => kept.iter().map(|r| r.speed).collect::<Vec<_>>(),
        "ts" => kept.iter().map(|r| r.ts).collect::<Vec<_>>(),
    )
    .expect("frame");
    let out = frame
        .lazy()
        .with_column((col("ts") - col("ts") % lit(1_000i64)).alias("start"))
        .group_by([col("card"), col("start")])
        .agg([
            len().alias("n"),
            col("cents").sum().alias("cents"),
            col("speed").max().alias("top"),
        ])
        .collect()
        .expect("query");
    let card = out
        .column("card")
        .expect("card")
        .str()
        .expect("str")
        .clone();
    let start = out
        .column("start")
        .expect("start")
        .i64()
        .expect("i64")
        .clone();
    let n = out.column("n").expect("n").u32().expect("u32").clone();
    let cents = out
        .column("cents")
        .expect("cents")
        .i64()
        .expect("i64")
        .clone();
    let top = out.column("top").expect("top").f64().expect("f64").clone();
    (0..out.height())
        .map(|i| {
            (
                (
                    card.get(i).expect("card").to_string(),
                    start_text(start.get(i).expect("start")),
                ),
                (
                    n.get(i).expect("n"),
                    cents.get(i).expect("cents"),
                    top.get(i).expect("top"),
                ),
            )
        })
        .collect()
}

/// Runs `job` in `dir`; returns the windows written and the ids of the rows reported late.
fn run(dir: &Path, job: &str) -> (Windows, BTreeSet<i64>) {
    std::fs::write(dir.join("job.toml"), job).expect("job");
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "job.toml", "--backend", "cpu"])
        .current_dir(dir)
        .output()
        .expect("run sluice");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("out.csv")).expect("windows");
    let mut windows = Windows::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let value = (
            f[3].parse().expect("n"),
            f[4].parse().expect("cents"),
            f[5].parse().expect("top"),
        );
        assert!(
            windows
                .insert((f[0].to_string(), f[1].to_string()), value)
                .is_none(),
            "a window twice: {line}"
        );
    }
    let late = std::fs::read_to_string(dir.join("late.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("late row");
            v["id"].as_i64().expect("id")
        })
        .collect();
    (windows, late)
}

/// The dead letters in `dir`: (source, offset) → reason.
fn dead_letters(dir: &Path) -> BTreeMap<(String, u64), String> {
    std::fs::read_to_string(dir.join("dead.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("dead letter");
            (
                (
                    v["source"].as_str().expect("source").to_string(),
                    v["offset"].as_u64().expect("offset"),
                ),
                v["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect()
}

fn check(rows: &[Row], what: &str, (windows, late): (Windows, BTreeSet<i64>)) {
    let made_late: BTreeSet<i64> = rows.iter().filter(|r| r.late).map(|r| r.id).collect();
    assert!(
        late.is_subset(&made_late),
        "{what}: on-time rows reported late: {:?}",
        late.difference(&made_late).collect::<Vec<_>>()
    );
    assert!(!late.is_empty(), "{what}: no row was late");
    let want = oracle(rows, &late);
    assert!(want.len() > 300, "{what}: {} windows", want.len());
    let differ: Vec<_> = want
        .iter()
        .filter(|(k, v)| windows.get(*k) != Some(*v))
        .map(|(k, v)| (k, v, windows.get(k)))
        .chain(
            windows
                .iter()
                .filter(|(k, _)| !want.contains_key(*k))
                .map(|(k, v)| (k, v, None)),
        )
        .take(10)
        .collect();
    assert!(differ.is_empty(), "{what}: (window, want, got): {differ:?}");
}

#[test]
fn json_csv_and_avro_topics_give_the_windows_of_the_same_rows_read_from_files() {
    let Some(broker) = kafka_test_broker("kafka formats") else {
        return;
    };
    let rows = rows(4_000, 13);
    // The same rows as four CSV files, one per partition, in the partition's order.
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir(dir.path().join("in")).expect("in");
    for p in 0..PARTITIONS {
        let mut text = String::from("id,card,cents,speed,ts\n");
        for r in rows.iter().filter(|r| r.partition == p) {
            text.push_str(&format!(
                "{},{},{},{},{}\n",
                r.id, r.card, r.cents, r.speed, r.ts
            ));
        }
        std::fs::write(dir.path().join(format!("in/part-{p}.csv")), text).expect("file");
    }
    let files = format!("type = \"csv\"\npath = \"in\"\nbatch_rows = 100\n{COLUMNS}");
    check(&rows, "files", run(dir.path(), &job(&files)));
    for format in ["json", "csv", "avro"] {
        let (topic, bad) = topic_of(&broker, &rows, format);
        let dir = tempfile::tempdir().expect("dir");
        let windows = run(dir.path(), &job(&kafka_source(&broker, &topic, format)));
        check(&rows, format, windows);
        let dead = dead_letters(dir.path());
        assert_eq!(
            dead.keys().cloned().collect::<BTreeSet<_>>(),
            bad,
            "{format}: {dead:#?}"
        );
    }
}
