//! The driver: cuts micro-batches, runs the operator chain, advances the watermark and hands
//! what is emitted to the sink writers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tokio::sync::{mpsc, watch};

mod epoch;

use super::checkpointer::Checkpointer;
use super::messages::{FromSource, Progress, SinkCommand};
use super::sink_writer::SinkWriter;
use crate::batching::{MicroBatch, MicroBatcher};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::operator::{Emitted, OperatorGraph};
use crate::source::{CheckpointListener, DeadLetter, Position};
use crate::watermark::{END_OF_INPUT, WatermarkTracker};

pub(super) struct Driver {
    graph: Option<OperatorGraph>,
    tracker: WatermarkTracker,
    /// One micro-batcher per input stream (their rows differ).
    batchers: Vec<MicroBatcher>,
    /// The input stream of each partition.
    stream_of: Vec<usize>,
    tick: Duration,
    metrics: Arc<Metrics>,
    out: SinkWriter,
    late: Option<SinkWriter>,
    dead: Option<SinkWriter>,
    strict: bool,
    /// Per input stream: progress waiting for the rows before it to be processed.
    progress: Vec<VecDeque<(u64, Progress)>>,
    /// Per input stream: rows received.
    rows_pushed: Vec<u64>,
    /// Per input stream: rows that have been through the operators. A source batch larger
    /// than a micro-batch is cut into several, processed one by one: its progress waits for
    /// the last of them, or the watermark would make its later rows late.
    rows_processed: Vec<u64>,
    fired: i64,
    ended: usize,
    partitions: usize,
    /// The job's name (checkpoint listings).
    job: String,
    /// Partition names, by index: checkpoints key positions by name.
    names: Vec<String>,
    /// Partition names as their sources give them (`names` prefixes a joined job's with the
    /// stream's name).
    own_names: Vec<String>,
    /// Sources told of every completed checkpoint, with the stream they feed.
    listeners: Vec<(usize, Arc<dyn CheckpointListener>)>,
    /// Where each partition stands after the last batch received from it.
    positions: Vec<Position>,
    checkpointer: Option<Checkpointer>,
    /// Why the job stopped to be run again: its source's partitions changed.
    partitions_changed: Option<String>,
    /// Whether a job without checkpoints was told so already (it reads on without them).
    warned_of_change: bool,
}

/// What a driver is made of; its own counters start from nothing.
pub(super) struct DriverParts {
    pub(super) graph: OperatorGraph,
    pub(super) tracker: WatermarkTracker,
    /// One micro-batcher per input stream.
    pub(super) batchers: Vec<MicroBatcher>,
    /// The input stream of each partition.
    pub(super) stream_of: Vec<usize>,
    /// How often the driver wakes without input (idle detection, batch deadlines).
    pub(super) tick: Duration,
    pub(super) metrics: Arc<Metrics>,
    pub(super) out: SinkWriter,
    pub(super) late: Option<SinkWriter>,
    pub(super) dead: Option<SinkWriter>,
    pub(super) strict: bool,
    pub(super) job: String,
    /// Partition names as checkpoints key them, and as their sources give them.
    pub(super) names: Vec<String>,
    pub(super) own_names: Vec<String>,
    pub(super) listeners: Vec<(usize, Arc<dyn CheckpointListener>)>,
    /// Where each partition starts.
    pub(super) positions: Vec<Position>,
    pub(super) checkpointer: Option<Checkpointer>,
}

impl Driver {
    pub(super) fn new(parts: DriverParts) -> Self {
        let inputs = parts.batchers.len();
        Driver {
            graph: Some(parts.graph),
            tracker: parts.tracker,
            batchers: parts.batchers,
            stream_of: parts.stream_of,
            tick: parts.tick,
            metrics: parts.metrics,
            out: parts.out,
            late: parts.late,
            dead: parts.dead,
            strict: parts.strict,
            progress: (0..inputs).map(|_| VecDeque::new()).collect(),
            rows_pushed: vec![0; inputs],
            rows_processed: vec![0; inputs],
            fired: i64::MIN,
            ended: 0,
            partitions: parts.positions.len(),
            job: parts.job,
            names: parts.names,
            own_names: parts.own_names,
            listeners: parts.listeners,
            positions: parts.positions,
            checkpointer: parts.checkpointer,
            partitions_changed: None,
            warned_of_change: false,
        }
    }

