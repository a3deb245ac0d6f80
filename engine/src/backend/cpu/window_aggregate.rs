//! Tumbling and hopping window aggregation on the CPU.
//!
//! Each Rayon thread owns the keys that hash to its partition and scans the whole batch,
//! skipping other keys (cheaper on a few cores than scattering rows first). A partition keeps
//! one key table per open window, so firing a window drops its table whole: no tombstones.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::accumulators::Accumulators;
use super::in_pool;
use super::partition::{BuildKeyHasher, partition_of};
use super::state::{GroupsIn, GroupsOut};
use crate::backend::{AggregateInput, ClosedWindows, WindowAggregatePlan, WindowAggregator};
use crate::error::{Error, Result};
use crate::state::StateSnapshot;
use crate::window::WindowStarts;

/// Aligned-window state for one operator.
#[derive(Debug)]
pub struct CpuWindowAggregator {
    plan: WindowAggregatePlan,
    size: i64,
    partitions: Vec<Partition>,
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Every window ending at or before this has fired.
    fired_through: i64,
}

/// The windows of the keys one thread owns.
#[derive(Debug)]
struct Partition {
    index: usize,
    /// Open windows, in no particular order (usually few: about delay / slide + size / slide).
    windows: Vec<WindowGroups>,
    /// Window start → index in `windows`, so a lookup stays O(1) when many windows are open
    /// (a long watermark delay over short windows).
    by_start: HashMap<i64, usize, BuildKeyHasher>,
    late: Vec<u32>,
}

/// The groups of one window in one partition.
#[derive(Debug)]
struct WindowGroups {
    start: i64,
    slots: HashMap<u64, u32, BuildKeyHasher>,
    keys: Vec<u64>,
    accumulators: Accumulators,
    /// Rows of the current batch and their slots, filled in phase one.
    batch_rows: Vec<u32>,
    batch_slots: Vec<u32>,
}

impl CpuWindowAggregator {
    /// Empty state for `plan` with `partitions` partitions.
    pub fn new(
        plan: WindowAggregatePlan,
        partitions: usize,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Self {
        let size = plan.window.size().unwrap_or(1);
        let partitions = (0..partitions.max(1))
            .map(|index| Partition {
                index,
                windows: Vec::new(),
                by_start: HashMap::default(),
                late: Vec::new(),
            })
            .collect();
        CpuWindowAggregator {
            plan,
            size,
            partitions,
            pool,
            fired_through: i64::MIN,
        }
    }
}

impl Partition {
    fn accumulate(
        &mut self,
        plan: &WindowAggregatePlan,
        size: i64,
        count: usize,
        fired_through: i64,
        input: &AggregateInput<'_>,
    ) -> Result<()> {
        self.late.clear();
        let mut cached = usize::MAX;
        let slide = plan.window.slide().unwrap_or(size);
        // Rows arrive nearly in time order: remember the slide-aligned range of the previous
        // row so most rows skip the division in `last_start`.
        let (mut pane_start, mut pane_end) = (i64::MAX, i64::MIN);
        for (row, (&key, &ts)) in input.keys.iter().zip(input.ts).enumerate() {
            if count > 1 && partition_of(key, count) != self.index {
                continue;
            }
            let mut placed = false;
            if ts < pane_start || ts >= pane_end {
                // No window of `ts` fits an i64 (only outside the valid event-time range, which
                // ingestion rejects): late rather than wrapped into a wrong window.
                let Some(start) = plan.window.last_start(ts) else {
                    self.late.push(row as u32);
                    continue;
                };
                pane_start = start;
                pane_end = pane_start.saturating_add(slide);
            }
            for start in WindowStarts::new(pane_start, ts, size, slide) {
                // A window that ended at or before the fired watermark is gone: skip it.
                if start.saturating_add(size) > fired_through {
                    let w = self.window_for(start, &plan.aggregates, &mut cached);
                    let window = &mut self.windows[w];
                    let next = window.keys.len() as u32;
                    let slot = *window.slots.entry(key).or_insert(next);
                    if slot == next {
                        window.keys.push(key);
                        window.accumulators.push_slot();
                    }
                    window.batch_rows.push(row as u32);
                    window.batch_slots.push(slot);
                    placed = true;
                }
            }
            if !placed {
                self.late.push(row as u32);
            }
        }
        for window in &mut self.windows {
            if !window.batch_rows.is_empty() {
                window.accumulators.update(
                    &window.batch_rows,
                    &window.batch_slots,
                    input.columns,
                )?;
                window.batch_rows.clear();
                window.batch_slots.clear();
            }
        }
        Ok(())
    }

