//! Checkpoints through the runtime: a job stopped gracefully (its final checkpoint is a
//! savepoint) and run again continues exactly where it stopped, on both backends; a job
//! whose window changed is refused before any data moves.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use sluice_engine::checkpoint::CheckpointSpec;
use sluice_engine::memory::{CollectSink, MemorySource};
use sluice_engine::prelude::*;
use tokio::sync::watch;

use crate::common::{Events, KeyKind, StreamShape, all_aggregates, backends, key_names, schema};

/// Partitions of in-memory batches that stall (as a live source waiting for data) after
/// `stop_after[p]` batches, named like [`MemorySource`]'s so a checkpoint carries over.
#[derive(Debug)]
struct StallingSource {
    schema: SchemaRef,
    partitions: Vec<Vec<RecordBatch>>,
    stop_after: Vec<usize>,
}

struct StallingPartition {
    index: usize,
    batches: Vec<RecordBatch>,
    next: usize,
    stop_after: usize,
}

impl Source for StallingSource {
    fn name(&self) -> &str {
        "memory"
    }
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn open(self: Box<Self>, _ctx: &SourceContext) -> Result<Vec<Box<dyn SourcePartition>>> {
        Ok(self
            .partitions
            .into_iter()
            .zip(self.stop_after)
            .enumerate()
            .map(|(index, (batches, stop_after))| {
                Box::new(StallingPartition {
                    index,
                    batches,
                    next: 0,
                    stop_after,
                }) as Box<dyn SourcePartition>
            })
            .collect())
    }
}

impl SourcePartition for StallingPartition {
    fn name(&self) -> String {
        format!("memory[{}]", self.index)
    }
    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        if self.next >= self.stop_after {
            // A live source with nothing to send: the job is stopped meanwhile.
            loop {
                std::thread::sleep(Duration::from_secs(30));
            }
        }
        self.next += 1;
        Ok(self
            .batches
            .get(self.next - 1)
            .cloned()
            .map(SourceBatch::new))
    }
    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: self.next as u64,
            records: self.next as u64,
        })
    }
}

struct Run {
    output: Vec<String>,
    late: Vec<String>,
    summary: RunSummary,
}

/// Each row as text, cells joined by `|` (independent of how rows were cut into batches).
fn rows(batches: &[RecordBatch]) -> Vec<String> {
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    let options = FormatOptions::default().with_null("null");
    let mut out = Vec::new();
    for batch in batches {
        let cells: Vec<ArrayFormatter<'_>> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for r in 0..batch.num_rows() {
            let row: Vec<String> = cells.iter().map(|c| c.value(r).to_string()).collect();
            out.push(row.join("|"));
        }
    }
    out
}

/// The watermark delay of every run.
const DELAY: i64 = 700;

fn window() -> WindowAggregateSpec {
    WindowAggregateSpec {
        keys: key_names(KeyKind::Str),
        window: WindowSpec::Hopping {
            size: 2_000,
            slide: 1_000,
            offset: 0,
        },
        aggregates: all_aggregates(),
    }
}

/// Runs the job on `source`; with `stop_at` events received, stops it gracefully.
fn run(
    backend: Arc<dyn Backend>,
    source: Box<dyn Source>,
    operator: OperatorSpec,
    checkpoints: Option<&CheckpointSpec>,
    stop_at: Option<u64>,
) -> Result<Run> {
    let (sink, late) = (CollectSink::new(), CollectSink::new());
    let mut builder = Pipeline::builder(source, EventTimeSpec::new("ts", DELAY))
        .batching(BatchingSpec {
            max_rows: 250,
            max_delay: Duration::from_millis(20),
        })
        .backend(backend)
        .operator(operator)
        .sink(Box::new(sink.clone()))
        .late_sink(Box::new(late.clone()));
    if let Some(spec) = checkpoints {
        builder = builder.checkpoint(spec.clone());
    }
    let pipeline = builder.build()?;
    let metrics = Arc::new(Metrics::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let summary = runtime.block_on(async {
        let (cancel, cancelled) = watch::channel(false);
        if let Some(stop_at) = stop_at {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                while metrics.snapshot().events_in < stop_at {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let _ = cancel.send(true);
            });
        }
        pipeline
            .run(RunOptions::new(metrics).with_cancel(cancelled))
            .await
    })?;
    Ok(Run {
        output: rows(&sink.batches()),
        late: rows(&late.batches()),
        summary,
    })
}

