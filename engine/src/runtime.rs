//! The job runtime on tokio: reader threads per source partition, the driver that cuts
//! micro-batches, runs operators and advances watermarks, and a writer thread per sink.
//!
//! Every hop is a bounded channel, so a slow sink stalls the driver, which stalls the readers:
//! memory stays bounded by the channel capacities times the batch size (backpressure). A
//! partition's event-time progress is applied to the watermark only once all rows it sent
//! before have been processed, so buffering in the batcher can never make on-time rows late.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use tokio::sync::{mpsc, watch};

use crate::batching::{MicroBatch, MicroBatcher};
use crate::error::{Error, Result};
use crate::event_time::{EventTimeSpec, normalize};
use crate::metrics::{Metrics, RunSummary};
use crate::operator::{Emitted, OperatorChain};
use crate::pipeline::Pipeline;
use crate::sink::Sink;
use crate::source::{DeadLetter, SourceBatch, SourceContext, SourcePartition};
use crate::watermark::{END_OF_INPUT, WatermarkTracker};

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

/// What reader threads send to the driver.
enum FromSource {
    Data {
        partition: usize,
        batch: RecordBatch,
        max_ts: Option<i64>,
        dead: Vec<DeadLetter>,
    },
    End {
        partition: usize,
    },
    Failed(Error),
}

/// A watermark-relevant fact, applied once the rows before it have been processed.
enum Progress {
    Observe(usize, Option<i64>),
    Finish(usize),
}

pub(crate) async fn run(pipeline: Pipeline, options: RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let Pipeline {
        source,
        event_time,
        batching,
        source_schema,
        projection,
        chain,
        backend_name,
        sink,
        late_sink,
        dead_letter_sink,
        strict,
        channel_capacity,
    } = pipeline;
    let ctx = SourceContext {
        batch_rows: batching.max_rows.clamp(1, 1 << 20),
        projection: projection.clone(),
    };
    let source_name = source.name().to_string();
    let partitions = source.open(&ctx)?;
    if partitions.is_empty() {
        return Err(Error::Source {
            name: source_name,
            message: "the source has no partitions".into(),
        });
    }
    let count = partitions.len();
    let (tx, mut rx) = mpsc::channel(channel_capacity.max(count));
    let stop = Arc::new(AtomicBool::new(false));
    let event_time = Arc::new(event_time);
    let readers: Vec<_> = partitions
        .into_iter()
        .enumerate()
        .map(|(p, part)| {
            let reader = Reader {
                event_time: event_time.clone(),
                schema: source_schema.clone(),
                projection: projection.clone(),
            };
            spawn_reader(p, part, tx.clone(), reader, stop.clone())
        })
        .collect::<Result<_>>()?;
    drop(tx);

    let idle = event_time
        .idle_timeout
        .map(|ms| Duration::from_millis(ms.max(0) as u64));
    let mut driver = Driver {
        chain: Some(chain),
        tracker: WatermarkTracker::new(count, event_time.watermark_delay, idle, Instant::now()),
        batcher: MicroBatcher::new(batching, source_schema),
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
        progress: VecDeque::new(),
        rows_pushed: 0,
        fired: i64::MIN,
        ended: 0,
        partitions: count,
    };
    let outcome = driver.drive(&mut rx, options.cancel).await;
    stop.store(true, Ordering::Relaxed);
    drop(rx);
    let closed = driver.close().await;
    let joined = tokio::task::spawn_blocking(move || {
        for reader in readers {
            let _ = reader.join();
        }
    })
    .await;
    let cancelled = match (outcome, closed) {
        // The driver only saw that a sink stopped; the sink's own error says why.
        (Err(Error::Sink { .. }), Err(why)) => return Err(why),
        (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
        (Ok(cancelled), Ok(())) => cancelled,
    };
    joined.map_err(|e| Error::Internal(format!("joining source readers: {e}")))?;
    let metrics = &options.metrics;
    Ok(RunSummary {
        backend: backend_name.to_string(),
        counts: metrics.snapshot(),
        elapsed: started.elapsed(),
        latency: metrics.latency(),
        cancelled,
    })
}

/// What a reader thread does to each batch before sending it: project, normalise event time.
struct Reader {
    event_time: Arc<EventTimeSpec>,
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
}

impl Reader {
    fn prepare(&self, read: SourceBatch, partition: usize, name: &str) -> FromSource {
        let SourceBatch {
            batch,
            mut dead_letters,
            locations,
        } = read;
        // Sources may ignore the projection hint; drop the columns the job does not read.
        let batch = match &self.projection {
            Some(indices) if batch.num_columns() != indices.len() => match batch.project(indices) {
                Ok(b) => b,
                Err(e) => {
                    return FromSource::Failed(Error::arrow(format!(
                        "projecting batches of {name}"
                    ))(e));
                }
            },
            _ => batch,
        };
        match normalize(
            &self.event_time,
            &self.schema,
            batch,
            name,
            locations.as_deref(),
        ) {
            Ok(n) => {
                dead_letters.extend(n.rejected);
                FromSource::Data {
                    partition,
                    batch: n.batch,
                    max_ts: n.max_ts,
                    dead: dead_letters,
                }
            }
            Err(e) => FromSource::Failed(e),
        }
    }
}

fn spawn_reader(
    partition: usize,
    mut part: Box<dyn SourcePartition>,
    tx: mpsc::Sender<FromSource>,
    reader: Reader,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("sluice-source-{partition}"))
        .spawn(move || {
            let name = part.name();
            while !stop.load(Ordering::Relaxed) {
                let message = match part.next_batch() {
                    Ok(Some(read)) => reader.prepare(read, partition, &name),
                    Ok(None) => FromSource::End { partition },
                    Err(e) => FromSource::Failed(e),
                };
                let last = !matches!(message, FromSource::Data { .. });
                if tx.blocking_send(message).is_err() || last {
                    return;
                }
            }
        })
        .map_err(|e| Error::Internal(format!("cannot start a source thread: {e}")))
}

