//! Watermarks in a running job: idle partitions, monotonicity, and the end-of-input flush.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef, TimestampMillisecondType};
use sluice_engine::memory::CollectSink;
use sluice_engine::prelude::*;

use crate::common::oracle::{actual, assert_same, expected};
use crate::common::{
    Events, KeyKind, StreamShape, all_aggregates, cpu, key_names, run_window, schema, ts_int_batch,
    ts_int_schema,
};

fn batch(ts: &[i64]) -> RecordBatch {
    ts_int_batch("k", ts.to_vec(), vec![1; ts.len()])
}

/// Partitions that play a script: sleep, note the time, yield a batch; then end.
#[derive(Debug)]
struct Scripted {
    partitions: Vec<Vec<(Duration, RecordBatch)>>,
    ended: Arc<Mutex<Vec<Instant>>>,
}

struct ScriptedPartition {
    index: usize,
    steps: std::vec::IntoIter<(Duration, RecordBatch)>,
    ended: Arc<Mutex<Vec<Instant>>>,
}

impl Source for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn schema(&self) -> SchemaRef {
        ts_int_schema("k")
    }
    fn open(self: Box<Self>, _ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        let ended = self.ended.clone();
        Ok(self
            .partitions
            .into_iter()
            .enumerate()
            .map(|(index, steps)| {
                Box::new(ScriptedPartition {
                    index,
                    steps: steps.into_iter(),
                    ended: ended.clone(),
                }) as Box<dyn SourcePartition>
            })
            .collect())
    }
}

impl SourcePartition for ScriptedPartition {
    fn name(&self) -> String {
        format!("scripted[{}]", self.index)
    }
    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        match self.steps.next() {
            Some((pause, batch)) => {
                std::thread::sleep(pause);
                self.ended.lock().expect("lock").push(Instant::now());
                Ok(Some(SourceBatch::new(batch)))
            }
            None => Ok(None),
        }
    }
}

/// A sink that remembers when each batch arrived.
#[derive(Debug, Clone, Default)]
struct TimedSink(Arc<Mutex<Vec<(Instant, RecordBatch)>>>);

impl Sink for TimedSink {
    fn name(&self) -> String {
        "timed".into()
    }
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.0
            .lock()
            .expect("lock")
            .push((Instant::now(), batch.clone()));
        Ok(())
    }
}

/// The sum of the `n` column over everything written: each event counted once in all.
fn total_count(writes: &[(Instant, RecordBatch)]) -> i64 {
    writes
        .iter()
        .flat_map(|(_, b)| b.column(3).as_primitive::<Int64Type>().values().to_vec())
        .sum()
}

fn count_window() -> WindowAggregateSpec {
    WindowAggregateSpec {
        keys: vec!["k".into()],
        window: WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        },
        aggregates: vec![AggregateSpec::count("n")],
    }
}

fn run_scripted(
    partitions: Vec<Vec<(Duration, RecordBatch)>>,
    idle: Option<i64>,
) -> (Vec<(Instant, RecordBatch)>, Vec<Instant>) {
    let batching = BatchingSpec {
        max_rows: 1,
        max_delay: Duration::from_millis(5),
    };
    run_batched(partitions, idle, batching)
}

fn run_batched(
    partitions: Vec<Vec<(Duration, RecordBatch)>>,
    idle: Option<i64>,
    batching: BatchingSpec,
) -> (Vec<(Instant, RecordBatch)>, Vec<Instant>) {
    let ended = Arc::new(Mutex::new(Vec::new()));
    let sink = TimedSink::default();
    let mut event_time = EventTimeSpec::new("ts", 0);
    event_time.idle_timeout = idle;
    let pipeline = Pipeline::builder(
        Box::new(Scripted {
            partitions,
            ended: ended.clone(),
        }),
        event_time,
    )
    .batching(batching)
    .window(count_window())
    .sink(Box::new(sink.clone()))
    .build()
    .expect("pipeline");
    pipeline.run_blocking().expect("run");
    let writes = sink.0.lock().expect("lock").clone();
    let ended = ended.lock().expect("lock").clone();
    (writes, ended)
}

