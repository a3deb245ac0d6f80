//! The operators of a whole job: one chain per input stream and, for two streams, the join
//! that merges them and the chain after it.
//!
//! A job with one stream is its chain. A job with two runs each stream's operators (stateless:
//! filters, projections, lookup joins), joins their output, then runs the operators after the
//! join, which see every joined batch before the watermark that follows it. Late rows of a
//! joined job all take the join's late-row schema (stream, event time, row as JSON).
//! Checkpoint state is numbered in declaration order: the streams' operators, the join, then
//! the operators after it.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

use super::{Emitted, JoinSideId, OperatorChain, StreamJoinOperator, late_rows};
use crate::error::{Error, Result};
use crate::state::StateSnapshot;

/// Every operator of a job, wired by input stream.
#[derive(Debug)]
pub struct OperatorGraph {
    streams: Vec<OperatorChain>,
    join: Option<Joined>,
}

/// The join of two streams and what runs after it.
#[derive(Debug)]
struct Joined {
    operator: StreamJoinOperator,
    after: OperatorChain,
    /// The joined rows' event-time column: names late rows of windows after the join.
    time_column: String,
}

impl OperatorGraph {
    /// A job with one input stream.
    pub fn single(chain: OperatorChain) -> Self {
        OperatorGraph {
            streams: vec![chain],
            join: None,
        }
    }

    /// A job joining two streams: `left` and `right` run first, then `join`, then `after`,
    /// whose event time is `time_column` of the joined rows.
    pub fn joined(
        left: OperatorChain,
        right: OperatorChain,
        join: StreamJoinOperator,
        after: OperatorChain,
        time_column: String,
    ) -> Self {
        OperatorGraph {
            streams: vec![left, right],
            join: Some(Joined {
                operator: join,
                after,
                time_column,
            }),
        }
    }

    /// Input streams (one or two).
    pub fn inputs(&self) -> usize {
        self.streams.len()
    }

    /// The schema of what reaches the sink.
    pub fn output_schema(&self) -> SchemaRef {
        match &self.join {
            Some(j) => j.after.output_schema(),
            None => self.streams[0].output_schema(),
        }
    }

    /// Where each operator that uses a backend runs, in declaration order.
    pub fn placements(&self) -> Vec<String> {
        let mut all: Vec<String> = self.streams.iter().flat_map(|c| c.placements()).collect();
        if let Some(j) = &self.join {
            all.push(j.operator.placement().to_string());
            all.extend(j.after.placements());
        }
        all
    }

    /// Rows the join buffers on each side (`None` without a join).
    pub fn join_buffered_rows(&self) -> Option<(usize, usize)> {
        self.join.as_ref().map(|j| j.operator.buffered_rows())
    }

    /// Pushes a micro-batch of input stream `input` through the job.
    pub fn process(&mut self, input: usize, batch: RecordBatch) -> Result<Emitted> {
        let chain = self
            .streams
            .get_mut(input)
            .ok_or_else(|| Error::Internal(format!("no input stream {input}")))?;
        let emitted = chain.process(batch)?;
        let Some(joined) = &mut self.join else {
            return Ok(emitted);
        };
        let side = if input == 0 {
            JoinSideId::Left
        } else {
            JoinSideId::Right
        };
        let mut out = Emitted {
            batches: Vec::new(),
            late: emitted.late,
        };
        for batch in emitted.batches {
            joined.operator.process(side, batch, &mut out)?;
        }
        joined.after_join(out, None)
    }

    /// Tells every operator that event time reached `watermark`.
    pub fn on_watermark(&mut self, watermark: i64) -> Result<Emitted> {
        let Some(joined) = &mut self.join else {
            return self.streams[0].on_watermark(watermark);
        };
        // The streams' operators keep no state, so they emit nothing on a watermark.
        let mut out = Emitted::default();
        joined.operator.on_watermark(watermark, &mut out)?;
        joined.after_join(out, Some(watermark))
    }

    /// Every stateful operator's state, numbered in declaration order.
    pub fn snapshot(&mut self) -> Result<Vec<(usize, StateSnapshot)>> {
        let mut states = Vec::new();
        let mut offset = 0;
        for chain in &mut self.streams {
            states.extend(chain.snapshot()?.into_iter().map(|(i, s)| (offset + i, s)));
            offset += chain.len();
        }
        if let Some(j) = &mut self.join {
            states.push((offset, j.operator.snapshot()?));
            offset += 1;
            states.extend(
                j.after
                    .snapshot()?
                    .into_iter()
                    .map(|(i, s)| (offset + i, s)),
            );
        }
        Ok(states)
    }

    /// Loads states [`OperatorGraph::snapshot`] returned into this fresh graph.
    pub fn restore(&mut self, states: &[(usize, StateSnapshot)]) -> Result<()> {
        let mut offset = 0;
        let take = |from: usize, len: usize| -> Vec<(usize, StateSnapshot)> {
            states
                .iter()
                .filter(|(i, _)| (from..from + len).contains(i))
                .map(|(i, s)| (i - from, s.clone()))
                .collect()
        };
        let streams = self.streams.len();
        for chain in &mut self.streams {
            let len = chain.len();
            if streams == 1 {
                // One stream: its chain owns every index, and reports any it lacks.
                return chain.restore(states);
            }
            chain.restore(&take(offset, len))?;
            offset += len;
        }
        if let Some(j) = &mut self.join {
            let saved = states.iter().find(|(i, _)| *i == offset).ok_or_else(|| {
                Error::config(
                    "join",
                    "the checkpoint has no state for the join (were operators added or removed \
                     before it?)",
                )
            })?;
            j.operator.restore(&saved.1).map_err(|e| match e {
                Error::Config { key, message } if key == "checkpoint" => Error::Config {
                    key: "join".into(),
                    message,
                },
                other => other,
            })?;
            offset += 1;
            let after = take(offset, usize::MAX - offset);
            j.after.restore(&after)?;
        }
        Ok(())
    }
}

impl Joined {
    /// Runs what the join emitted through the operators after it (then `watermark`), and
    /// turns their late rows into the join's late-row schema.
    fn after_join(&mut self, joined: Emitted, watermark: Option<i64>) -> Result<Emitted> {
        let mut out = self.after.feed(joined.batches, watermark)?;
        let mut late = joined.late;
        for batch in out.late.drain(..) {
            let time = batch.schema().index_of(&self.time_column).map_err(|_| {
                Error::Internal("late rows after the join lost their event time".into())
            })?;
            late.push(late_rows("join", &batch, time)?);
        }
        out.late = late;
        Ok(out)
    }
}
