//! Scale-out through a Kafka consumer group, against the real broker: three workers share six
//! partitions, one is SIGKILLed and a fourth joins later, and the union of what they published
//! equals a count made here from the messages produced, each window once; no partition was
//! read by two workers at once (their logs say who read what when); offsets reach the group.
//! A worker subscribed to a topic pattern reads a topic created while it runs; so does a job in
//! one process, which stops with a checkpoint and starts again over the new partitions. Two
//! workers repartition a topic not keyed by the window key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Rng;
use crate::common::kafka::{Message, create_topic, kafka_test_broker, produce, unique_topic};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const PARTITIONS: i32 = 6;
/// Keys; key `k` lives in partition `k % PARTITIONS`, as a keyed producer would put it.
const CARDS: u64 = 24;

/// A window: (card, start ms); its (messages, sum of amounts).
type Windows = BTreeMap<(String, i64), (u64, i64)>;

/// Messages `from..to` of a seeded stream: time T0 + 5 ms per message minus up to 300 ms of
/// disorder (less than the job's 400 ms watermark delay, so no row is late in any partition,
/// whichever worker reads it).
fn messages(from: usize, to: usize) -> Vec<Message> {
    messages_of("card", PARTITIONS, from, to)
}

/// As [`messages`], with cards named `<cards>-<k>` over `partitions` partitions.
fn messages_of(cards: &str, partitions: i32, from: usize, to: usize) -> Vec<Message> {
    let mut rng = Rng::new(41);
    let all: Vec<Message> = (0..to)
        .map(|i| {
            let card = rng.below(CARDS);
            let amount = rng.below(10_000) as i64;
            let ts = T0 + i as i64 * 5 - rng.below(301) as i64;
            Message {
                partition: (card % partitions as u64) as i32,
                key: Some(format!("{cards}-{card}").into_bytes()),
                payload: format!(r#"{{"ts": {ts}, "card": "{cards}-{card}", "amount": {amount}}}"#)
                    .into_bytes(),
                timestamp: ts,
            }
        })
        .collect();
    all[from..].to_vec()
}

/// One message per partition far in the future: its watermark closes every window before it.
fn flush_messages() -> Vec<Message> {
    flush_messages_of(PARTITIONS)
}

/// As [`flush_messages`], for a topic of `partitions` partitions.
fn flush_messages_of(partitions: i32) -> Vec<Message> {
    (0..partitions)
        .map(|p| Message {
            partition: p,
            key: Some(b"flush".to_vec()),
            payload: format!(
                r#"{{"ts": {}, "card": "flush", "amount": 0}}"#,
                T0 + 3_600_000
            )
            .into_bytes(),
            timestamp: T0 + 3_600_000,
        })
        .collect()
}

/// 1 s tumbling windows per card, counted here from the messages.
fn expected(messages: &[Message]) -> Windows {
    let mut want = Windows::new();
    for m in messages {
        let row: serde_json::Value = serde_json::from_slice(&m.payload).expect("json");
        let card = row["card"].as_str().expect("card").to_string();
        let ts = row["ts"].as_i64().expect("ts");
        let entry = want
            .entry((card, ts.div_euclid(1_000) * 1_000))
            .or_insert((0, 0));
        entry.0 += 1;
        entry.1 += row["amount"].as_i64().expect("amount");
    }
    want
}

fn job(broker: &str, topics: &str, group: &str, discovery: &str) -> String {
    format!(
        r#"name = "scale-out"
[source]
type = "kafka"
bootstrap = "{broker}"
topics = "{topics}"
group = "{group}"
format = "json"
columns = [
  {{ name = "ts", type = "int64" }},
  {{ name = "card", type = "string" }},
  {{ name = "amount", type = "int64" }},
]
batch_rows = 50
partition_discovery = "{discovery}"

[event_time]
column = "ts"
watermark_delay = "400ms"

[batching]
max_rows = 50

[[operators]]
type = "window"
key = "card"
window = {{ type = "tumbling", size = "1s" }}
aggregates = [{{ fn = "count", as = "n" }}, {{ fn = "sum", column = "amount", as = "total" }}]

[sink]
type = "parquet"
path = "out"

[checkpoint]
location = "checkpoints"
interval = "200ms"

[cluster]
session_timeout = "6s"
partitioned_by = "card"
"#
    )
}

/// A worker process; its stderr goes to `worker-<n>.log` in `dir`.
fn start_worker(dir: &Path, n: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("worker-{n}.log"))).expect("log");
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "job.toml", "--backend", "cpu"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start a worker")
}

