//! OVER aggregation on the CPU: per key, running aggregates over trailing frames, keys spread
//! over shards that run on the backend's threads.
//!
//! A call's rows arrive in time order. Each row goes to its key's shard (a hash of the key),
//! and each shard takes its rows in that order: a RANGE frame drops the rows older than its
//! reach from one history shared by the shard's keys (rows leave in time order whatever their
//! key), takes in every row of a timestamp, then answers them (ties see each other); a ROWS
//! frame answers row by row from the key's own last rows. The state rows hit at random is
//! only each key's running aggregates, small enough to stay in cache; the histories are read
//! and written in order. Shards answer into their own columns, merged back into row order.

mod by_key;
mod checkpoint;
mod history;
mod output;
mod running;
mod shard;

use std::sync::Arc;

use arrow::array::ArrayRef;
use rayon::prelude::*;

use self::by_key::Picked;
use self::output::Output;
use self::shard::{Accs, Group, Member, Shard};
use super::in_pool;
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::{AggregateInput, AggregatePlan, OverAggregatePlan, OverAggregator};
use crate::error::{Error, Result};
use crate::state::StateSnapshot;

/// The frames of one OVER operator, on the CPU.
#[derive(Debug)]
pub struct CpuOverAggregator {
    plan: OverAggregatePlan,
    /// The distinct frames and their aggregates.
    groups: Vec<Group>,
    /// Keys by `shard_of(key)`.
    shards: Vec<Shard>,
    /// Where the shards of a large call run (`None`: Rayon's global threads).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// The latest time given: rows must not go back before it.
    latest: i64,
}

/// Calls with fewer rows run their shards one after another on the calling thread.
const PARALLEL_ROWS: usize = 16 * 1024;

/// More shards than this would not pay for their merge.
const MAX_SHARDS: usize = 64;

impl CpuOverAggregator {
    /// Empty frames for `plan`, in as many shards as Rayon's global pool has threads.
    pub fn new(plan: OverAggregatePlan) -> Self {
        let groups: Vec<Group> = plan
            .frames()
            .into_iter()
            .map(|frame| {
                let mut kept = 0;
                let members = (0..plan.aggregates.len())
                    .filter(|&i| plan.aggregates[i].1 == frame)
                    .map(|i| {
                        let aggregate = &plan.aggregates[i].0;
                        let function = aggregate.function;
                        let sums =
                            matches!(function, AggregateFunction::Sum | AggregateFunction::Avg);
                        let keeps = sums && aggregate.input.is_some() && !frame.is_unbounded();
                        let member = Member {
                            aggregate: i,
                            function,
                            kept: keeps.then_some(kept),
                            counts_nulls: aggregate.input.is_some()
                                && !matches!(
                                    function,
                                    AggregateFunction::Min | AggregateFunction::Max
                                ),
                        };
                        kept += usize::from(keeps);
                        member
                    })
                    .collect();
                Group {
                    frame,
                    members,
                    kept,
                }
            })
            .collect();
        let mut aggregator = CpuOverAggregator {
            plan,
            groups,
            shards: Vec::new(),
            pool: None,
            latest: i64::MIN,
        };
        aggregator.shards = aggregator.empty_shards(rayon::current_num_threads());
        aggregator
    }

    /// Runs large calls on `pool` instead of Rayon's global threads (as many shards as it
    /// has threads). Call before any rows.
    pub fn with_pool(mut self, pool: Option<Arc<rayon::ThreadPool>>) -> Self {
        let threads = pool
            .as_ref()
            .map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
        self.pool = pool;
        self.shards = self.empty_shards(threads);
        self
    }

    fn empty_shards(&self, count: usize) -> Vec<Shard> {
        let accs: Vec<Accs> = self
            .plan
            .aggregates
            .iter()
            .map(|(aggregate, _)| match aggregate.input {
                None => Accs::Rows,
                Some(NumericKind::Int) => Accs::Int(Vec::new()),
                Some(NumericKind::Float) => Accs::Float(Vec::new()),
            })
            .collect();
        let shard = Shard::new(&self.groups, accs);
        vec![shard; count.clamp(1, MAX_SHARDS)]
    }

