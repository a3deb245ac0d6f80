//! The job runtime on tokio: reader threads per source partition, the driver that cuts
//! micro-batches, runs operators and advances watermarks, and a writer thread per sink.
//!
//! Every hop is a bounded channel, so a slow sink stalls the driver, which stalls the readers:
//! memory stays bounded by the channel capacities times the batch size (backpressure). A
//! partition's event-time progress is applied to the watermark only once all rows it sent
//! before have been processed, so buffering in the batcher can never make on-time rows late.

mod checkpointer;
mod driver;
mod messages;
mod reader;
mod sink_writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use arrow::datatypes::SchemaRef;

use crate::batching::{BatchingSpec, MicroBatcher};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, RunSummary};
use crate::plan::{JobPlan, PlannedInput};
use crate::source::{CheckpointListener, Position, SourceContext, SourcePartition};
use crate::watermark::WatermarkTracker;
use checkpointer::{Checkpointer, Restored};
use driver::{Driver, DriverParts};
use reader::{Reader, ReaderPool, ReaderTask, reader_threads, spawn_readers};
use sink_writer::SinkWriter;

/// How to run a job: where to report progress and how to stop it early.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Counters the caller can watch while the job runs.
    pub metrics: Arc<Metrics>,
    /// When this turns `true`, the job stops reading, closes its sinks and returns.
    pub cancel: Option<watch::Receiver<bool>>,
}

impl RunOptions {
    /// Reports into `metrics`; not cancellable.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        RunOptions {
            metrics,
            cancel: None,
        }
    }

    /// Stops the job when `cancel` turns `true`.
    pub fn with_cancel(mut self, cancel: watch::Receiver<bool>) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// Runs `plan` until its input ends or `options` cancels it.