    /// The id of the last checkpoint written, if any.
    pub(super) fn last_checkpoint(&self) -> Option<u64> {
        self.checkpointer.as_ref().and_then(|c| c.last)
    }

    /// Why the job must be run again, when its source's partitions changed.
    pub(super) fn take_partitions_changed(&mut self) -> Option<String> {
        self.partitions_changed.take()
    }
}

impl Driver {
    /// Runs until the input ends (`Ok(false)`) or the job is cancelled (`Ok(true)`).
    pub(super) async fn drive(
        &mut self,
        rx: &mut mpsc::Receiver<FromSource>,
        mut cancel: Option<watch::Receiver<bool>>,
    ) -> Result<bool> {
        loop {
            let mut wake = self
                .deadline()
                .unwrap_or_else(|| Instant::now() + self.tick);
            if let Some(c) = &self.checkpointer {
                if c.write_done() {
                    self.publish().await?;
                }
                if let Some(at) = self.checkpoint_due(Instant::now()) {
                    wake = wake.min(at);
                } else {
                    self.checkpoint().await?;
                }
            }
            tokio::select! {
                biased;
                _ = cancelled(&mut cancel) => return Ok(true),
                message = rx.recv() => match message {
                    Some(FromSource::Data { partition, batch, max_ts, dead, position }) => {
                        self.record(partition, position);
                        self.on_data(partition, batch, max_ts, dead).await?;
                        // Data that never stops would otherwise starve the timer below: another
                        // input's micro-batch would wait past its delay, holding the watermark.
                        self.cut_due(Instant::now()).await?;
                    }
                    Some(FromSource::End { partition, position }) => {
                        self.record(partition, position);
                        let s = self.stream_of[partition];
                        self.progress[s].push_back((self.rows_pushed[s], Progress::Finish(partition)));
                        self.ended += 1;
                        if self.ended == self.partitions {
                            self.cut_all().await?;
                            self.commit_ready();
                            self.advance().await?;
                            return Ok(false);
                        }
                        self.commit_ready();
                        self.advance().await?;
                    }
                    Some(FromSource::Opened { partition }) => {
                        // No rows: only its idle clock starts (it could not be idle before).
                        self.tracker.observe(partition, None, Instant::now());
                    }
                    Some(FromSource::PartitionsChanged(why)) => {
                        if self.checkpointer.is_some() {
                            // Stopped like a cancel: a checkpoint, then the caller runs it again.
                            self.partitions_changed = Some(why);
                            return Ok(true);
                        }
                        if !self.warned_of_change {
                            self.warned_of_change = true;
                            eprintln!(
                                "sluice: warning: {why}; this job has no checkpoints to restart \
                                 from, so it reads on without them"
                            );
                        }
                    }
                    Some(FromSource::Failed(e)) => return Err(e),
                    None => return Err(Error::Internal("every source reader stopped without ending".into())),
                },
                _ = tokio::time::sleep_until(wake.into()) => {
                    self.cut_due(Instant::now()).await?;
                    // Idle partitions may have timed out: the watermark can move without data.
                    self.advance().await?;
                }
            }
        }
    }

    /// When the next checkpoint should be taken (`None`: now). A due checkpoint waits for
    /// the micro-batcher to be empty, which it is after most pushes and at the latest when
    /// its delay cuts it: cutting early to checkpoint would add a micro-batch per checkpoint,
    /// which costs the GPU backend a whole round. One interval late, it cuts anyway.
    fn checkpoint_due(&self, now: Instant) -> Option<Instant> {
        let c = self.checkpointer.as_ref()?;
        let forced = c.due + c.interval();
        let ready = c.due <= now && (self.pending_rows() == 0 || forced <= now);
        if ready {
            None
        } else if c.due > now {
            Some(c.due)
        } else {
            Some(forced)
        }
    }

