//! The standard workloads of `sluice bench`, as job files with a generator source and a
//! discarding sink, so a run measures the engine and not a disk.

use clap::ValueEnum;

/// A standard workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    /// Transactions, 10,000 cards, 1 s tumbling count and sum per card (the core query).
    Tumbling,
    /// Fraud features: per card, 1 min windows sliding by 10 s: count, sum, max, distinct
    /// merchants; alerts over a threshold.
    Fraud,
    /// Traffic telemetry: 500 road segments, 10 s tumbling average speed, vehicles, readings,
    /// with out-of-order sensors.
    Traffic,
    /// The window operator alone, state resident, on pre-generated batches of the tumbling
    /// workload's stream (not part of the default set).
    Operator,
    /// The tumbling workload checkpointing every second (to a folder under `--out`): its
    /// events/s against `tumbling`'s in the same invocation is the cost of checkpoints.
    TumblingCheckpointed,
    /// One million keys of window state: checkpoint size, time to take it, time to recover
    /// from it (not an events/s workload; not part of the default set).
    Checkpoint,
    /// Transactions interval-joined with card logins (one per ten transactions) on the card
    /// within ±5 s, then a 1 min tumbling count of matches per card (not part of the default
    /// set). `--events` counts both streams.
    IntervalJoin,
    /// Transactions window-joined with card logins in the same 10 s tumbling window, then a
    /// 1 min tumbling count of matches per card (not part of the default set).
    WindowJoin,
    /// JSON transactions from a Kafka topic of 12 partitions (`--kafka`), 1 s tumbling count
    /// and sum per card, next to a plain rdkafka consumer that only counts the messages (not
    /// part of the default set; the topic is produced first, untimed).
    Kafka,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Tumbling => "tumbling",
            Workload::Fraud => "fraud",
            Workload::Traffic => "traffic",
            Workload::Operator => "operator",
            Workload::TumblingCheckpointed => "tumbling-checkpointed",
            Workload::Checkpoint => "checkpoint",
            Workload::IntervalJoin => "interval-join",
            Workload::WindowJoin => "window-join",
            Workload::Kafka => "kafka",
        }
    }

    /// The job file for `events` events cut into micro-batches of `batch_rows` (the
    /// `operator` workload runs the tumbling job's operator without a job around it).
    /// `checkpoints` is the folder the checkpointed workload writes to.
    pub fn job(self, events: u64, batch_rows: usize, checkpoints: &str) -> String {
        let body = match self {
            // The Kafka workload's job names its broker and topic: `kafka::job`.
            Workload::Tumbling | Workload::Operator | Workload::Checkpoint | Workload::Kafka => {
                TUMBLING.to_string()
            }
            Workload::TumblingCheckpointed => format!("{TUMBLING}{CHECKPOINTED}"),
            Workload::Fraud => FRAUD.to_string(),
            Workload::Traffic => TRAFFIC.to_string(),
            Workload::IntervalJoin => format!("{JOINED_STREAMS}{INTERVAL_JOIN}{COUNT_MATCHES}"),
            Workload::WindowJoin => format!("{JOINED_STREAMS}{WINDOW_JOIN}{COUNT_MATCHES}"),
        };
        // One login per ten transactions: of `events`, a eleventh are logins.
        let logins = events / 11;
        format!(
            "name = \"bench-{}\"\n{body}\n[batching]\nmax_rows = {batch_rows}\n\n[sink]\ntype = \"discard\"\n",
            self.name()
        )
        .replace("TRANSACTION_EVENTS", &(events - logins).to_string())
        .replace("LOGIN_EVENTS", &logins.to_string())
        .replace("EVENTS", &events.to_string())
        .replace("CHECKPOINTS", &checkpoints.replace('\\', "/"))
    }
}

const TUMBLING: &str = r#"
[source]
type = "generator"
generator = "transactions"
events = EVENTS
keys = 10_000
event_time_rate = 1_000_000

[event_time]
column = "ts"
watermark_delay = "0s"

[[operators]]
type = "window"
key = "card_id"
window = { type = "tumbling", size = "1s" }
aggregates = [{ fn = "count", as = "n" }, { fn = "sum", column = "amount_cents", as = "amount_sum" }]
"#;

