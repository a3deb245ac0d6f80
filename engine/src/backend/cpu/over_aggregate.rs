//! OVER aggregation on the CPU: per key, each frame's rows and running aggregates.
//!
//! A call groups its rows by key (one hash lookup per row gives the key's slot, a counting
//! sort keeps each key's rows in emission order) and walks them key by key: a RANGE frame
//! takes in every row of a timestamp before answering any of them (ties see each other), a
//! ROWS frame answers row by row. Keys are independent, so a large call's keys are cut into
//! pieces of about equal rows that run on the backend's threads.

mod by_key;
mod checkpoint;
mod frame_rows;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use rayon::prelude::*;

use self::by_key::{Gathered, RowsByKey, same_column};
use self::frame_rows::{Column, FrameRows, Output, OutputSlice, Running};
use super::in_pool;
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::{
    AggregateInput, AggregatePlan, ColumnValues, OverAggregatePlan, OverAggregator,
};
use crate::error::{Error, Result};
use crate::frame::OverFrame;
use crate::state::StateSnapshot;

/// The frames of one OVER operator, on the CPU.
#[derive(Debug)]
pub struct CpuOverAggregator {
    plan: OverAggregatePlan,
    /// The distinct frames and, per frame, the plan indices of its aggregates.
    groups: Vec<(OverFrame, Vec<usize>)>,
    /// Each key's slot in `keys`.
    slots: HashMap<u64, u32, ahash::RandomState>,
    /// Per slot, the key and one [`FrameRows`] per group.
    keys: Vec<(u64, Vec<FrameRows>)>,
    /// Where the keys' pieces of a large call run (`None`: Rayon's global threads).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// A new key's frames.
    template: Vec<FrameRows>,
    /// The watermark at which the next expiry sweep over all keys runs.
    next_sweep: i64,
}

impl CpuOverAggregator {
    /// Empty frames for `plan`.
    pub fn new(plan: OverAggregatePlan) -> Self {
        let groups: Vec<(OverFrame, Vec<usize>)> = plan
            .frames()
            .into_iter()
            .map(|frame| {
                let members = (0..plan.aggregates.len())
                    .filter(|&i| plan.aggregates[i].1 == frame)
                    .collect();
                (frame, members)
            })
            .collect();
        let template = groups
            .iter()
            .map(|(frame, members)| {
                let unbounded = frame.is_unbounded();
                FrameRows::new(
                    members
                        .iter()
                        .map(|&i| {
                            let (aggregate, _) = &plan.aggregates[i];
                            running(aggregate.function, aggregate.input, unbounded)
                        })
                        .collect(),
                    unbounded,
                )
            })
            .collect();
        CpuOverAggregator {
            plan,
            groups,
            slots: HashMap::default(),
            keys: Vec::new(),
            pool: None,
            template,
            next_sweep: i64::MIN,
        }
    }

    /// Runs large calls on `pool` instead of Rayon's global threads.
    pub fn with_pool(mut self, pool: Option<Arc<rayon::ThreadPool>>) -> Self {
        self.pool = pool;
        self
    }

    /// The slot of `key`, made with empty frames if the key is new.
    fn slot(&mut self, key: u64) -> u32 {
        match self.slots.get(&key) {
            Some(&slot) => slot,
            None => {
                let slot = self.keys.len() as u32;
                self.keys.push((key, self.template.clone()));
                self.slots.insert(key, slot);
                slot
            }
        }
    }

    /// How far the watermark moves between expiry sweeps: the longest RANGE frame, so that
    /// a sweep (which visits every key) costs O(keys) per frame length, and a key's state
    /// outlives its last row's frame by at most as long again. `None`: no RANGE frame, so
    /// nothing ever expires.
    fn sweep_interval(&self) -> Option<i64> {
        self.groups
            .iter()
            .filter_map(|(frame, _)| match frame {
                OverFrame::Range { preceding } => Some((*preceding).max(1)),
                OverFrame::Rows { .. } | OverFrame::RangeUnbounded | OverFrame::RowsUnbounded => {
                    None
                }
            })
            .max()
    }
}

