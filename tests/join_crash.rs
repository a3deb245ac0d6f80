//! Exactly-once under crashes for jobs with a stream join: an interval join feeding windows,
//! and a left outer window join written as is, each killed with SIGKILL at random moments and
//! then allowed to finish, publish exactly the rows of an uninterrupted run (on the CPU, and
//! on the GPU when there is one). The join's buffered rows are in every checkpoint.

use std::path::Path;

use crate::crash::{assert_published, kill_then_finish, uninterrupted};

/// Two transaction streams over the same 30 s of event time, 10:1, on 200 cards; disorder
/// never exceeds the watermark delay, so no row is late however the streams interleave.
const STREAMS: &str = r#"
[streams.payments]
source = { type = "generator", generator = "transactions", events = 30_000, rate = 8_000, keys = 200, merchants = 40, disorder = "1s", event_time_rate = 1_000, seed = 11 }
event_time = { column = "ts", watermark_delay = "1s" }

[streams.refunds]
source = { type = "generator", generator = "transactions", events = 3_000, rate = 800, keys = 200, merchants = 40, disorder = "1s", event_time_rate = 100, seed = 12 }
event_time = { column = "ts", watermark_delay = "1s" }

[batching]
max_rows = 700
max_delay = "20ms"
"#;

const INTERVAL: &str = r#"
[join]
type = "interval"
left = "payments"
right = "refunds"
on = "card_id"
lower = "2s"
upper = "2s"

[[operators]]
type = "window"
key = "card_id"
window = { type = "tumbling", size = "5s" }
aggregates = [
  { fn = "count", as = "pairs" },
  { fn = "sum", column = "payments.amount_cents", as = "paid" },
  { fn = "count_distinct", column = "refunds.merchant_id", as = "refund_merchants" },
]
"#;

const WINDOW: &str = r#"
[join]
type = "window"
left = "payments"
right = "refunds"
on = "card_id"
kind = "left"
window = { type = "tumbling", size = "2s" }
"#;

const OUTPUT: &str = r#"
[sink]
type = "csv"
path = "out"

[checkpoint]
location = "checkpoints"
interval = "100ms"
"#;

/// Writes the checkpointed `job.toml` for `join` into `dir` and returns the sorted rows of
/// an uninterrupted, unthrottled, uncheckpointed run of the same job.
fn reference(dir: &Path, join: &str) -> Vec<String> {
    let job = format!("name = \"join-crash\"\n{STREAMS}{join}{OUTPUT}");
    std::fs::write(dir.join("job.toml"), &job).expect("job");
    uninterrupted(
        dir,
        &job,
        &[
            "streams.payments.source.rate=0",
            "streams.refunds.source.rate=0",
        ],
    )
}

fn crash_and_compare(join: &str, backend: &str, seed: u64) {
    let dir = tempfile::tempdir().expect("dir");
    let expected = reference(dir.path(), join);
    kill_then_finish(dir.path(), backend, &[], &[], 6, seed);
    assert_published(dir.path(), &expected);
}

#[test]
fn an_interval_join_killed_six_times_publishes_exactly_the_uninterrupted_output() {
    crash_and_compare(INTERVAL, "cpu", 51);
}

#[test]
fn a_window_join_killed_six_times_publishes_exactly_the_uninterrupted_output() {
    crash_and_compare(WINDOW, "cpu", 52);
}

#[test]
fn gpu_joins_killed_six_times_publish_exactly_the_uninterrupted_output() {
    if sluice_engine::backend::GpuBackend::for_tests().is_none() {
        return;
    }
    crash_and_compare(INTERVAL, "gpu", 53);
    crash_and_compare(WINDOW, "gpu", 54);
}