/// Every window published under `out` (one folder per partition), failing on a window
/// published twice.
fn published(out: &Path) -> Windows {
    use arrow::array::{AsArray, RecordBatch};
    use arrow::datatypes::Int64Type;
    let mut got = Windows::new();
    for part in parts(out) {
        let file = std::fs::File::open(&part).expect("part");
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("parquet")
            .build()
            .expect("reader");
        for batch in reader {
            let batch: RecordBatch = batch.expect("batch");
            let column = |name: &str| batch.column_by_name(name).expect("column").clone();
            let (cards, starts) = (column("card"), column("window_start"));
            let (n, total) = (column("n"), column("total"));
            let starts = arrow::compute::cast(&starts, &arrow::datatypes::DataType::Int64)
                .expect("window start as ms");
            for i in 0..batch.num_rows() {
                let key = (
                    cards.as_string::<i32>().value(i).to_string(),
                    starts.as_primitive::<Int64Type>().value(i),
                );
                let row = (
                    n.as_primitive::<Int64Type>().value(i) as u64,
                    total.as_primitive::<Int64Type>().value(i),
                );
                assert!(
                    got.insert(key.clone(), row).is_none(),
                    "window {key:?} published twice ({})",
                    part.display()
                );
            }
        }
    }
    got
}

/// The published Parquet parts in `out` and in its folders (one per partition, for workers),
/// staging areas excluded.
fn parts(out: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(out) else {
        return found;
    };
    let is_part = |p: &Path| p.extension().is_some_and(|e| e == "parquet");
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() && !path.ends_with("_staging") {
            for entry in std::fs::read_dir(&path).expect("task folder").flatten() {
                if is_part(&entry.path()) {
                    found.push(entry.path());
                }
            }
        } else if is_part(&path) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Waits until `done` holds, or fails after `limit` with `what`.
fn wait_for(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Asks a worker to stop (SIGTERM: a checkpoint, then it leaves the group) and waits for it,
/// a minute at most.
fn stop(child: &mut Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "worker {} did not stop within a minute of SIGTERM",
                child.id()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "a worker stopped with {status}");
}

/// When each partition was held by whom: (partition, worker, from ms, until ms), from the
/// workers' logs; a worker killed at `killed` (ms) held what it had open until then.
fn holdings(dir: &Path, killed: &BTreeMap<usize, u128>) -> Vec<(String, usize, u128, u128)> {
    let mut held = Vec::new();
    for n in 1..=4 {
        let Ok(log) = std::fs::read_to_string(dir.join(format!("worker-{n}.log"))) else {
            continue;
        };
        let mut open: BTreeMap<String, u128> = BTreeMap::new();
        for line in log.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 6 || words[0] != "sluice" || words[1] != "worker" {
                continue;
            }
            let at = |w: &str| w.parse::<u128>().expect("a time in ms");
            match words[3] {
                "reading" => {
                    open.insert(words[4].to_string(), at(words[6]));
                }
                "released" => {
                    let from = open.remove(words[4]).expect("released what it read");
                    held.push((words[4].to_string(), n, from, at(words[6])));
                }
                _ => {}
            }
        }
        for (partition, from) in open {
            let until = killed.get(&n).copied().unwrap_or(u128::MAX);
            held.push((partition, n, from, until));
        }
    }
    held
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
}