/// Calls with fewer rows run on the calling thread.
const PARALLEL_ROWS: usize = 16 * 1024;

fn running(function: AggregateFunction, input: Option<NumericKind>, unbounded: bool) -> Running {
    match input {
        None => Running::Rows,
        Some(NumericKind::Int) => Running::Int(Column::new(function, unbounded)),
        Some(NumericKind::Float) => Running::Float(Column::new(function, unbounded)),
    }
}

impl OverAggregator for CpuOverAggregator {
    fn aggregate(&mut self, input: &AggregateInput<'_>) -> Result<Vec<ArrayRef>> {
        if input.keys.len() != input.ts.len() || input.columns.len() != self.plan.aggregates.len() {
            return Err(Error::Internal(
                "OVER input columns do not match the plan".into(),
            ));
        }
        let rows = input.len();
        let slots: Vec<u32> = input.keys.iter().map(|&key| self.slot(key)).collect();
        let by_key = RowsByKey::new(&slots, self.keys.len());
        // Answers in `by_key.order`'s positions first, so that each piece of keys writes
        // its own run of every output; scattered to row order at the end.
        let mut outputs: Vec<Output> = self
            .plan
            .aggregates
            .iter()
            .map(|(aggregate, _)| Output::new(integer_output(aggregate), rows))
            .collect();
        let parallel = rows >= PARALLEL_ROWS;
        // Each distinct input column once, in key order.
        let mut source: Vec<usize> = Vec::with_capacity(input.columns.len());
        let mut gathered: Vec<Gathered> = Vec::new();
        let ts = in_pool(&self.pool, || {
            for (i, column) in input.columns.iter().enumerate() {
                match (0..i).find(|&j| same_column(&input.columns[j], column)) {
                    Some(j) => source.push(source[j]),
                    None => {
                        source.push(gathered.len());
                        gathered.push(by_key.gather_column(column, parallel));
                    }
                }
            }
            by_key.gather(input.ts, parallel)
        });
        let views: Vec<ColumnValues<'_>> = gathered.iter().map(Gathered::values).collect();
        let columns: Vec<Vec<&ColumnValues<'_>>> = self
            .groups
            .iter()
            .map(|(_, members)| members.iter().map(|&i| &views[source[i]]).collect())
            .collect();
        let threads = match &self.pool {
            Some(pool) => pool.current_num_threads(),
            None => rayon::current_num_threads(),
        };
        let pieces = if parallel { 4 * threads } else { 1 };
        let cuts = by_key.pieces(pieces);
        let walk = Walk {
            by_key: &by_key,
            ts: &ts,
            groups: &self.groups,
            columns: &columns,
        };
        let mut work = Vec::with_capacity(cuts.len());
        let mut keys = self.keys.as_mut_slice();
        let mut slices: Vec<OutputSlice<'_>> = outputs.iter_mut().map(Output::slice).collect();
        for cut in cuts.windows(2) {
            let (piece, rest) = keys.split_at_mut(cut[1] - cut[0]);
            keys = rest;
            let len = (by_key.starts[cut[1]] - by_key.starts[cut[0]]) as usize;
            let (piece_outputs, rest): (Vec<_>, Vec<_>) =
                slices.into_iter().map(|s| s.split_at(len)).unzip();
            slices = rest;
            work.push((cut[0], piece, piece_outputs));
        }
        if work.len() > 1 {
            in_pool(&self.pool, || {
                work.into_par_iter()
                    .for_each(|(first, keys, mut outputs)| walk.piece(first, keys, &mut outputs))
            });
        } else {
            for (first, keys, mut outputs) in work {
                walk.piece(first, keys, &mut outputs);
            }
        }
        let outputs = in_pool(&self.pool, || {
            outputs
                .into_iter()
                .map(|output| output.scatter(&by_key, parallel))
                .collect::<Vec<_>>()
        });
        Ok(outputs
            .into_iter()
            .zip(&self.plan.aggregates)
            .map(|(output, (aggregate, _))| {
                output.finish(aggregate.function != AggregateFunction::Count)
            })
            .collect())
    }

