//! Backpressure: a fast source into a deliberately slow sink keeps buffered rows bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_engine::prelude::*;

use crate::common::{ts_int_batch, ts_int_schema};

const BATCH: usize = 1_000;
const BATCHES: usize = 300;

/// Produces batches as fast as it is asked, counting them.
#[derive(Debug)]
struct Firehose(Arc<AtomicUsize>);

struct FirehosePartition {
    produced: Arc<AtomicUsize>,
    next: usize,
}

impl Source for Firehose {
    fn name(&self) -> &str {
        "firehose"
    }
    fn schema(&self) -> SchemaRef {
        ts_int_schema("v")
    }
    fn open(self: Box<Self>, _ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        Ok(vec![Box::new(FirehosePartition {
            produced: self.0,
            next: 0,
        })])
    }
}

impl SourcePartition for FirehosePartition {
    fn name(&self) -> String {
        "firehose[0]".into()
    }
    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if self.next == BATCHES {
            return Ok(None);
        }
        let start = (self.next * BATCH) as i64;
        self.next += 1;
        let values: Vec<i64> = (start..start + BATCH as i64).collect();
        let batch = ts_int_batch("v", values.clone(), values);
        self.produced.fetch_add(BATCH, Ordering::SeqCst);
        Ok(Some(SourceBatch::new(batch)))
    }
}

/// Sleeps on every write and records the largest gap between rows produced and rows written.
#[derive(Debug)]
struct SlowSink {
    produced: Arc<AtomicUsize>,
    written: usize,
    max_in_flight: Arc<AtomicUsize>,
}

impl Sink for SlowSink {
    fn name(&self) -> String {
        "slow".into()
    }
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        std::thread::sleep(Duration::from_millis(2));
        self.written += batch.num_rows();
        let in_flight = self.produced.load(Ordering::SeqCst) - self.written;
        self.max_in_flight.fetch_max(in_flight, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_slow_sink_bounds_the_rows_in_flight() {
    let produced = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    let capacity = 2;
    let sink = SlowSink {
        produced: produced.clone(),
        written: 0,
        max_in_flight: max_in_flight.clone(),
    };
    let pipeline = Pipeline::builder(
        Box::new(Firehose(produced.clone())),
        EventTimeSpec::new("ts", 0),
    )
    .batching(BatchingSpec {
        max_rows: BATCH,
        max_delay: Duration::from_millis(50),
    })
    .channel_capacity(capacity)
    .filter(Expr::parse("v >= 0").expect("predicate"))
    .sink(Box::new(sink))
    .build()
    .expect("pipeline");
    let summary = pipeline.run_blocking().expect("run");
    assert_eq!(
        summary.counts.events_out,
        (BATCH * BATCHES) as u64,
        "every row arrives"
    );
    // In flight at most: the source channel, the batch each thread holds (reader, driver,
    // sink) and the sink channel: 2 + 3 + 2 = 7 batches. Without backpressure the firehose
    // would be hundreds of batches ahead of a sink this slow.
    let bound = (2 * capacity + 3) * BATCH;
    let seen = max_in_flight.load(Ordering::SeqCst);
    assert!(seen <= bound, "{seen} rows in flight, bound {bound}");
    assert!(
        seen >= BATCH,
        "the measurement saw buffering at all ({seen})"
    );
}
