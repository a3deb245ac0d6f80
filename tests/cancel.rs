//! Stopping a job: a cancelled run returns promptly with what it saw, even while a source
//! is blocked waiting for its next batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_engine::memory::CollectSink;
use sluice_engine::prelude::*;
use tokio::sync::watch;

use crate::common::{ts_int_batch, ts_int_schema};

/// Yields one row, then blocks for ten seconds before every further row.
#[derive(Debug)]
struct Stalling;

struct StallingPartition(i64);

impl Source for Stalling {
    fn name(&self) -> &str {
        "stalling"
    }
    fn schema(&self) -> SchemaRef {
        ts_int_schema("v")
    }
    fn open(self: Box<Self>, _ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        Ok(vec![Box::new(StallingPartition(0))])
    }
}

impl SourcePartition for StallingPartition {
    fn name(&self) -> String {
        "stalling[0]".into()
    }
    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if self.0 > 0 {
            std::thread::sleep(Duration::from_secs(10));
        }
        self.0 += 1;
        let batch = ts_int_batch("v", vec![self.0 * 1_000], vec![self.0]);
        Ok(Some(SourceBatch::new(batch)))
    }
}

#[test]
fn a_cancelled_job_returns_promptly_and_says_so() {
    let sink = CollectSink::new();
    let pipeline = Pipeline::builder(Box::new(Stalling), EventTimeSpec::new("ts", 0))
        .batching(BatchingSpec {
            max_rows: 1,
            max_delay: Duration::from_millis(5),
        })
        .sink(Box::new(sink.clone()))
        .build()
        .expect("pipeline");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let summary = runtime.block_on(async {
        let (cancel, cancelled) = watch::channel(false);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _ = cancel.send(true);
        });
        pipeline
            .run(RunOptions::new(Arc::new(Metrics::default())).with_cancel(cancelled))
            .await
    });
    let summary = summary.expect("a cancelled run is not an error");
    assert!(summary.cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "did not wait for the blocked source"
    );
    assert_eq!(summary.counts.events_in, 1);
    assert_eq!(
        sink.batches()
            .iter()
            .map(RecordBatch::num_rows)
            .sum::<usize>(),
        1,
        "the row read before the stop was written"
    );
}