#[test]
fn an_idle_partition_does_not_stall_the_stream() {
    let quick = Duration::from_millis(1);
    // Partition 0 advances event time to 5 s quickly; partition 1 sends one event, then goes
    // silent for 1.5 s before ending.
    let busy: Vec<_> = (0..6).map(|s| (quick, batch(&[s * 1_000 + 10]))).collect();
    let silent = vec![
        (quick, batch(&[20])),
        (Duration::from_millis(1_500), batch(&[5_500])),
    ];
    let (writes, ended) = run_scripted(vec![busy.clone(), silent.clone()], Some(100));
    // The last pause to finish is partition 1's long silence.
    let last_end = *ended.iter().max().expect("resumed");
    let (first_write, _) = writes.first().expect("output");
    assert!(
        *first_write < last_end,
        "windows fired while partition 1 was idle"
    );

    // Without an idle timeout the silent partition holds everything back until it ends.
    let (writes, ended) = run_scripted(vec![busy, silent], None);
    let last_end = *ended.iter().max().expect("ended");
    assert!(
        writes.iter().all(|(t, _)| *t >= last_end),
        "no window fires before the silent partition moves"
    );
    assert_eq!(total_count(&writes), 8, "every event counted once");
}

#[test]
fn the_watermark_never_goes_back_and_windows_fire_in_order() {
    // Partition 1 wakes up far behind partition 0 after idling: its events are late, but the
    // watermark (seen through the order of emitted windows) never moves back.
    let quick = Duration::from_millis(1);
    let p0: Vec<_> = (0..5).map(|s| (quick, batch(&[s * 1_000 + 1]))).collect();
    let p1 = vec![
        (quick, batch(&[2])),
        (Duration::from_millis(400), batch(&[1_200])),
    ];
    let (writes, _) = run_scripted(vec![p0, p1], Some(50));
    let mut ends = Vec::new();
    for (_, b) in &writes {
        ends.extend(
            b.column(2)
                .as_primitive::<TimestampMillisecondType>()
                .values()
                .iter()
                .copied(),
        );
    }
    assert!(
        ends.windows(2).all(|w| w[0] < w[1]),
        "each window once, in event-time order: {ends:?}"
    );
}

#[test]
fn end_of_input_flushes_every_window() {
    // A one-day delay: no window can close before the input ends.
    let shape = StreamShape {
        rows: 6_000,
        keys: 100,
        skew: false,
        disorder: 100,
        step: 5,
        partitions: 3,
        seed: 31,
    };
    let events = Events::generate(shape);
    let window = WindowSpec::Hopping {
        size: 2_000,
        slide: 1_000,
        offset: 0,
    };
    let spec = WindowAggregateSpec {
        keys: key_names(KeyKind::Int),
        window,
        aggregates: all_aggregates(),
    };
    let outcome = run_window(
        cpu(),
        schema(KeyKind::Int),
        events.partitioned(KeyKind::Int, 3, 256),
        spec,
        86_400_000,
        1_000,
    );
    let all: Vec<usize> = (0..events.len()).collect();
    assert_same(
        &actual(&outcome.output, KeyKind::Int),
        &expected(&events, KeyKind::Int, window, &all),
        "flush",
    );
    assert_eq!(outcome.summary.counts.watermark, Some(i64::MAX));
}

#[test]
fn a_collect_sink_is_flushed_after_emitting() {
    let sink = CollectSink::new();
    let pipeline = Pipeline::builder(
        Box::new(sluice_engine::memory::MemorySource::new(
            ts_int_schema("k"),
            vec![vec![batch(&[1, 1_500, 2_500])]],
        )),
        EventTimeSpec::new("ts", 0),
    )
    .window(count_window())
    .sink(Box::new(sink.clone()))
    .build()
    .expect("pipeline");
    let summary = pipeline.run_blocking().expect("run");
    assert_eq!(summary.counts.events_out, 3);
    assert!(sink.flushes() >= 1);
}

#[test]
fn a_trickle_is_cut_into_micro_batches_by_age() {
    // Far fewer rows than `max_rows` ever arrive: only `max_delay` can cut a micro-batch, and
    // windows must still close while the source is running, not just at its end.
    let step = Duration::from_millis(30);
    let trickle: Vec<_> = (0..8).map(|s| (step, batch(&[s * 1_000 + 5]))).collect();
    let batching = BatchingSpec {
        max_rows: 1_000_000,
        max_delay: Duration::from_millis(10),
    };
    let (writes, resumed) = run_batched(vec![trickle], None, batching);
    let last_batch = *resumed.iter().max().expect("resumed");
    assert!(
        writes.iter().any(|(t, _)| *t < last_batch),
        "a window fired before the last batch was read"
    );
    assert_eq!(total_count(&writes), 8, "every event counted once");
}