    /// The index in `windows` of the window starting at `start`, created if new.
    #[inline]
    fn window_for(
        &mut self,
        start: i64,
        plan: &[crate::backend::AggregatePlan],
        cached: &mut usize,
    ) -> usize {
        if let Some(w) = self.windows.get(*cached)
            && w.start == start
        {
            return *cached;
        }
        let found = self.by_start.get(&start).copied();
        let index = found.unwrap_or_else(|| {
            self.windows.push(WindowGroups {
                start,
                slots: HashMap::default(),
                keys: Vec::new(),
                accumulators: Accumulators::new(plan),
                batch_rows: Vec::new(),
                batch_slots: Vec::new(),
            });
            self.by_start.insert(start, self.windows.len() - 1);
            self.windows.len() - 1
        });
        *cached = index;
        index
    }
}

impl WindowAggregator for CpuWindowAggregator {
    fn accumulate(&mut self, input: &AggregateInput<'_>) -> Result<Vec<u32>> {
        input.check(&self.plan)?;
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let (plan, size, fired) = (&self.plan, self.size, self.fired_through);
        let count = self.partitions.len();
        let partitions = &mut self.partitions;
        in_pool(&self.pool, || {
            partitions
                .par_iter_mut()
                .try_for_each(|p| p.accumulate(plan, size, count, fired, input))
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
        let size = self.size;
        let mut closed = ClosedWindows::default();
        let mut parts: Vec<Vec<arrow::array::ArrayRef>> = Vec::new();
        for partition in &mut self.partitions {
            let mut i = 0;
            while i < partition.windows.len() {
                if partition.windows[i].start.saturating_add(size) <= watermark {
                    let window = partition.windows.swap_remove(i);
                    partition.by_start.remove(&window.start);
                    if let Some(moved) = partition.windows.get(i) {
                        partition.by_start.insert(moved.start, i);
                    }
                    let slots: Vec<u32> = (0..window.keys.len() as u32).collect();
                    closed
                        .starts
                        .extend(std::iter::repeat_n(window.start, window.keys.len()));
                    closed
                        .ends
                        .extend(std::iter::repeat_n(window.start + size, window.keys.len()));
                    closed.keys.extend_from_slice(&window.keys);
                    parts.push(window.accumulators.finish(&slots));
                } else {
                    i += 1;
                }
            }
        }
        closed.aggregates = concat_columns(parts, self.plan.aggregates.len())?;
        Ok(closed)
    }

    fn open_groups(&self) -> usize {
        self.partitions
            .iter()
            .flat_map(|p| &p.windows)
            .map(|w| w.keys.len())
            .sum()
    }

    fn snapshot(&mut self) -> Result<StateSnapshot> {
        let mut out = GroupsOut::default();
        for window in self.partitions.iter().flat_map(|p| &p.windows) {
            let n = window.keys.len();
            out.keys.extend_from_slice(&window.keys);
            out.starts.extend(std::iter::repeat_n(window.start, n));
            out.ends.extend(std::iter::repeat_n(
                window.start.saturating_add(self.size),
                n,
            ));
            let slots: Vec<u32> = (0..n as u32).collect();
            out.parts.push(window.accumulators.state_columns(&slots));
        }
        out.into_snapshot(STATE_FORMAT, &self.plan, self.fired_through)
    }

    fn restore(&mut self, state: &StateSnapshot) -> Result<()> {
        let (groups, meta) = GroupsIn::read(state, STATE_FORMAT, &self.plan)?;
        let count = self.partitions.len();
        for (row, (&key, &start)) in groups.keys.iter().zip(groups.starts).enumerate() {
            let partition = &mut self.partitions[partition_of(key, count)];
            let mut cached = usize::MAX;
            let w = partition.window_for(start, &self.plan.aggregates, &mut cached);
            let window = &mut partition.windows[w];
            let slot = window.accumulators.push_state(&groups.accumulators, row);
            window.slots.insert(key, slot);
            window.keys.push(key);
        }
        self.fired_through = meta.fired_through;
        Ok(())
    }
}

/// The layout of this aggregator's checkpoint state (`cpu/state.rs`).
const STATE_FORMAT: &str = "cpu-window/1";

/// Concatenates per-window aggregate arrays column-wise; `columns` says how many there are.
pub(super) fn concat_columns(
    parts: Vec<Vec<arrow::array::ArrayRef>>,
    columns: usize,
) -> Result<Vec<arrow::array::ArrayRef>> {
    (0..columns)
        .map(|c| {
            let arrays: Vec<&dyn arrow::array::Array> =
                parts.iter().map(|p| p[c].as_ref()).collect();
            if arrays.is_empty() {
                return Ok(arrow::array::new_empty_array(
                    &arrow::datatypes::DataType::Int64,
                ));
            }
            arrow::compute::concat(&arrays).map_err(Error::arrow("collecting closed windows"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggregateFunction;
    use crate::backend::{AggregatePlan, ColumnValues};
    use crate::window::WindowSpec;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    fn aggregator(window: WindowSpec, partitions: usize) -> CpuWindowAggregator {
        let plan = WindowAggregatePlan {
            window,
            aggregates: vec![AggregatePlan {
                function: AggregateFunction::Count,
                input: None,
            }],
        };
        CpuWindowAggregator::new(plan, partitions, None)
    }

    fn add(agg: &mut CpuWindowAggregator, keys: &[u64], ts: &[i64]) -> Vec<u32> {
        let columns = [ColumnValues::Rows];
        agg.accumulate(&AggregateInput {
            keys,
            ts,
            columns: &columns,
        })
        .expect("accumulate")
    }

    fn rows(closed: &ClosedWindows) -> Vec<(u64, i64, i64, i64)> {
        let counts = closed.aggregates[0].as_primitive::<Int64Type>();
        let mut out: Vec<_> = (0..closed.len())
            .map(|i| {
                (
                    closed.keys[i],
                    closed.starts[i],
                    closed.ends[i],
                    counts.value(i),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_hopping_event_joins_the_windows_still_open_and_is_not_late() {
        let mut agg = aggregator(
            WindowSpec::Hopping {
                size: 2_000,
                slide: 1_000,
                offset: 0,
            },
            2,
        );
        assert!(add(&mut agg, &[7], &[500]).is_empty());
        assert_eq!(
            rows(&agg.fire(1_000).expect("fire")),
            vec![(7, -1_000, 1_000, 1)]
        );
        // [-1000, 1000) has fired; [0, 2000) is open: the event counts there and is not late.
        assert!(add(&mut agg, &[7], &[600]).is_empty());
        assert_eq!(
            rows(&agg.fire(2_000).expect("fire")),
            vec![(7, 0, 2_000, 2)]
        );
        // Now every window of ts 600 has fired: late.
        assert_eq!(add(&mut agg, &[7, 8], &[600, 5_000]), vec![0]);
    }

    #[test]
    fn empty_batches_and_many_open_windows() {
        let mut agg = aggregator(
            WindowSpec::Tumbling {
                size: 10,
                offset: 0,
            },
            3,
        );
        assert!(add(&mut agg, &[], &[]).is_empty());
        let keys: Vec<u64> = (0..5_000).map(|i| i % 7).collect();
        let ts: Vec<i64> = (0..5_000).rev().collect();
        assert!(add(&mut agg, &keys, &ts).is_empty());
        assert_eq!(agg.open_groups(), 500 * 7);
        let closed = agg.fire(2_500).expect("fire");
        assert_eq!(closed.len(), 250 * 7);
        let total: i64 = closed.aggregates[0]
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .sum();
        assert_eq!(total, 2_500);
        assert_eq!(agg.open_groups(), 250 * 7);
        assert!(
            agg.fire(2_000).expect("fire again").is_empty(),
            "an older watermark fires nothing"
        );
    }
}
