//! Session window aggregation on the CPU.
//!
//! Per key, a short list of open sessions `[start, end)` with `end = last event + gap`. An event
//! joins every session it touches (`start <= ts + gap && ts <= end`, the Flink rule, so two
//! events exactly `gap` apart share a session); when it touches several, they merge into one.
//! Rows are applied one at a time because a merge can move a session's accumulator mid-batch;
//! which rows are late is decided first, against the sessions open before the batch.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::accumulators::Accumulators;
use super::in_pool;
use super::partition::{BuildKeyHasher, partition_of};
use super::state::{GroupsIn, GroupsOut};
use super::window_aggregate::concat_columns;
use crate::backend::{AggregateInput, ClosedWindows, WindowAggregatePlan, WindowAggregator};
use crate::error::Result;
use crate::state::StateSnapshot;
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
        // Lateness is judged against the sessions open before the batch, for every row alike,
        // so it does not depend on the order of rows within a micro-batch (a session opened
        // by a later row of the same batch does not rescue an earlier one, nor an earlier
        // one a later): the rule a data-parallel backend can apply too.
        for (row, (&key, &ts)) in input.keys.iter().zip(input.ts).enumerate() {
            let own_end = ts.saturating_add(gap);
            if own_end > fired || (count > 1 && partition_of(key, count) != self.index) {
                continue;
            }
            let touches = self
                .sessions
                .get(&key)
                .is_some_and(|list| list.iter().any(|s| s.start <= own_end && ts <= s.end));
            if !touches {
                self.late.push(row as u32);
            }
        }
        let mut late = self.late.iter().copied().peekable();
        let mut touching: Vec<usize> = Vec::new();
        for (row, (&key, &ts)) in input.keys.iter().zip(input.ts).enumerate() {
            if late.next_if_eq(&(row as u32)).is_some()
                || (count > 1 && partition_of(key, count) != self.index)
            {
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

    fn snapshot(&mut self) -> Result<StateSnapshot> {
        let mut out = GroupsOut::default();
        for partition in &self.partitions {
            let mut slots = Vec::with_capacity(partition.open);
            for (&key, list) in &partition.sessions {
                for s in list {
                    out.keys.push(key);
                    out.starts.push(s.start);
                    out.ends.push(s.end);
                    slots.push(s.slot);
                }
            }
            out.parts.push(partition.accumulators.state_columns(&slots));
        }
        out.into_snapshot(STATE_FORMAT, &self.plan, self.fired_through)
    }

    fn restore(&mut self, state: &StateSnapshot) -> Result<()> {
        let (groups, meta) = GroupsIn::read(state, STATE_FORMAT, &self.plan)?;
        let count = self.partitions.len();
        for (row, &key) in groups.keys.iter().enumerate() {
            let partition = &mut self.partitions[partition_of(key, count)];
            let slot = partition.accumulators.push_state(&groups.accumulators, row);
            let (start, end) = (groups.starts[row], groups.ends[row]);
            partition
                .sessions
                .entry(key)
                .or_default()
                .push(Session { start, end, slot });
            partition.open += 1;
            partition.min_end = partition.min_end.min(end);
        }
        self.fired_through = meta.fired_through;
        Ok(())
    }
}

/// The layout of this aggregator's checkpoint state (`cpu/state.rs`).
const STATE_FORMAT: &str = "cpu-session/1";

#[cfg(test)]
mod tests {
    use crate::aggregate::AggregateFunction;
    use crate::backend::{
        AggregateInput, AggregatePlan, Backend, ColumnValues, CpuBackend, WindowAggregatePlan,
    };
    use crate::window::WindowSpec;

    /// Late event times and closed sessions (start, end, count) after a fire through 500 and
    /// `batches` of key 1 at those event times.
    fn run(batches: &[&[i64]]) -> (Vec<i64>, Vec<(i64, i64, i64)>) {
        let plan = WindowAggregatePlan {
            window: WindowSpec::Session { gap: 100 },
            aggregates: vec![AggregatePlan {
                function: AggregateFunction::Count,
                input: None,
            }],
        };
        let mut agg = CpuBackend::new()
            .window_aggregator(&plan)
            .expect("aggregator");
        assert!(agg.fire(500).expect("fire").is_empty());
        let mut late_ts = Vec::new();
        for ts in batches {
            let keys = vec![1u64; ts.len()];
            let late = agg
                .accumulate(&AggregateInput {
                    keys: &keys,
                    ts,
                    columns: &[ColumnValues::Rows],
                })
                .expect("accumulate");
            late_ts.extend(late.iter().map(|&r| ts[r as usize]));
        }
        let closed = agg.fire(i64::MAX).expect("fire");
        let counts = closed.aggregates[0]
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .expect("count column");
        let sessions = (0..closed.len())
            .map(|i| (closed.starts[i], closed.ends[i], counts.value(i)))
            .collect();
        (late_ts, sessions)
    }

    #[test]
    fn lateness_does_not_depend_on_row_order_within_a_batch() {
        // Through 500 has fired. 390's own window [390, 490) has fired and it touches no
        // session open before the batch: late, even though 450 (on time: [450, 550) is open)
        // opens a session it touches in the same batch, whichever row comes first.
        let expected = (vec![390], vec![(450, 550, 1)]);
        assert_eq!(run(&[&[390, 450]]), expected);
        assert_eq!(run(&[&[450, 390]]), expected);
        // Touching a session open before its batch, the same row joins it.
        assert_eq!(run(&[&[450], &[390]]), (vec![], vec![(390, 550, 2)]));
    }
}
