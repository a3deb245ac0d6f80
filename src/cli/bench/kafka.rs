//! The `kafka` workload: JSON transactions in a topic of 12 partitions on a broker (`--kafka`),
//! read by sluice (decoded column-wise, 1 s tumbling count and sum per card, discarded) and,
//! in the same invocation, by a plain rdkafka consumer that only counts the messages. Their
//! ratio is what decoding and windowing cost over fetching the bytes; the topic is produced
//! first, untimed, by a sluice job (generator into a Kafka sink).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;
use sluice::job::JobFile;

/// Partitions of the benchmark topic (the issue's setup).
pub const PARTITIONS: i32 = 12;

/// How long the plain consumer may go without a message before it gives up.
const STALL: Duration = Duration::from_secs(30);

/// What the workload measured besides sluice's own runs.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaReport {
    pub broker: String,
    pub topic: String,
    pub partitions: i32,
    pub messages: u64,
    /// Producing the topic (a sluice job, generator to Kafka sink): not part of the figure.
    pub produce_seconds: f64,
    /// The plain consumer's messages per second, each run.
    pub consumer_runs: Vec<f64>,
    /// Its median run.
    pub consumer_messages_per_second: f64,
    /// JSON messages (the topic's kind) decoded into Arrow columns per second on one thread,
    /// no broker involved: the decoder alone.
    pub json_decoded_per_second_one_thread: f64,
    /// The same job as 1, 2, 3... worker processes of one group (`--kafka-workers`).
    pub scale_out: Vec<super::scale_out::ScaleOutRun>,
}

/// Creates a fresh topic and fills it with `events` JSON transactions; its name and report.
pub fn prepare(broker: &str, events: u64) -> Result<KafkaReport> {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let topic = format!("sluice-bench-{events}-{unique}");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .context("connecting the Kafka admin client")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let created = runtime.block_on(admin.create_topics(
        &[NewTopic::new(
            &topic,
            PARTITIONS,
            TopicReplication::Fixed(1),
        )],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ));
    for result in created.with_context(|| format!("creating {topic} on {broker}"))? {
        if let Err((name, e)) = result {
            bail!("creating topic {name} on {broker}: {e}");
        }
    }
    eprintln!("  producing {events} JSON transactions into {topic} ({PARTITIONS} partitions)");
    let job = JobFile::parse(
        &format!(
            "name = \"bench-kafka-produce\"\n{}",
            PRODUCE
                .replace("EVENTS", &events.to_string())
                .replace("BOOTSTRAP", broker)
                .replace("TOPIC", &topic)
        ),
        "bench-kafka-produce.toml".as_ref(),
        &[],
    )?;
    let started = Instant::now();
    let backend = sluice::job::BackendChoice::Cpu.open()?;
    super::run_once(&job, &backend, events, "producing")?;
    Ok(KafkaReport {
        broker: broker.to_string(),
        topic,
        partitions: PARTITIONS,
        messages: events,
        produce_seconds: started.elapsed().as_secs_f64(),
        consumer_runs: Vec::new(),
        consumer_messages_per_second: 0.0,
        json_decoded_per_second_one_thread: decode_rate()?,
        scale_out: Vec::new(),
    })
}

/// Messages of the topic's kind decoded per second by one thread: 20 polls of 10,000 JSON
/// transactions, through the Kafka source's decoder with the job's declared columns.
fn decode_rate() -> Result<f64> {
    use sluice::kafka_bench_input::{columns, records, transaction};
    use sluice_connectors::kafka::{FormatSpec, PayloadDecoder};
    let decoder = PayloadDecoder::new(&FormatSpec::Json, &columns(), &[], &[], ".".as_ref())?;
    let payloads: Vec<Vec<u8>> = (0..10_000).map(|i| transaction(i).json()).collect();
    let records = records(&payloads);
    let first = decoder.decode(&records)?;
    if first.batch.num_rows() != records.len() {
        bail!(
            "the decode benchmark's messages did not all decode: {:?}",
            first.dead_letters.first()
        );
    }
    let started = Instant::now();
    for _ in 0..20 {
        std::hint::black_box(decoder.decode(&records)?);
    }
    let rate = 20.0 * records.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!("  JSON decoding, one thread: {}/s", super::human(rate));
    Ok(rate)
}

/// One run of the plain consumer: every partition assigned from its start, messages counted
/// (payloads touched, not decoded) until all `expected` arrived; messages per second.
pub fn count_messages(broker: &str, topic: &str, expected: u64) -> Result<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", format!("{topic}-counter"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("creating the plain consumer")?;
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    let started = Instant::now();
    consumer.assign(&list)?;
    let (mut count, mut bytes) = (0u64, 0usize);
    let mut last = Instant::now();
    while count < expected {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                use rdkafka::Message;
                bytes += message.payload().map_or(0, <[u8]>::len);
                count += 1;
                last = Instant::now();
            }
            Some(Err(e)) => bail!("the plain consumer: {e}"),
            None if last.elapsed() > STALL => {
                bail!("the plain consumer stalled at {count} of {expected} messages")
            }
            None => {}
        }
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "  plain rdkafka consumer: {count} messages ({:.0} MB) at {}/s",
        bytes as f64 / 1e6,
        super::human(rate)
    );
    Ok(rate)
}

/// The sluice job of the workload: the topic, decoded with declared columns, windowed,
/// discarded.
pub fn job(broker: &str, topic: &str, batch_rows: usize) -> String {
    format!(
        "name = \"bench-kafka\"\n{}\n[batching]\nmax_rows = {batch_rows}\n\n[sink]\ntype = \"discard\"\n",
        CONSUME.replace("BOOTSTRAP", broker).replace("TOPIC", topic)
    )
}

const PRODUCE: &str = r#"
[source]
type = "generator"
generator = "transactions"
events = EVENTS
keys = 10_000
partitions = 2
event_time_rate = 1_000_000

[event_time]
column = "ts"

[sink]
type = "kafka"
bootstrap = "BOOTSTRAP"
topic = "TOPIC"
key = "card_id"
[sink.properties]
"linger.ms" = "50"
"batch.num.messages" = "10000"
"#;

const CONSUME: &str = r#"
[source]
type = "kafka"
bootstrap = "BOOTSTRAP"
topics = "TOPIC"
bounded = "latest"
format = "json"
columns = [
  { name = "ts", type = "timestamp" },
  { name = "card_id", type = "int64" },
  { name = "merchant_id", type = "int64" },
  { name = "amount_cents", type = "int64" },
  { name = "country", type = "string" },
  { name = "channel", type = "string" },
]

[event_time]
column = "ts"
watermark_delay = "0s"

[[operators]]
type = "window"
key = "card_id"
window = { type = "tumbling", size = "1s" }
aggregates = [{ fn = "count", as = "n" }, { fn = "sum", column = "amount_cents", as = "amount_sum" }]
"#;