pub(crate) async fn run(plan: JobPlan, options: RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let backend_label = plan.backend_label();
    let JobPlan {
        inputs,
        batching,
        graph,
        backend_name: _,
        sink,
        late_sink,
        dead_letter_sink,
        strict,
        channel_capacity,
        name: job,
        checkpoint,
    } = plan;
    let (checkpointer, restored) = match &checkpoint {
        Some(spec) => {
            let (c, r) = Checkpointer::open(spec).await?;
            (Some(c), r)
        }
        None => (None, None),
    };
    let mut graph = graph;
    if let Some(r) = &restored {
        graph.restore(&r.states)?;
    }
    let opened = open_inputs(inputs, &batching)?;
    let Opened {
        mut partitions,
        names,
        own_names,
        stream_of,
        listeners,
        streams,
        schemas,
    } = opened;
    let positions = match &checkpointer {
        Some(_) => seek(&mut partitions, &names, restored.as_ref())?,
        None => vec![Position::default(); partitions.len()],
    };
    let count = partitions.len();
    let (tx, mut rx) = mpsc::channel(channel_capacity.max(reader_threads(count)));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = partitions
        .into_iter()
        .enumerate()
        .map(|(partition, (source, reader))| ReaderTask {
            partition,
            source,
            reader,
        })
        .collect();
    let ReaderPool {
        threads: readers,
        deferred,
    } = spawn_readers(tasks, &tx, &stop, &options.metrics)?;
    drop(tx);
    let mut tracker = WatermarkTracker::for_streams(&streams, Instant::now());
    for &p in &deferred {
        tracker.defer(p);
    }

    let idle = streams.iter().filter_map(|s| s.2).min();
    let mut driver = Driver::new(DriverParts {
        graph,
        tracker,
        batchers: schemas
            .into_iter()
            .map(|schema| MicroBatcher::new(batching, schema))
            .collect(),
        stream_of,
        tick: idle.map_or(Duration::from_millis(100), |d| {
            (d / 4).clamp(Duration::from_millis(1), Duration::from_millis(100))
        }),
        metrics: options.metrics.clone(),
        out: SinkWriter::spawn(sink, channel_capacity)?,
        late: late_sink
            .map(|s| SinkWriter::spawn(s, channel_capacity))
            .transpose()?,
        dead: dead_letter_sink
            .map(|s| SinkWriter::spawn(s, channel_capacity))
            .transpose()?,
        strict,
        job,
        names,
        own_names,
        listeners,
        positions,
        checkpointer,
    });
    let resumed_from = restored.as_ref().map(|r| r.id);
    let earlier_events = restored.as_ref().map_or(0, |r| r.job.counts.events_in);
    let mut outcome = match driver.resume(restored.as_ref()).await {
        Ok(()) => driver.drive(&mut rx, options.cancel).await,
        Err(e) => Err(e),
    };
    stop.store(true, Ordering::Relaxed);
    // The end of input and a graceful stop both end with a checkpoint (a savepoint), whose
    // staged output is published before the sinks close.
    if outcome.is_ok()
        && let Err(e) = driver.finish().await
    {
        outcome = Err(e);
    }
    drop(rx);
    let checkpoint_id = driver.last_checkpoint();
    let closed = driver.close().await;
    let cancelled = match (outcome, closed) {
        // The driver only saw that a sink stopped; the sink's own error says why.
        (Err(Error::Sink { .. }), Err(why)) => return Err(why),
        (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        (Ok(cancelled), Ok(())) => cancelled,
    };
    // After a normal end every reader has returned, so joining is instant. After a cancel a
    // reader may still be inside `next_batch` (a throttled or blocking source): it stops on
    // its own at the next batch, and the job does not wait for it.
    if !cancelled {
        tokio::task::spawn_blocking(move || {
            for reader in readers {
                let _ = reader.join();
            }
        })
        .await
        .map_err(|e| Error::Internal(format!("joining source readers: {e}")))?;
    }
    let metrics = &options.metrics;
    Ok(RunSummary {
        backend: backend_label,
        counts: metrics.snapshot(),
        elapsed: started.elapsed(),
        latency: metrics.latency(),
        lag: metrics.lag(),
        cancelled,
        resumed_from,
        earlier_events,
        checkpoint: checkpoint_id,
        partitions_changed: driver.take_partitions_changed(),
    })
}

/// The partitions of every input stream, numbered stream after stream.
struct Opened {
    /// Each partition with what its reader does to its batches.
    partitions: Vec<(Box<dyn SourcePartition>, Reader)>,
    /// Partition names (checkpoints key positions by them): a joined job's are prefixed
    /// with the stream's name, `<stream>/<partition>`.
    names: Vec<String>,
    /// Partition names as their sources give them.
    own_names: Vec<String>,
    stream_of: Vec<usize>,
    /// Sources that want to hear of completed checkpoints, with their stream.
    listeners: Vec<(usize, Arc<dyn CheckpointListener>)>,
    /// Per stream: partitions, watermark delay and idle timeout.
    streams: Vec<(usize, i64, Option<Duration>)>,
    /// Per stream: the rows its partitions send.
    schemas: Vec<SchemaRef>,
}

fn open_inputs(inputs: Vec<PlannedInput>, batching: &BatchingSpec) -> Result<Opened> {
    let joined = inputs.len() > 1;
    let mut opened = Opened {
        partitions: Vec::new(),
        names: Vec::new(),
        own_names: Vec::new(),
        stream_of: Vec::new(),
        listeners: Vec::new(),
        streams: Vec::new(),
        schemas: Vec::new(),
    };
    for (s, input) in inputs.into_iter().enumerate() {
        let ctx = SourceContext {
            batch_rows: batching.max_rows.clamp(1, 1 << 20),
            projection: input.projection.clone(),
        };
        let source_name = input.source.name().to_string();
        if let Some(listener) = input.source.checkpoint_listener() {
            opened.listeners.push((s, listener));
        }
        let parts = input.source.open(&ctx)?;
        if parts.is_empty() {
            return Err(Error::Source {
                name: source_name,
                message: "the source has no partitions".into(),
            });
        }
        let event_time = Arc::new(input.event_time);
        let idle = event_time
            .idle_timeout
            .map(|ms| Duration::from_millis(ms.max(0) as u64));
        opened
            .streams
            .push((parts.len(), event_time.watermark_delay, idle));
        for part in parts {
            let own = part.name();
            opened.names.push(if joined {
                format!("{}/{}", input.name, own)
            } else {
                own.clone()
            });
            opened.own_names.push(own);
            opened.stream_of.push(s);
            let reader = Reader {
                event_time: event_time.clone(),
                schema: input.schema.clone(),
                projection: input.projection.clone(),
            };
            opened.partitions.push((part, reader));
        }
        opened.schemas.push(input.schema);
    }
    Ok(opened)
}

/// Moves every partition the checkpoint knows to its saved position and returns where each
/// stands. Fails before any data moves when a partition cannot resume or the checkpoint
/// names one this source no longer has.
fn seek(
    partitions: &mut [(Box<dyn SourcePartition>, Reader)],
    names: &[String],
    restored: Option<&Restored>,
) -> Result<Vec<Position>> {
    let mut positions = Vec::with_capacity(partitions.len());
    for ((part, _), name) in partitions.iter_mut().zip(names) {
        let name = name.clone();
        if let Some(saved) = restored.and_then(|r| r.job.sources.get(&name)) {
            part.seek(saved.position)?;
        }
        let position = part.position().ok_or_else(|| {
            Error::config(
                "checkpoint",
                format!("source partition {name} cannot be checkpointed (it cannot resume)"),
            )
        })?;
        positions.push(position);
    }
    if let Some(r) = restored
        && let Some(missing) = r.job.sources.keys().find(|n| !names.contains(n))
    {
        return Err(Error::config(
            "checkpoint",
            format!(
                "the saved job read source partition {missing}, which this job's sources \
                 no longer have (a source changed incompatibly)"
            ),
        ));
    }
    Ok(positions)
}
