//! The exactly-once Kafka sink's transactions against the real broker, driven through the
//! sink's own interface: a prepared epoch survives its producer (a restart fences the old
//! producer, which can no longer commit, and delivers the epoch from the journal), and an
//! epoch that committed is not sent again. What committed is read from the topic's log with
//! the transaction markers applied ([`crate::common::kafka_log`]).

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use sluice_connectors::kafka::{KafkaSinkSpec, TransactionScope, TransactionalKafkaSink};
use sluice_engine::sink::Sink;

use crate::common::kafka::{create_topic, kafka_test_broker, unique_topic};
use crate::common::kafka_log::{by_header, committed_records};

/// Rows `k` (a key), `v` (`from..to`).
pub(crate) fn rows(from: i64, to: i64) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("k", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                (from..to).map(|i| format!("key-{}", i % 5)),
            )),
            Arc::new(Int64Array::from_iter_values(from..to)),
        ],
    )
    .expect("batch")
}

/// The values `v` the committed messages of `topic` (2 partitions) carry, sorted, the aborts
/// seen and the attempts that committed.
pub(crate) fn committed_values(broker: &str, topic: &str) -> (Vec<i64>, usize, usize) {
    let (records, aborts) = committed_records(broker, topic, 2);
    let attempts = by_header(&records, "sluice-attempt").len();
    let mut values: Vec<i64> = records
        .iter()
        .map(|r| {
            let row: serde_json::Value =
                serde_json::from_slice(r.value.as_deref().expect("value")).expect("json");
            row["v"].as_i64().expect("v")
        })
        .collect();
    values.sort_unstable();
    (values, aborts, attempts)
}

#[test]
fn a_restart_fences_the_old_producer_and_delivers_its_prepared_epoch_once() {
    let Some(broker) = kafka_test_broker("kafka transactions") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let checkpoints = dir.path().join("checkpoints").display().to_string();
    fences_and_delivers_once(&broker, &checkpoints, dir.path());
    // The journal keeps nothing once every epoch is delivered.
    let journal = dir.path().join("checkpoints/kafka-journal/sink");
    let left: Vec<_> = walk(&journal);
    assert!(left.is_empty(), "journal leftovers: {left:?}");
}

/// The same with the checkpoints, and so the journal, on S3 (moto).
#[test]
fn a_journal_on_object_storage_delivers_a_prepared_epoch_once() {
    let Some(broker) = kafka_test_broker("kafka transactions on S3") else {
        return;
    };
    let Some(checkpoints) = crate::common::s3_test_prefix("kafka-journal") else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    fences_and_delivers_once(&broker, &checkpoints, dir.path());
}

/// Epoch 1 committed; epoch 2 prepared when a second sink (the restarted job) opens, fences
/// the first and recovers epoch 2 from the journal under `checkpoints`; epoch 3 committed;
/// a third sink recovering epoch 3 sends nothing again.
fn fences_and_delivers_once(broker: &str, checkpoints: &str, dir: &std::path::Path) {
    let topic = unique_topic("txn");
    create_topic(broker, &topic, 2);
    let spec: KafkaSinkSpec = serde_json::from_value(serde_json::json!({
        "bootstrap": broker, "topic": topic, "key": "k", "delivery": "exactly_once",
        // tansu drops a fenced producer's connection instead of answering PRODUCER_FENCED, so
        // its commit fails only when the transaction timeout runs out.
        "properties": { "transaction.timeout.ms": "3000" },
    }))
    .expect("spec");
    let scope = TransactionScope {
        job: topic.clone(),
        role: "sink".into(),
        checkpoints: checkpoints.to_string(),
    };
    let open =
        || TransactionalKafkaSink::create(&spec, rows(0, 0).schema(), &scope, dir).expect("sink");
    let mut first = open();
    first.write(&rows(0, 100)).expect("write");
    let one = first.prepare(1).expect("prepare").expect("staged");
    first.commit(&one).expect("commit");
    first.write(&rows(100, 250)).expect("write");
    let two = first.prepare(2).expect("prepare").expect("staged");
    // Epoch 2 is prepared (sent, in an open transaction) when the job "restarts".
    let mut second = open();
    assert!(
        first.commit(&two).is_err(),
        "the fenced producer must not commit"
    );
    second.recover(2, &[two]).expect("recover");
    second.write(&rows(250, 300)).expect("write");
    let three = second.prepare(3).expect("prepare").expect("staged");
    second.commit(&three).expect("commit");
    // A restart from checkpoint 3, whose epoch committed: nothing is sent again.
    let mut third = open();
    third.recover(3, &[three]).expect("recover");
    third.close().expect("close");
    let (values, aborts, attempts) = committed_values(broker, &topic);
    assert_eq!(
        values,
        (0..300).collect::<Vec<_>>(),
        "every row committed once"
    );
    // One abort marker in each partition the fenced producer's epoch 2 wrote to (both).
    assert_eq!(aborts, 2, "the fenced producer's epoch 2 was aborted");
    assert_eq!(attempts, 3, "epochs 1, 2 (again) and 3 committed");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
