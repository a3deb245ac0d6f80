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
        }
    }

    /// The job file for `events` events cut into micro-batches of `batch_rows` (the
    /// `operator` workload runs the tumbling job's operator without a job around it).
    /// `checkpoints` is the folder the checkpointed workload writes to.
    pub fn job(self, events: u64, batch_rows: usize, checkpoints: &str) -> String {
        let body = match self {
            Workload::Tumbling | Workload::Operator | Workload::Checkpoint => TUMBLING.to_string(),
            Workload::TumblingCheckpointed => format!("{TUMBLING}{CHECKPOINTED}"),
            Workload::Fraud => FRAUD.to_string(),
            Workload::Traffic => TRAFFIC.to_string(),
        };
        format!(
            "name = \"bench-{}\"\n{body}\n[batching]\nmax_rows = {batch_rows}\n\n[sink]\ntype = \"discard\"\n",
            self.name()
        )
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
}