    /// The shard that keeps `key`.
    fn shard_of(&self, key: u64) -> usize {
        shard_of(key, self.shards.len())
    }
}

/// The shard of `key` among `shards`: the high bits of a multiplicative hash (key ids of
/// integer keys are the integers themselves, often consecutive).
fn shard_of(key: u64, shards: usize) -> usize {
    let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    ((mixed * shards as u64) >> 32) as usize
}

impl OverAggregator for CpuOverAggregator {
    fn aggregate(&mut self, input: &AggregateInput<'_>) -> Result<Vec<ArrayRef>> {
        if input.keys.len() != input.ts.len() || input.columns.len() != self.plan.aggregates.len() {
            return Err(Error::Internal(
                "OVER input columns do not match the plan".into(),
            ));
        }
        let rows = input.len();
        if rows == 0 {
            return Ok(self
                .plan
                .aggregates
                .iter()
                .map(|(aggregate, _)| Output::new(integer_output(aggregate), 0).finish())
                .collect());
        }
        // The shared RANGE histories drop rows from the front in time order: a row earlier
        // than one given before would be dropped late.
        let in_order = input.ts.first().is_some_and(|&t| t >= self.latest) && input.ts.is_sorted();
        if !in_order {
            return Err(Error::Internal(
                "OVER rows must come in time order, no earlier than the rows before them".into(),
            ));
        }
        self.latest = input.ts[rows - 1];
        let fresh = |count: usize| -> Vec<Output> {
            self.plan
                .aggregates
                .iter()
                .map(|(aggregate, _)| Output::new(integer_output(aggregate), count))
                .collect()
        };
        let outputs = if self.shards.len() == 1 {
            let mut outputs = fresh(rows);
            self.shards[0].run(
                &self.groups,
                Picked::Span {
                    first: 0,
                    len: rows,
                },
                input,
                &mut outputs,
            );
            outputs
        } else {
            let shard_of: Vec<u8> = input.keys.iter().map(|&k| self.shard_of(k) as u8).collect();
            let mut picked: Vec<Vec<u32>> = vec![Vec::new(); self.shards.len()];
            for (row, &s) in shard_of.iter().enumerate() {
                picked[s as usize].push(row as u32);
            }
            let mut parts: Vec<Vec<Output>> = picked.iter().map(|p| fresh(p.len())).collect();
            let groups = &self.groups;
            let work = self.shards.iter_mut().zip(&picked).zip(&mut parts);
            let run = |((shard, picked), outputs): ((&mut Shard, &Vec<u32>), &mut Vec<Output>)| {
                shard.run(groups, Picked::Some(picked), input, outputs);
            };
            if rows >= PARALLEL_ROWS {
                let work: Vec<_> = work.collect();
                in_pool(&self.pool, || work.into_par_iter().for_each(run));
            } else {
                work.for_each(run);
            }
            let columns = self.plan.aggregates.len();
            let mut by_aggregate: Vec<Vec<Output>> = (0..columns).map(|_| Vec::new()).collect();
            for part in parts {
                for (a, output) in part.into_iter().enumerate() {
                    by_aggregate[a].push(output);
                }
            }
            let merge = |parts: Vec<Output>| Output::merge(&parts, &shard_of);
            if rows >= PARALLEL_ROWS {
                in_pool(&self.pool, || {
                    by_aggregate.into_par_iter().map(merge).collect()
                })
            } else {
                by_aggregate.into_iter().map(merge).collect()
            }
        };
        Ok(outputs.into_iter().map(Output::finish).collect())
    }

    fn expire(&mut self, watermark: i64) {
        let groups = &self.groups;
        for shard in &mut self.shards {
            shard.expire(groups, watermark);
        }
    }

    fn keys(&self) -> usize {
        self.shards.iter().map(Shard::len).sum()
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

#[cfg(test)]
mod tests;