    fn record(&mut self, partition: usize, position: Option<Position>) {
        if let (Some(slot), Some(position)) = (self.positions.get_mut(partition), position) {
            *slot = position;
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
        let s = self.stream_of[partition];
        let rows = batch.num_rows();
        self.metrics.add_in(rows);
        self.rows_pushed[s] += rows as u64;
        self.progress[s].push_back((self.rows_pushed[s], Progress::Observe(partition, max_ts)));
        for mb in self.batchers[s].push(batch, Instant::now())? {
            self.process(s, mb).await?;
        }
        if self.batchers[s].pending_rows() == 0 {
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

    /// When the oldest micro-batch being formed must be cut.
    fn deadline(&self) -> Option<Instant> {
        self.batchers
            .iter()
            .filter_map(MicroBatcher::deadline)
            .min()
    }

    /// Rows received and not yet cut into a micro-batch, over every input.
    pub(super) fn pending_rows(&self) -> usize {
        self.batchers.iter().map(MicroBatcher::pending_rows).sum()
    }

    /// Cuts and processes the micro-batches whose delay has passed at `now`.
    async fn cut_due(&mut self, now: Instant) -> Result<()> {
        for s in 0..self.batchers.len() {
            if self.batchers[s].deadline().is_some_and(|d| d <= now)
                && let Some(mb) = self.batchers[s].cut()?
            {
                self.process(s, mb).await?;
            }
        }
        Ok(())
    }

    /// Cuts and processes what every input's micro-batcher holds.
    pub(super) async fn cut_all(&mut self) -> Result<()> {
        for s in 0..self.batchers.len() {
            if let Some(mb) = self.batchers[s].cut()? {
                self.process(s, mb).await?;
            }
        }
        Ok(())
    }

    /// Runs a micro-batch of input `input` through the operators, then lets the watermark
    /// catch up with it.
    pub(super) async fn process(&mut self, input: usize, mb: MicroBatch) -> Result<()> {
        let rows = mb.batch.num_rows() as u64;
        let emitted = self
            .with_graph(move |graph| graph.process(input, mb.batch))
            .await?;
        self.rows_processed[input] += rows;
        self.emit(emitted).await?;
        self.commit_ready();
        self.advance().await?;
        self.metrics.add_batch(mb.arrived.elapsed());
        Ok(())
    }

    /// Applies progress of every partition whose earlier rows have all been processed.
    pub(super) fn commit_ready(&mut self) {
        let now = Instant::now();
        for s in 0..self.batchers.len() {
            let processed = self.rows_processed[s];
            let progress = &mut self.progress[s];
            while progress.front().is_some_and(|(at, _)| *at <= processed) {
                match progress.pop_front() {
                    Some((_, Progress::Observe(p, max_ts))) => self.tracker.observe(p, max_ts, now),
                    Some((_, Progress::Finish(p))) => self.tracker.finish(p),
                    None => break,
                }
            }
        }
    }

    /// Moves the watermark as far as the partitions allow and fires what closed.
    pub(super) async fn advance(&mut self) -> Result<()> {
        let watermark = self.tracker.advance(Instant::now());
        if watermark <= self.fired {
            return Ok(());
        }
        self.fired = watermark;
        self.metrics.set_watermark(watermark);
        let emitted = self
            .with_graph(move |graph| graph.on_watermark(watermark))
            .await?;
        let wrote = !emitted.is_empty();
        self.emit(emitted).await?;
        if self.out.wants_watermarks {
            self.out.send(SinkCommand::Watermark(watermark)).await?;
        }
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
    pub(super) async fn with_graph<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut OperatorGraph) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let mut graph = self
            .graph
            .take()
            .ok_or_else(|| Error::Internal("operator graph lost".into()))?;
        let (graph, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut graph);
            (graph, result)
        })
        .await
        .map_err(|e| Error::Internal(format!("operator task failed: {e}")))?;
        self.graph = Some(graph);
        result
    }

    /// Closes every sink, reporting the first failure.
    pub(super) async fn close(&mut self) -> Result<()> {
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