struct Driver {
    chain: Option<OperatorChain>,
    tracker: WatermarkTracker,
    batcher: MicroBatcher,
    tick: Duration,
    metrics: Arc<Metrics>,
    out: SinkWriter,
    late: Option<SinkWriter>,
    dead: Option<SinkWriter>,
    strict: bool,
    progress: VecDeque<(u64, Progress)>,
    rows_pushed: u64,
    fired: i64,
    ended: usize,
    partitions: usize,
}

impl Driver {
    /// Runs until the input ends (`Ok(false)`) or the job is cancelled (`Ok(true)`).
    async fn drive(
        &mut self,
        rx: &mut mpsc::Receiver<FromSource>,
        mut cancel: Option<watch::Receiver<bool>>,
    ) -> Result<bool> {
        loop {
            let wake = self
                .batcher
                .deadline()
                .unwrap_or_else(|| Instant::now() + self.tick);
            tokio::select! {
                biased;
                _ = cancelled(&mut cancel) => return Ok(true),
                message = rx.recv() => match message {
                    Some(FromSource::Data { partition, batch, max_ts, dead }) => {
                        self.on_data(partition, batch, max_ts, dead).await?;
                    }
                    Some(FromSource::End { partition }) => {
                        self.progress.push_back((self.rows_pushed, Progress::Finish(partition)));
                        self.ended += 1;
                        if self.ended == self.partitions {
                            if let Some(mb) = self.batcher.cut()? {
                                self.process(mb).await?;
                            }
                            self.commit_ready();
                            self.advance().await?;
                            return Ok(false);
                        }
                        self.commit_ready();
                        self.advance().await?;
                    }
                    Some(FromSource::Failed(e)) => return Err(e),
                    None => return Err(Error::Internal("every source reader stopped without ending".into())),
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    if self.batcher.deadline().is_some_and(|d| d <= Instant::now())
                        && let Some(mb) = self.batcher.cut()?
                    {
                        self.process(mb).await?;
                    }
                    // Idle partitions may have timed out: the watermark can move without data.
                    self.advance().await?;
                }
            }
        }
    }

    async fn on_data(
        &mut self,
        partition: usize,
        batch: RecordBatch,
        max_ts: Option<i64>,
        dead: Vec<DeadLetter>,
    ) -> Result<()> {
        self.dead_letters(dead).await?;
        let rows = batch.num_rows();
        self.metrics.add_in(rows);
        self.rows_pushed += rows as u64;
        self.progress
            .push_back((self.rows_pushed, Progress::Observe(partition, max_ts)));
        for mb in self.batcher.push(batch, Instant::now())? {
            self.process(mb).await?;
        }
        if self.batcher.pending_rows() == 0 {
            self.commit_ready();
            self.advance().await?;
        }
        Ok(())
    }

    async fn dead_letters(&mut self, dead: Vec<DeadLetter>) -> Result<()> {
        let Some(first) = dead.first() else {
            return Ok(());
        };
        if self.strict {
            return Err(Error::Malformed {
                source_name: first.source.clone(),
                location: first.location.to_string(),
                reason: first.reason.clone(),
            });
        }
        self.metrics.add_malformed(dead.len());
        if let Some(sink) = &self.dead {
            sink.send(SinkCommand::Write(DeadLetter::to_batch(&dead)?))
                .await?;
        }
        Ok(())
    }

