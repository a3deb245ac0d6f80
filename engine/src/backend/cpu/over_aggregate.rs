//! OVER aggregation on the CPU: per key, each frame's rows and running aggregates.
//!
//! A call walks its rows in emission order, each to its key's frames (one hash lookup per
//! row gives the key's slot): a RANGE frame takes in every row of a timestamp before
//! answering any of them (ties see each other), a ROWS frame answers row by row. No sort:
//! the rows come in time order. Keys are independent, so the walk can be split across
//! threads by key later.

mod checkpoint;
mod frame_rows;

use std::collections::HashMap;

use arrow::array::ArrayRef;

use self::frame_rows::{Column, FrameRows, Output, Running};
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::{AggregateInput, ColumnValues, OverAggregatePlan, OverAggregator};
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
            .map(|(_, members)| {
                FrameRows::new(
                    members
                        .iter()
                        .map(|&i| {
                            let (aggregate, _) = &plan.aggregates[i];
                            running(aggregate.function, aggregate.input)
                        })
                        .collect(),
                )
            })
            .collect();
        CpuOverAggregator {
            plan,
            groups,
            slots: HashMap::default(),
            keys: Vec::new(),
            template,
            next_sweep: i64::MIN,
        }
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
                OverFrame::Rows { .. } => None,
            })
            .max()
    }
}

fn running(function: AggregateFunction, input: Option<NumericKind>) -> Running {
    match input {
        None => Running::Rows,
        Some(NumericKind::Int) => Running::Int(Column::new(function)),
        Some(NumericKind::Float) => Running::Float(Column::new(function)),
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
        let mut outputs: Vec<Output> = self
            .plan
            .aggregates
            .iter()
            .map(|(aggregate, _)| {
                let integer = match aggregate.function {
                    AggregateFunction::Count | AggregateFunction::CountDistinct => true,
                    AggregateFunction::Avg => false,
                    _ => aggregate.input != Some(NumericKind::Float),
                };
                if integer {
                    Output::Int(vec![0; rows], vec![false; rows])
                } else {
                    Output::Float(vec![0.0; rows], vec![false; rows])
                }
            })
            .collect();
        let columns: Vec<Vec<&ColumnValues<'_>>> = self
            .groups
            .iter()
            .map(|(_, members)| members.iter().map(|&i| &input.columns[i]).collect())
            .collect();
        let slots: Vec<u32> = input.keys.iter().map(|&key| self.slot(key)).collect();
        for (g, ((frame, members), columns)) in self.groups.iter().zip(&columns).enumerate() {
            let mut outs = select_mut(&mut outputs, members);
            let mut first = 0;
            while first < rows {
                // The run of rows at one time: a RANGE frame takes them all in first.
                let time = input.ts[first];
                let end = first + input.ts[first..].partition_point(|&t| t == time);
                walk(
                    &mut self.keys,
                    &slots[first..end],
                    first,
                    g,
                    *frame,
                    time,
                    columns,
                    &mut outs,
                );
                first = end;
            }
        }
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
                kept |= !rows.times.is_empty();
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

/// Takes the rows `first..first + slots.len()`, all at `time`, through frame group `g`,
/// answering each row; `slots` gives each row's key.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per run of rows, all hot"
)]
fn walk(
    keys: &mut [(u64, Vec<FrameRows>)],
    slots: &[u32],
    first: usize,
    g: usize,
    frame: OverFrame,
    time: i64,
    columns: &[&ColumnValues<'_>],
    outputs: &mut [&mut Output],
) {
    let rows = slots
        .iter()
        .enumerate()
        .map(|(i, &slot)| (first + i, slot as usize));
    match frame {
        OverFrame::Range { preceding } => {
            for (row, slot) in rows.clone() {
                keys[slot].1[g].push(time, columns, row);
            }
            let bound = time.saturating_sub(preceding);
            for (row, slot) in rows {
                let frame = &mut keys[slot].1[g];
                frame.evict_before(bound);
                frame.answer(outputs, row);
            }
        }
        OverFrame::Rows { preceding } => {
            for (row, slot) in rows {
                let frame = &mut keys[slot].1[g];
                frame.push(time, columns, row);
                frame.keep_last(preceding.saturating_add(1));
                frame.answer(outputs, row);
            }
        }
    }
}

/// Mutable references to `outputs[i]` for each `i` of `members` (distinct, ascending).
fn select_mut<'a>(outputs: &'a mut [Output], members: &[usize]) -> Vec<&'a mut Output> {
    outputs
        .iter_mut()
        .enumerate()
        .filter(|(i, _)| members.contains(i))
        .map(|(_, o)| o)
        .collect()
}

#[cfg(test)]
mod tests;
