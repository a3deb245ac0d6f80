//! The Kafka test broker (`SLUICE_TEST_KAFKA`, a tansu broker that `scripts/test` starts on
//! 127.0.0.1): topics of a test's own, and messages produced into chosen partitions.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Message {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub timestamp: i64,
}

/// The broker's address, or `None` after printing why there is none: unless
/// `REQUIRE_KAFKA=1`, which makes a missing broker a failure.
pub fn kafka_test_broker(name: &str) -> Option<String> {
    let broker = std::env::var("SLUICE_TEST_KAFKA").unwrap_or_default();
    if broker.is_empty() {
        let why = "SLUICE_TEST_KAFKA is not set (scripts/test starts a broker and sets it)";
        assert!(
            std::env::var("REQUIRE_KAFKA").as_deref() != Ok("1"),
            "{name}: {why}, and REQUIRE_KAFKA=1 forbids skipping"
        );
        eprintln!("skipping {name}: {why}");
        return None;
    }
    Some(broker)
}

/// A topic name no other test or run uses.
pub fn unique_topic(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{name}-{}-{nanos}", std::process::id())
}

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(broker: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(admin.create_topics([&new], &options))
        .expect("create topics");
    for result in results {
        result.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
    }
}

/// Produces `messages` in order, batched as the producer likes, and waits until the broker
/// has them all. (tansu answers ListOffsets with less than a partition's end when its last
/// record batch holds several messages; the Kafka source reads the end from a fetch, and
/// these batches keep that path tested.)
pub fn produce(broker: &str, topic: &str, messages: &[Message]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for m in messages {
        let mut record = BaseRecord::to(topic)
            .partition(m.partition)
            .payload(&m.payload)
            .timestamp(m.timestamp);
        if let Some(key) = &m.key {
            record = record.key(key);
        }
        let mut record = Some(record);
        while let Some(r) = record.take() {
            if let Err((e, r)) = producer.send(r) {
                assert!(
                    matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "producing to {topic}: {e}"
                );
                producer.poll(Duration::from_millis(50));
                record = Some(r);
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// Every message of `topic` as (key, value), read from the start of every partition (assigned,
/// not subscribed: no group join to wait for) until the broker has had nothing more for a
/// second.
pub fn consume_all(broker: &str, topic: &str) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message as _, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut list = TopicPartitionList::new();
    for t in metadata.topics().iter().filter(|t| t.name() == topic) {
        for p in t.partitions() {
            list.add_partition_offset(topic, p.id(), Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&list).expect("assign");
    let mut out = Vec::new();
    let mut quiet_since = std::time::Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(1) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                out.push((
                    m.key().map(<[u8]>::to_vec),
                    m.payload().unwrap_or_default().to_vec(),
                ));
                quiet_since = std::time::Instant::now();
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}