#[test]
fn three_workers_one_killed_one_added_publish_what_one_process_would() {
    let Some(broker) = kafka_test_broker("kafka scale-out") else {
        return;
    };
    let topic = unique_topic("scale-out");
    let group = format!("{topic}-group");
    create_topic(&broker, &topic, PARTITIONS);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("job.toml"),
        job(&broker, &topic, &group, "30s"),
    )
    .expect("job");
    let total = 12_000;
    produce(&broker, &topic, &messages(0, 2_000));
    let mut workers: BTreeMap<usize, Child> =
        (1..=3).map(|n| (n, start_worker(dir.path(), n))).collect();
    let out = dir.path().join("out");
    wait_for(Duration::from_secs(60), "output from the workers", || {
        parts(&out).len() >= 3
    });
    // The group settles: each of the three holds some of the six partitions.
    wait_for(
        Duration::from_secs(60),
        "the partitions spread over three workers",
        || {
            let open: Vec<_> = holdings(dir.path(), &BTreeMap::new())
                .into_iter()
                .filter(|h| h.3 == u128::MAX)
                .collect();
            let owners: std::collections::BTreeSet<usize> = open.iter().map(|h| h.1).collect();
            open.len() == PARTITIONS as usize && owners.len() == 3
        },
    );
    // A worker dies mid-run; its partitions move to the others after the session timeout.
    produce(&broker, &topic, &messages(2_000, 6_000));
    let mut victim = workers.remove(&2).expect("worker 2");
    victim.kill().expect("SIGKILL");
    victim.wait().expect("reap");
    let killed = BTreeMap::from([(2, now_ms())]);
    produce(&broker, &topic, &messages(6_000, 8_000));
    std::thread::sleep(Duration::from_secs(8));
    workers.insert(4, start_worker(dir.path(), 4));
    produce(&broker, &topic, &messages(8_000, total));
    produce(&broker, &topic, &flush_messages());
    let want = expected(&messages(0, total));
    wait_for(Duration::from_secs(120), "every window published", || {
        published(&out).len() >= want.len()
    });
    for child in workers.values_mut() {
        stop(child);
    }
    let logs: String = (1..=4)
        .map(|n| {
            std::fs::read_to_string(dir.path().join(format!("worker-{n}.log"))).unwrap_or_default()
        })
        .collect();
    assert_eq!(published(&out), want, "published windows\n{logs}");

    // No partition was held by two workers at once.
    let mut held = holdings(dir.path(), &killed);
    held.sort_by(|a, b| (&a.0, a.2).cmp(&(&b.0, b.2)));
    for pair in held.windows(2) {
        let ((p, a, _, until), (q, b, from, _)) = (&pair[0], &pair[1]);
        if p == q {
            assert!(
                until <= from,
                "{p} held by worker {a} until {until} and by worker {b} from {from}\n{logs}"
            );
        }
    }
    let at_kill = killed[&2];
    assert!(
        held.iter().any(|h| h.1 == 2 && h.3 == at_kill),
        "worker 2 held no partition when it was killed\n{logs}"
    );
    eprintln!("who held what (partition, worker, from, until): {held:?}");
    let owners: std::collections::BTreeSet<usize> = held.iter().map(|h| h.1).collect();
    assert!(
        owners.contains(&4),
        "the worker started last got no partition\n{logs}"
    );
    // Offsets reached the group through the workers' membership.
    let ends = messages(0, total).iter().chain(&flush_messages()).fold(
        BTreeMap::<i32, i64>::new(),
        |mut n, m| {
            *n.entry(m.partition).or_default() += 1;
            n
        },
    );
    wait_for(
        Duration::from_secs(10),
        "offsets committed to the group",
        || committed(&broker, &topic, &group) == ends,
    );
}

#[test]
fn a_worker_on_a_topic_pattern_reads_a_topic_created_while_it_runs() {
    let Some(broker) = kafka_test_broker("kafka partitions added") else {
        return;
    };
    let prefix = unique_topic("grow");
    let (first, later) = (format!("{prefix}-a"), format!("{prefix}-b"));
    create_topic(&broker, &first, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("job.toml"),
        job(
            &broker,
            &format!("^{prefix}-.*"),
            &format!("{prefix}-group"),
            "1s",
        ),
    )
    .expect("job");
    produce(&broker, &first, &messages_of("a", 2, 0, 1_000));
    let mut worker = start_worker(dir.path(), 1);
    let out = dir.path().join("out");
    wait_for(Duration::from_secs(60), "output of the first topic", || {
        !parts(&out).is_empty()
    });
    // New partitions (here: those of a new topic matching the pattern, since the test broker
    // cannot add partitions to a topic) join the assignment at the next rebalance.
    create_topic(&broker, &later, 2);
    produce(&broker, &later, &messages_of("b", 2, 1_000, 2_000));
    let flush = flush_messages_of(2);
    produce(&broker, &first, &flush);
    produce(&broker, &later, &flush);
    let mut want = expected(&messages_of("a", 2, 0, 1_000));
    want.extend(expected(&messages_of("b", 2, 1_000, 2_000)));
    let folder = format!("{later}-0");
    wait_for(Duration::from_secs(60), "the new topic's windows", || {
        out.join(&folder).is_dir() && published(&out) == want
    });
    stop(&mut worker);
    assert_eq!(published(&out), want);
}