    /// Runs a micro-batch through the operators, then lets the watermark catch up with it.
    async fn process(&mut self, mb: MicroBatch) -> Result<()> {
        let emitted = self
            .with_chain(move |chain| chain.process(mb.batch))
            .await?;
        self.emit(emitted).await?;
        self.commit_ready();
        self.advance().await?;
        self.metrics.add_batch(mb.arrived.elapsed());
        Ok(())
    }

    /// Applies progress of every partition whose earlier rows have all been processed.
    fn commit_ready(&mut self) {
        let processed = self.rows_pushed - self.batcher.pending_rows() as u64;
        let now = Instant::now();
        while self
            .progress
            .front()
            .is_some_and(|(at, _)| *at <= processed)
        {
            match self.progress.pop_front() {
                Some((_, Progress::Observe(p, max_ts))) => self.tracker.observe(p, max_ts, now),
                Some((_, Progress::Finish(p))) => self.tracker.finish(p),
                None => break,
            }
        }
    }

    /// Moves the watermark as far as the partitions allow and fires what closed.
    async fn advance(&mut self) -> Result<()> {
        let watermark = self.tracker.advance(Instant::now());
        if watermark <= self.fired {
            return Ok(());
        }
        self.fired = watermark;
        self.metrics.set_watermark(watermark);
        let emitted = self
            .with_chain(move |chain| chain.on_watermark(watermark))
            .await?;
        let wrote = !emitted.is_empty();
        self.emit(emitted).await?;
        if wrote || watermark == END_OF_INPUT {
            self.out.send(SinkCommand::Flush).await?;
        }
        Ok(())
    }

    async fn emit(&mut self, emitted: Emitted) -> Result<()> {
        for batch in emitted.batches {
            self.metrics.add_out(batch.num_rows());
            self.out.send(SinkCommand::Write(batch)).await?;
        }
        for batch in emitted.late {
            self.metrics.add_late(batch.num_rows());
            if let Some(sink) = &self.late {
                sink.send(SinkCommand::Write(batch)).await?;
            }
        }
        Ok(())
    }

    /// Runs CPU-heavy operator work off the async workers.
    async fn with_chain<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut OperatorChain) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let mut chain = self
            .chain
            .take()
            .ok_or_else(|| Error::Internal("operator chain lost".into()))?;
        let (chain, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut chain);
            (chain, result)
        })
        .await
        .map_err(|e| Error::Internal(format!("operator task failed: {e}")))?;
        self.chain = Some(chain);
        result
    }

    /// Closes every sink, reporting the first failure.
    async fn close(&mut self) -> Result<()> {
        let mut first = Ok(());
        let writers = [Some(&mut self.out), self.late.as_mut(), self.dead.as_mut()];
        for writer in writers.into_iter().flatten() {
            let result = writer.close().await;
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

async fn cancelled(cancel: &mut Option<watch::Receiver<bool>>) {
    match cancel {
        Some(rx) => {
            while !*rx.borrow_and_update() {
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
        None => std::future::pending().await,
    }
}

enum SinkCommand {
    Write(RecordBatch),
    Flush,
}

/// A sink running on a thread of its own behind a bounded channel.
struct SinkWriter {
    name: String,
    tx: Option<mpsc::Sender<SinkCommand>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl SinkWriter {
    fn spawn(mut sink: Box<dyn Sink>, capacity: usize) -> Result<Self> {
        let name = sink.name();
        let (tx, mut rx) = mpsc::channel::<SinkCommand>(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name("sluice-sink".into())
            .spawn(move || {
                while let Some(command) = rx.blocking_recv() {
                    match command {
                        SinkCommand::Write(batch) => sink.write(&batch)?,
                        SinkCommand::Flush => sink.flush()?,
                    }
                }
                sink.close()
            })
            .map_err(|e| Error::Internal(format!("cannot start a sink thread: {e}")))?;
        Ok(SinkWriter {
            name,
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    async fn send(&self, command: SinkCommand) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Err(Error::Internal(format!(
                "sink {} already closed",
                self.name
            )));
        };
        // A send fails only when the sink thread has stopped; `close` reports its error.
        tx.send(command).await.map_err(|_| Error::Sink {
            name: self.name.clone(),
            message: "stopped after an error".into(),
        })
    }

    async fn close(&mut self) -> Result<()> {
        self.tx = None;
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|e| Error::Internal(format!("joining sink {name}: {e}")))?
            .map_err(|_| Error::Sink {
                name: self.name.clone(),
                message: "the sink thread panicked".into(),
            })?
    }
}