/// Added to the tumbling job for `tumbling_checkpointed`.
const CHECKPOINTED: &str = r#"
[checkpoint]
location = "CHECKPOINTS"
interval = "1s"
retain = 2
"#;

const FRAUD: &str = r#"
[source]
type = "generator"
generator = "transactions"
events = EVENTS
keys = 10_000
merchants = 2_000
skew = 0.3
disorder = "2s"
event_time_rate = 2_000

[event_time]
column = "ts"
watermark_delay = "2s"

[[operators]]
type = "window"
key = "card_id"
window = { type = "hopping", size = "1m", slide = "10s" }
aggregates = [
  { fn = "count", as = "txn_count" },
  { fn = "sum", column = "amount_cents", as = "amount_sum" },
  { fn = "max", column = "amount_cents", as = "amount_max" },
  { fn = "count_distinct", column = "merchant_id", as = "merchants" },
]

[[operators]]
type = "filter"
predicate = "txn_count >= 8"
"#;

const TRAFFIC: &str = r#"
[source]
type = "generator"
generator = "telemetry"
events = EVENTS
keys = 500
disorder = "5s"
event_time_rate = 50_000

[event_time]
column = "ts"
watermark_delay = "5s"

[[operators]]
type = "window"
key = "segment_id"
window = { type = "tumbling", size = "10s" }
aggregates = [
  { fn = "avg", column = "speed_kmh", as = "avg_speed_kmh" },
  { fn = "sum", column = "vehicles", as = "vehicles" },
  { fn = "count", as = "readings" },
]
"#;

/// The two inputs of the join workloads: transactions and logins of the same 10,000 cards,
/// one login per ten transactions, over the same event time (10,000 and 1,000 events per
/// second). A card then has one login per 10 s on average, so a transaction finds about one
/// login within ±5 s, or in its 10 s window: the joins emit about one row per transaction.
/// Each stream keeps the columns the query reads (the engine does not yet push a projection
/// through a join, so the job states it, as a query planner would).
const JOINED_STREAMS: &str = r#"
[streams.transactions.source]
type = "generator"
generator = "transactions"
events = TRANSACTION_EVENTS
keys = 10_000
event_time_rate = 10_000

[streams.transactions.event_time]
column = "ts"
watermark_delay = "0s"

[[streams.transactions.operators]]
type = "project"
columns = ["ts", "card_id"]

[streams.logins.source]
type = "generator"
generator = "logins"
events = LOGIN_EVENTS
keys = 10_000
event_time_rate = 1_000

[streams.logins.event_time]
column = "ts"
watermark_delay = "0s"

[[streams.logins.operators]]
type = "project"
columns = ["ts", "card_id"]
"#;

const INTERVAL_JOIN: &str = r#"
[join]
type = "interval"
left = "transactions"
right = "logins"
on = "card_id"
lower = "5s"
upper = "5s"
"#;

/// 10 s windows, not 1 min: in a 1 min window a card has 60 transactions and 6 logins, so a
/// window join would emit 360 rows per card and minute, 5.5 per input event; in 10 s
/// windows it emits about one per transaction, like the interval join.
const WINDOW_JOIN: &str = r#"
[join]
type = "window"
left = "transactions"
right = "logins"
on = "card_id"
window = { type = "tumbling", size = "10s" }
"#;

/// After either join: matches per card and minute.
const COUNT_MATCHES: &str = r#"
[[operators]]
type = "window"
key = "card_id"
window = { type = "tumbling", size = "1m" }
aggregates = [{ fn = "count", as = "matches" }]
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::job::JobFile;

    #[test]
    fn every_workload_is_a_valid_job() {
        for workload in Workload::value_variants() {
            let text = workload.job(1_000, 256, "checkpoints");
            let job = JobFile::parse(&text, "bench.toml".as_ref(), &[]).expect("parses");
            job.validate().expect("validates");
        }
    }

    #[test]
    fn join_workloads_split_the_events_ten_to_one() {
        let text = Workload::IntervalJoin.job(1_100_005, 256, "checkpoints");
        assert!(text.contains("events = 1000005\n"), "{text}");
        assert!(text.contains("events = 100000\n"), "{text}");
    }
}