/// Stops a job after `stop_after[p]` batches of each partition, resumes it, and compares
/// both runs together with an uninterrupted one. Lateness depends on how the watermark
/// moved when a row arrived, so cases with late rows use one partition whose batches are
/// the micro-batches (deterministic); two partitions are compared without late rows.
fn stop_and_resume(shape: StreamShape, cases: &[Vec<usize>], operator: fn() -> OperatorSpec) {
    let events = Events::generate(shape);
    let parts = events.partitioned(KeyKind::Str, shape.partitions, 250);
    let memory = || Box::new(MemorySource::new(schema(KeyKind::Str), parts.clone()));
    for backend in backends() {
        let whole = run(backend.clone(), memory(), operator(), None, None).expect("whole");
        assert_eq!(
            whole.summary.counts.late > 0,
            shape.disorder > DELAY,
            "late rows exactly when disorder exceeds the delay"
        );
        for stop_after in cases {
            let dir = tempfile::tempdir().expect("dir");
            let spec =
                CheckpointSpec::new(dir.path().display().to_string(), Duration::from_millis(30));
            let received: usize = parts
                .iter()
                .zip(stop_after)
                .flat_map(|(p, &n)| &p[..n])
                .map(RecordBatch::num_rows)
                .sum();
            let stalling = StallingSource {
                schema: schema(KeyKind::Str),
                partitions: parts.clone(),
                stop_after: stop_after.clone(),
            };
            let first = run(
                backend.clone(),
                Box::new(stalling),
                operator(),
                Some(&spec),
                Some(received as u64),
            )
            .expect("first run");
            assert!(first.summary.cancelled && first.summary.checkpoint.is_some());
            let second =
                run(backend.clone(), memory(), operator(), Some(&spec), None).expect("second run");
            let what = format!("{} stopped after {stop_after:?}", backend.name());
            assert_eq!(
                second.summary.resumed_from, first.summary.checkpoint,
                "{what}"
            );
            same_rows(
                &first.output,
                &second.output,
                &whole.output,
                &format!("{what}: output"),
            );
            same_rows(
                &first.late,
                &second.late,
                &whole.late,
                &format!("{what}: late rows"),
            );
            assert_eq!(second.summary.counts.events_in, shape.rows as u64, "{what}");
            assert_eq!(
                second.summary.counts.late, whole.summary.counts.late,
                "{what}"
            );
        }
    }
}

/// Both runs' rows together equal the uninterrupted run's, as multisets: with several
/// partitions, the order of rows within a fire follows key first appearance, which depends
/// on how partitions interleave.
fn same_rows(first: &[String], second: &[String], whole: &[String], what: &str) {
    let mut resumed: Vec<&String> = first.iter().chain(second).collect();
    let mut expected: Vec<&String> = whole.iter().collect();
    resumed.sort();
    expected.sort();
    let first_difference = resumed.iter().zip(&expected).position(|(a, b)| a != b);
    if let Some(i) = first_difference {
        eprintln!("resumed  {}\nexpected {}", resumed[i], expected[i]);
    }
    assert!(
        resumed.len() == expected.len() && first_difference.is_none(),
        "{what}: {} rows resumed, {} uninterrupted, first difference at {first_difference:?}",
        resumed.len(),
        expected.len()
    );
}

#[test]
fn a_gracefully_stopped_job_resumes_exactly_with_late_rows() {
    let shape = StreamShape {
        rows: 6_000,
        keys: 40,
        skew: false,
        disorder: 4_000,
        step: 3,
        partitions: 1,
        seed: 23,
    };
    stop_and_resume(shape, &[vec![0], vec![1], vec![9], vec![24]], || {
        OperatorSpec::Window(window())
    });
}

#[test]
fn a_gracefully_stopped_job_resumes_exactly_across_partitions() {
    let shape = StreamShape {
        rows: 6_000,
        keys: 40,
        skew: true,
        disorder: 600,
        step: 3,
        partitions: 2,
        seed: 29,
    };
    stop_and_resume(shape, &[vec![1, 0], vec![5, 7], vec![12, 12]], || {
        OperatorSpec::Window(window())
    });
}

/// A window Top-N over raw rows holds them across the checkpoint (cut to its limit).
#[test]
fn a_stopped_raw_row_top_n_resumes_exactly_with_late_rows() {
    let shape = StreamShape {
        rows: 6_000,
        keys: 40,
        skew: false,
        disorder: 4_000,
        step: 3,
        partitions: 1,
        seed: 31,
    };
    fn descending(column: &str) -> TopNOrder {
        TopNOrder {
            column: column.into(),
            descending: true,
            nulls_first: false,
        }
    }
    let top = || {
        OperatorSpec::WindowTopN(WindowTopNSpec {
            partition_by: key_names(KeyKind::Str),
            order_by: vec![descending("v_int"), descending("v_float")],
            limit: Some(2),
            rownum: Some("rownum".into()),
            window: Some(WindowSpec::Hopping {
                size: 2_000,
                slide: 1_000,
                offset: 0,
            }),
        })
    };
    stop_and_resume(shape, &[vec![0], vec![3], vec![17]], top);
}

#[test]
fn a_job_whose_window_changed_is_refused_before_data_moves() {
    let events = Events::generate(StreamShape {
        rows: 500,
        keys: 5,
        skew: false,
        disorder: 0,
        step: 10,
        partitions: 1,
        seed: 5,
    });
    let parts = events.partitioned(KeyKind::Str, 1, 100);
    let dir = tempfile::tempdir().expect("dir");
    let spec = CheckpointSpec::new(dir.path().display().to_string(), Duration::from_secs(60));
    let memory = || Box::new(MemorySource::new(schema(KeyKind::Str), parts.clone()));
    run(
        crate::common::cpu(),
        memory(),
        OperatorSpec::Window(window()),
        Some(&spec),
        None,
    )
    .expect("first run");
    let mut changed = window();
    changed.window = WindowSpec::Tumbling {
        size: 1_000,
        offset: 0,
    };
    let changed = OperatorSpec::Window(changed);
    let error = match run(crate::common::cpu(), memory(), changed, Some(&spec), None) {
        Ok(_) => panic!("a changed window must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("operators[0]") && error.contains("the window was Hopping"),
        "{error}"
    );
}
