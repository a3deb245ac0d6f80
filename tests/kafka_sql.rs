//! SQL tables on Kafka topics (tansu, started by `scripts/test`), with Flink's connector options:
//! a windowed `INSERT` from a topic of JSON payments into another topic, reading a `METADATA`
//! column, equals a count made here from the produced messages; the output's message keys hold
//! the `key.fields`.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::Rng;
use crate::common::kafka::{
    Message, consume_all, create_topic, kafka_test_broker, produce, unique_topic,
};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

/// (card, window start in ms) → (payments, cents, distinct partitions).
type Windows = BTreeMap<(i64, i64), (i64, i64, i64)>;

#[test]
fn a_sql_job_reads_and_writes_kafka_tables() {
    let Some(broker) = kafka_test_broker("a_sql_job_reads_and_writes_kafka_tables") else {
        return;
    };
    let (input, output) = (unique_topic("sql-payments"), unique_topic("sql-totals"));
    create_topic(&broker, &input, 3);
    create_topic(&broker, &output, 1);
    let mut rng = Rng::new(21);
    let mut want: BTreeMap<(i64, i64), (i64, i64, Vec<i32>)> = BTreeMap::new();
    let messages: Vec<Message> = (0..600)
        .map(|i| {
            let ts = T0 + 1_000 + i * 20 - rng.below(301) as i64;
            let (card, cents, partition) = (i % 5, (i * 37) % 1_000, rng.below(3) as i32);
            let entry = want
                .entry((card, ts - ts.rem_euclid(2_000)))
                .or_insert((0, 0, Vec::new()));
            entry.0 += 1;
            entry.1 += cents;
            if !entry.2.contains(&partition) {
                entry.2.push(partition);
            }
            Message {
                partition,
                key: None,
                payload: format!(r#"{{"ts": {ts}, "card": {card}, "cents": {cents}}}"#)
                    .into_bytes(),
                timestamp: ts,
            }
        })
        .collect();
    let want: Windows = want
        .into_iter()
        .map(|(window, (n, cents, parts))| (window, (n, cents, parts.len() as i64)))
        .collect();
    produce(&broker, &input, &messages);

    let dir = tempfile::tempdir().expect("tempdir");
    let script = format!(
        "CREATE TABLE payments (
           ts TIMESTAMP(3), card BIGINT, cents BIGINT,
           part INT METADATA FROM 'partition' VIRTUAL,
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
         ) WITH ('connector' = 'kafka', 'topic' = '{input}',
                 'properties.bootstrap.servers' = '{broker}', 'properties.group.id' = '{input}-g',
                 'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset',
                 'format' = 'json');
         CREATE TABLE totals (card BIGINT, window_start TIMESTAMP(3), n BIGINT, cents BIGINT,
                              partitions BIGINT)
         WITH ('connector' = 'kafka', 'topic' = '{output}',
               'properties.bootstrap.servers' = '{broker}', 'format' = 'json',
               'key.fields' = 'card');
         INSERT INTO totals
         SELECT card, window_start, COUNT(*), SUM(cents), COUNT(DISTINCT part)
         FROM TABLE(TUMBLE(TABLE payments, DESCRIPTOR(ts), INTERVAL '2' SECOND))
         GROUP BY window_start, window_end, card;"
    );
    std::fs::write(dir.path().join("job.sql"), script).expect("script");
    let run = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "job.sql", "--backend", "cpu"])
        .current_dir(dir.path())
        .output()
        .expect("run sluice");
    assert!(
        run.status.success(),
        "sluice run: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    let mut got = Windows::new();
    for (key, payload) in consume_all(&broker, &output) {
        let row: serde_json::Value = serde_json::from_slice(&payload).expect("a JSON row");
        let int = |name: &str| {
            row[name]
                .as_i64()
                .unwrap_or_else(|| panic!("{name} in {row}"))
        };
        let start = row["window_start"].as_str().expect("window_start");
        let start = T0 + seconds_into_2026(start) * 1_000;
        let key: serde_json::Value =
            serde_json::from_slice(&key.expect("a key")).expect("a JSON key");
        assert_eq!(
            key,
            serde_json::json!({ "card": int("card") }),
            "the key holds the key.fields, as Flink's json key.format writes them"
        );
        let previous = got.insert(
            (int("card"), start),
            (int("n"), int("cents"), int("partitions")),
        );
        assert!(previous.is_none(), "a window written twice: {row}");
    }
    assert_eq!(got, want);
}

/// Seconds after 2026-01-01T00:00:00 of a time `2026-01-01T00:MM:SS...` as the sink writes it.
fn seconds_into_2026(text: &str) -> i64 {
    let time = text
        .strip_prefix("2026-01-01T00:")
        .unwrap_or_else(|| panic!("a time within the first hour: {text}"));
    let minutes: i64 = time[..2].parse().expect("minutes");
    let seconds: i64 = time[3..5].parse().expect("seconds");
    minutes * 60 + seconds
}

#[test]
fn planning_a_kafka_table_with_declared_columns_reaches_no_broker() {
    // Nothing listens on port 1: planning must not need it (running the job would). Building
    // the source to learn its columns, as planning did, fails here looking for partitions.
    let script = "CREATE TABLE payments (ts TIMESTAMP(3), card BIGINT, cents BIGINT,
                    part INT METADATA FROM 'partition' VIRTUAL,
                    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
                  WITH ('connector' = 'kafka', 'topic' = 'payments',
                        'properties.bootstrap.servers' = '127.0.0.1:1', 'format' = 'json');
                  CREATE TABLE o WITH ('connector' = 'blackhole');
                  INSERT INTO o SELECT card, cents, part FROM payments WHERE cents > 0;";
    let job = sluice::job::JobFile::from_sql(script, std::path::Path::new("/jobs/job.sql"), &[])
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(job.spec.streams.is_empty() && job.spec.source.is_some());
}
