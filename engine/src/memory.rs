//! In-memory sources and sinks: for tests, examples and embedding sluice in a program.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::sink::Sink;
use crate::source::{Position, Source, SourceBatch, SourceContext, SourcePartition};

/// A bounded source over batches held in memory: one list of batches per partition.
#[derive(Debug)]
pub struct MemorySource {
    schema: SchemaRef,
    partitions: Vec<Vec<SourceBatch>>,
}

impl MemorySource {
    /// A source whose partition `p` yields `partitions[p]` in order.
    pub fn new(schema: SchemaRef, partitions: Vec<Vec<RecordBatch>>) -> Self {
        let partitions = partitions
            .into_iter()
            .map(|p| p.into_iter().map(SourceBatch::new).collect())
            .collect();
        MemorySource { schema, partitions }
    }
}

impl Source for MemorySource {
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
            .enumerate()
            .map(|(i, batches)| {
                Box::new(MemoryPartition {
                    index: i,
                    batches: batches.into(),
                    consumed: 0,
                }) as Box<dyn SourcePartition>
            })
            .collect())
    }
}

struct MemoryPartition {
    index: usize,
    batches: VecDeque<SourceBatch>,
    /// Batches returned so far: the partition's position.
    consumed: u64,
}

impl SourcePartition for MemoryPartition {
    fn name(&self) -> String {
        format!("memory[{}]", self.index)
    }

    fn next_batch(&mut self) -> Result<Option<SourceBatch>> {
        let next = self.batches.pop_front();
        self.consumed += u64::from(next.is_some());
        Ok(next)
    }

    fn position(&self) -> Option<Position> {
        Some(Position {
            offset: self.consumed,
            records: self.consumed,
        })
    }

    fn seek(&mut self, position: Position) -> Result<()> {
        let skip = usize::try_from(position.offset)
            .unwrap_or(usize::MAX)
            .min(self.batches.len());
        self.batches.drain(..skip);
        self.consumed = position.offset;
        Ok(())
    }
}

/// A sink that keeps every batch; clone it to read what was written after the run.
#[derive(Debug, Clone, Default)]
pub struct CollectSink {
    batches: Arc<Mutex<Vec<RecordBatch>>>,
    flushes: Arc<Mutex<usize>>,
}

impl CollectSink {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The batches written so far.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.batches.lock().map(|b| b.clone()).unwrap_or_default()
    }

    /// Everything written so far as one batch of `schema`.
    pub fn concat(&self, schema: &SchemaRef) -> Result<RecordBatch> {
        concat_batches(schema, &self.batches())
            .map_err(Error::arrow("concatenating collected batches"))
    }

    /// How many times the sink was flushed.
    pub fn flushes(&self) -> usize {
        self.flushes.lock().map(|f| *f).unwrap_or_default()
    }
}

impl Sink for CollectSink {
    fn name(&self) -> String {
        "memory".into()
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.batches
            .lock()
            .map_err(|_| Error::Internal("collect sink poisoned".into()))?
            .push(batch.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        *self
            .flushes
            .lock()
            .map_err(|_| Error::Internal("collect sink poisoned".into()))? += 1;
        Ok(())
    }
}