    fn expire(&mut self, watermark: i64) {
        let Some(interval) = self.sweep_interval() else {
            return;
        };
        if watermark < self.next_sweep {
            return;
        }
        self.next_sweep = watermark.saturating_add(interval);
        let groups = &self.groups;
        self.keys.retain_mut(|(_, frames)| {
            let mut kept = false;
            for ((frame, _), rows) in groups.iter().zip(frames.iter_mut()) {
                if let OverFrame::Range { preceding } = frame {
                    rows.evict_before(watermark.saturating_sub(*preceding));
                }
                kept |= rows.len() > 0;
            }
            kept
        });
        self.slots = self
            .keys
            .iter()
            .enumerate()
            .map(|(slot, (key, _))| (*key, slot as u32))
            .collect();
    }

    fn keys(&self) -> usize {
        self.keys.len()
    }

    fn snapshot(&mut self) -> Result<StateSnapshot> {
        self.save()
    }

    fn restore(&mut self, state: &StateSnapshot) -> Result<()> {
        self.load(state)
    }
}

/// Whether `aggregate`'s output is an integer column.
fn integer_output(aggregate: &AggregatePlan) -> bool {
    match aggregate.function {
        AggregateFunction::Count | AggregateFunction::CountDistinct => true,
        AggregateFunction::Avg => false,
        _ => aggregate.input != Some(NumericKind::Float),
    }
}

/// What every piece of one call reads.
struct Walk<'a> {
    by_key: &'a RowsByKey,
    /// The call's times, and below its aggregates' inputs, in `by_key.order`'s positions.
    ts: &'a [i64],
    groups: &'a [(OverFrame, Vec<usize>)],
    /// Per frame group, its aggregates' inputs.
    columns: &'a [Vec<&'a ColumnValues<'a>>],
}

impl Walk<'_> {
    /// Takes the rows of slots `first..first + keys.len()` through their frames, answering
    /// into `outputs` (positions from the first of these slots' rows on).
    fn piece(
        &self,
        first: usize,
        keys: &mut [(u64, Vec<FrameRows>)],
        outputs: &mut [OutputSlice<'_>],
    ) {
        let starts = &self.by_key.starts;
        let base = starts[first] as usize;
        for (k, (_, frames)) in keys.iter_mut().enumerate() {
            let (from, to) = (starts[first + k] as usize, starts[first + k + 1] as usize);
            if from == to {
                continue;
            }
            let rows = from..to;
            for (((frame, members), columns), frame_rows) in
                self.groups.iter().zip(self.columns).zip(frames.iter_mut())
            {
                let answer = |frame_rows: &FrameRows, outputs: &mut [OutputSlice<'_>], p| {
                    frame_rows.answer(outputs, members, p - base)
                };
                match *frame {
                    OverFrame::Range { .. } | OverFrame::RangeUnbounded => {
                        let mut p = from;
                        while p < to {
                            // The key's rows at one time: all taken in before any is answered.
                            let time = self.ts[p];
                            let mut end = p + 1;
                            while end < to && self.ts[end] == time {
                                end += 1;
                            }
                            for q in p..end {
                                frame_rows.push(time, columns, q);
                            }
                            if let OverFrame::Range { preceding } = *frame {
                                frame_rows.evict_before(time.saturating_sub(preceding));
                            }
                            for q in p..end {
                                answer(frame_rows, outputs, q);
                            }
                            p = end;
                        }
                    }
                    OverFrame::Rows { .. } | OverFrame::RowsUnbounded => {
                        for p in rows.clone() {
                            frame_rows.push(self.ts[p], columns, p);
                            if let OverFrame::Rows { preceding } = *frame {
                                frame_rows.keep_last(preceding.saturating_add(1));
                            }
                            answer(frame_rows, outputs, p);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