#[test]
fn a_job_in_one_process_starts_again_to_read_a_topic_created_while_it_runs() {
    let Some(broker) = kafka_test_broker("kafka partitions discovered") else {
        return;
    };
    let prefix = unique_topic("found");
    let (first, later) = (format!("{prefix}-a"), format!("{prefix}-b"));
    create_topic(&broker, &first, 2);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = job(
        &broker,
        &format!("^{prefix}-.*"),
        &format!("{prefix}-group"),
        "1s",
    );
    let single = &text[..text.find("[cluster]").expect("a cluster table")];
    std::fs::write(dir.path().join("job.toml"), single).expect("job");
    produce(&broker, &first, &messages_of("a", 2, 0, 1_000));
    let mut job = start_worker(dir.path(), 1);
    let out = dir.path().join("out");
    let log = || std::fs::read_to_string(dir.path().join("worker-1.log")).unwrap_or_default();
    wait_for(Duration::from_secs(60), "output of the first topic", || {
        !parts(&out).is_empty()
    });
    create_topic(&broker, &later, 2);
    produce(&broker, &later, &messages_of("b", 2, 1_000, 2_000));
    wait_for(
        Duration::from_secs(60),
        "a restart over the new partitions",
        || log().contains("starting again to read them"),
    );
    assert!(
        log().contains(&format!(
            "new Kafka partitions {later}/0, {later}/1 appeared"
        )),
        "{}",
        log()
    );
    let flush = flush_messages_of(2);
    produce(&broker, &first, &flush);
    produce(&broker, &later, &flush);
    let mut want = expected(&messages_of("a", 2, 0, 1_000));
    want.extend(expected(&messages_of("b", 2, 1_000, 2_000)));
    wait_for(Duration::from_secs(60), "every window published", || {
        published(&out).len() >= want.len()
    });
    stop(&mut job);
    assert_eq!(published(&out), want, "{}", log());
}

/// The offsets `group` has committed for `topic`'s partitions that have one.
fn committed(broker: &str, topic: &str, group: &str) -> BTreeMap<i32, i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(topic, p);
    }
    let found = consumer
        .committed_offsets(list, Duration::from_secs(10))
        .expect("committed offsets");
    (0..PARTITIONS)
        .filter_map(|p| match found.find_partition(topic, p)?.offset() {
            Offset::Offset(n) => Some((p, n)),
            _ => None,
        })
        .collect()
}

#[test]
fn two_workers_repartition_a_topic_not_keyed_by_the_window_key() {
    let Some(broker) = kafka_test_broker("kafka repartition") else {
        return;
    };
    let topic = unique_topic("unkeyed");
    create_topic(&broker, &topic, 4);
    let dir = tempfile::tempdir().expect("tempdir");
    // The topic's partitions hold every card: rows go round robin, not by key.
    let round_robin = |from: usize, to: usize| -> Vec<Message> {
        messages(from, to)
            .into_iter()
            .zip(from..to)
            .map(|(mut m, i)| {
                m.partition = (i % 4) as i32;
                m
            })
            .collect()
    };
    let text = job(&broker, &topic, &format!("{topic}-group"), "30s").replace(
        "partitioned_by = \"card\"\n",
        &format!(
            "[cluster.repartition]\ntopic = \"{topic}-by-card\"\nby = \"card\"\npartitions = 3\n"
        ),
    );
    std::fs::write(dir.path().join("job.toml"), text).expect("job");
    // Partition 3 stays silent at first: its writer has sent no watermark, so no window may
    // close downstream however far the other partitions' rows go (a watermark from the rows'
    // own times would close them, and partition 3's rows would then arrive late).
    let (early, held_back): (Vec<Message>, Vec<Message>) = round_robin(0, 6_000)
        .into_iter()
        .partition(|m| m.partition != 3);
    let flush = flush_messages_of(4);
    let (flush_early, flush_late): (Vec<Message>, Vec<Message>) =
        flush.into_iter().partition(|m| m.partition != 3);
    produce(&broker, &topic, &early);
    produce(&broker, &topic, &flush_early);
    let mut workers = vec![start_worker(dir.path(), 1), start_worker(dir.path(), 2)];
    let out = dir.path().join("out");
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        published(&out).is_empty(),
        "windows closed before every writer sent its watermark"
    );
    produce(&broker, &topic, &held_back);
    produce(&broker, &topic, &flush_late);
    let want = expected(&messages(0, 6_000));
    let logs = || -> String {
        (1..=2)
            .map(|n| {
                std::fs::read_to_string(dir.path().join(format!("worker-{n}.log")))
                    .unwrap_or_default()
            })
            .collect()
    };
    let start = Instant::now();
    while published(&out).len() < want.len() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{} of {} windows published\n{}",
            published(&out).len(),
            want.len(),
            logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for child in &mut workers {
        stop(child);
    }
    assert_eq!(published(&out), want, "published windows\n{}", logs());
    // Windows were made by the tasks of the repartition topic's partitions.
    let folders: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        folders
            .iter()
            .all(|f| f.starts_with(&format!("{topic}-by-card-"))),
        "{folders:?}"
    );
}
