//! Session window aggregation on the CPU.
//!
//! Per key, a short list of open sessions `[start, end)` with `end = last event + gap`. An event
//! joins every session it touches (`start <= ts + gap && ts <= end`, the Flink rule, so two
//! events exactly `gap` apart share a session); when it touches several, they merge into one.
//! Rows are applied one at a time because a merge can move a session's accumulator mid-batch.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::accumulators::Accumulators;
use super::in_pool;
use super::partition::{BuildKeyHasher, partition_of};
use super::window_aggregate::concat_columns;
use crate::backend::{AggregateInput, ClosedWindows, WindowAggregatePlan, WindowAggregator};
use crate::error::Result;
use crate::window::WindowSpec;

/// Session state for one operator.
#[derive(Debug)]
pub struct CpuSessionAggregator {
    plan: WindowAggregatePlan,
    gap: i64,
    partitions: Vec<Partition>,
    pool: Option<Arc<rayon::ThreadPool>>,
    fired_through: i64,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    start: i64,
    end: i64,
    slot: u32,
}

#[derive(Debug)]
struct Partition {
    index: usize,
    sessions: HashMap<u64, Vec<Session>, BuildKeyHasher>,
    accumulators: Accumulators,
    free: Vec<u32>,
    /// No session ends before this (a lower bound), so `fire` can skip a scan.
    min_end: i64,
    open: usize,
    late: Vec<u32>,
}

impl CpuSessionAggregator {
    /// Empty state for `plan` (a session window) with `partitions` partitions.
    pub fn new(
        plan: WindowAggregatePlan,
        partitions: usize,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Self {
        let gap = match plan.window {
            WindowSpec::Session { gap } => gap,
            _ => 1,
        };
        let partitions = (0..partitions.max(1))
            .map(|index| Partition {
                index,
                sessions: HashMap::default(),
                accumulators: Accumulators::new(&plan.aggregates),
                free: Vec::new(),
                min_end: i64::MAX,
                open: 0,
                late: Vec::new(),
            })
            .collect();
        CpuSessionAggregator {
            plan,
            gap,
            partitions,
            pool,
            fired_through: i64::MIN,
        }
    }
}

impl Partition {
    fn accumulate(
        &mut self,
        gap: i64,
        count: usize,
        fired: i64,
        input: &AggregateInput<'_>,
    ) -> Result<()> {
        self.late.clear();
        let mut touching: Vec<usize> = Vec::new();
        for (row, (&key, &ts)) in input.keys.iter().zip(input.ts).enumerate() {
            if count > 1 && partition_of(key, count) != self.index {
                continue;
            }
            let own_end = ts.saturating_add(gap);
            let list = self.sessions.entry(key).or_default();
            touching.clear();
            touching.extend(
                list.iter()
                    .enumerate()
                    .filter(|(_, s)| s.start <= own_end && ts <= s.end)
                    .map(|(i, _)| i),
            );
            let slot = if touching.is_empty() {
                // Alone, and its own window already fired: late.
                if own_end <= fired {
                    self.late.push(row as u32);
                    continue;
                }
                let slot = match self.free.pop() {
                    Some(slot) => slot,
                    None => self.accumulators.push_slot(),
                };
                list.push(Session {
                    start: ts,
                    end: own_end,
                    slot,
                });
                self.open += 1;
                self.min_end = self.min_end.min(own_end);
                slot
            } else {
                let keep = touching[0];
                let mut merged = list[keep];
                merged.start = merged.start.min(ts);
                merged.end = merged.end.max(own_end);
                // Remove the others back to front so indices stay valid.
                for &i in touching[1..].iter().rev() {
                    let other = list.swap_remove(i);
                    merged.start = merged.start.min(other.start);
                    merged.end = merged.end.max(other.end);
                    self.accumulators.merge(merged.slot, other.slot);
                    self.accumulators.reset_slot(other.slot);
                    self.free.push(other.slot);
                    self.open -= 1;
                }
                // `keep` is the smallest index, so swap_remove of larger ones did not move it.
                list[keep] = merged;
                merged.slot
            };
            self.accumulators
                .update(&[row as u32], &[slot], input.columns)?;
        }
        Ok(())
    }

    fn fire(
        &mut self,
        watermark: i64,
        closed: &mut ClosedWindows,
        parts: &mut Vec<Vec<arrow::array::ArrayRef>>,
    ) {
        if watermark < self.min_end {
            return;
        }
        let mut slots = Vec::new();
        let mut min_end = i64::MAX;
        self.sessions.retain(|&key, list| {
            list.retain(|s| {
                if s.end <= watermark {
                    closed.keys.push(key);
                    closed.starts.push(s.start);
                    closed.ends.push(s.end);
                    slots.push(s.slot);
                    false
                } else {
                    min_end = min_end.min(s.end);
                    true
                }
            });
            !list.is_empty()
        });
        self.min_end = min_end;
        if slots.is_empty() {
            return;
        }
        parts.push(self.accumulators.finish(&slots));
        for &slot in &slots {
            self.accumulators.reset_slot(slot);
        }
        self.open -= slots.len();
        self.free.extend(slots);
    }
}

impl WindowAggregator for CpuSessionAggregator {
    fn accumulate(&mut self, input: &AggregateInput<'_>) -> Result<Vec<u32>> {
        input.check(&self.plan)?;
        let (gap, fired, count) = (self.gap, self.fired_through, self.partitions.len());
        let partitions = &mut self.partitions;
        in_pool(&self.pool, || {
            partitions
                .par_iter_mut()
                .try_for_each(|p| p.accumulate(gap, count, fired, input))
        })?;
        let mut late: Vec<u32> = self
            .partitions
            .iter()
            .flat_map(|p| p.late.iter().copied())
            .collect();
        late.sort_unstable();
        Ok(late)
    }

    fn fire(&mut self, watermark: i64) -> Result<ClosedWindows> {
        if watermark <= self.fired_through {
            return Ok(ClosedWindows::default());
        }
        self.fired_through = watermark;
        let mut closed = ClosedWindows::default();
        let mut parts = Vec::new();
        for partition in &mut self.partitions {
            partition.fire(watermark, &mut closed, &mut parts);
        }
        closed.aggregates = concat_columns(parts, self.plan.aggregates.len())?;
        Ok(closed)
    }

    fn open_groups(&self) -> usize {
        self.partitions.iter().map(|p| p.open).sum()
    }
}
