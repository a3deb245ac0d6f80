//! The `Backend` trait: where window aggregation math runs (CPU with Rayon, GPU with wgpu).
//!
//! The window operator encodes keys to `u64` ids and widens aggregate inputs to i64 or f64;
//! a backend keeps the (key, window) → accumulators state between micro-batches and hands back
//! the rows of windows that closed. Every backend must give the same answers as [`CpuBackend`],
//! which is the reference.

pub mod cpu;
#[cfg(feature = "gpu")]
pub mod gpu;
mod join_buffer;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
pub(crate) mod test_support;

use std::fmt::Debug;

use arrow::array::ArrayRef;
use arrow::buffer::NullBuffer;

pub use cpu::CpuBackend;
#[cfg(feature = "gpu")]
pub use gpu::GpuBackend;
pub use join_buffer::{BufferMatches, JoinBuffer, JoinProbe};

use crate::aggregate::{AggregateFunction, NumericKind};
use crate::error::Result;
use crate::frame::OverFrame;
use crate::state::StateSnapshot;
use crate::window::WindowSpec;

/// Runs the columnar math of window operators.
pub trait Backend: Send + Sync + Debug {
    /// A short name shown in logs and run summaries (`cpu`, `gpu`).
    fn name(&self) -> &'static str;

    /// Creates the state of one window operator.
    fn window_aggregator(&self, plan: &WindowAggregatePlan) -> Result<Box<dyn WindowAggregator>>;

    /// The backend and its device, for logs and reports (`cpu`, `gpu: <adapter>`).
    fn describe(&self) -> String {
        self.name().to_string()
    }

    /// Where `plan` runs, for logs and summaries (`cpu`, `gpu: <adapter>`, or a fallback and
    /// its reason).
    fn placement(&self, plan: &WindowAggregatePlan) -> String {
        let _ = plan;
        self.name().to_string()
    }

    /// Indexes the build side of a lookup join: row `i` has key id `ids[i]`, and takes part
    /// only where `valid[i]` (a null key never matches). The CPU index is the reference.
    fn lookup_index(&self, ids: &[u64], valid: &[bool]) -> Result<Box<dyn LookupIndex>> {
        Ok(Box::new(cpu::CpuLookupIndex::build(ids, valid)))
    }

    /// Where lookup joins run, for logs and summaries.
    fn lookup_placement(&self) -> String {
        "cpu".to_string()
    }

    /// Creates one side's buffer of a stream join (interval or window join). `granularity`
    /// (ms) is the width of the time ranges the join probes: a hint for bucketing by time.
    fn join_buffer(&self, granularity: i64) -> Result<Box<dyn JoinBuffer>> {
        Ok(Box::new(cpu::CpuJoinBuffer::new(granularity, None)))
    }

    /// Where stream joins run, for logs and summaries.
    fn join_placement(&self) -> String {
        "cpu".to_string()
    }

    /// Creates the per-key frames of one OVER operator.
    fn over_aggregator(&self, plan: &OverAggregatePlan) -> Result<Box<dyn OverAggregator>> {
        Ok(Box::new(cpu::CpuOverAggregator::new(plan.clone())))
    }

    /// Where OVER aggregations run, for logs and summaries.
    fn over_placement(&self) -> String {
        "cpu".to_string()
    }
}

/// The build side of a lookup join, indexed by key id.
pub trait LookupIndex: Send + Sync + Debug {
    /// Every (probe row, build row) pair with equal ids, in probe-row order and, per probe
    /// row, in build-row order; a probe row takes part only where `valid`. With `outer`, a
    /// probe row without a match appears once with no build row (a left outer join).
    fn probe(&self, ids: &[u64], valid: &[bool], outer: bool) -> Result<JoinMatches>;

    /// Build rows indexed (those with a valid key).
    fn build_rows(&self) -> usize;
}

/// A join's build rows grouped by key id: `rows` holds the valid rows sorted by (id, row), and
/// `keys` each distinct id with its range in `rows` (first, count). Both backends' indexes
/// start from this, so their matches come in the same order.
#[derive(Debug, Default)]
pub(crate) struct BuildGroups {
    pub keys: Vec<(u64, u32, u32)>,
    pub rows: Vec<u32>,
}

impl BuildGroups {
    /// Groups the rows whose `valid` is true by `ids`.
    pub(crate) fn new(ids: &[u64], valid: &[bool]) -> Self {
        let mut pairs: Vec<(u64, u32)> = ids
            .iter()
            .zip(valid)
            .enumerate()
            .filter(|(_, (_, ok))| **ok)
            .map(|(row, (&id, _))| (id, row as u32))
            .collect();
        pairs.sort_unstable();
        let mut keys = Vec::new();
        let mut start = 0;
        while start < pairs.len() {
            let id = pairs[start].0;
            let len = pairs[start..].partition_point(|p| p.0 == id);
            keys.push((id, start as u32, len as u32));
            start += len;
        }
        BuildGroups {
            keys,
            rows: pairs.into_iter().map(|(_, row)| row).collect(),
        }
    }
}

/// The pairs a join probe found: `probe[i]` joins `build[i]` (`None`: unmatched, outer join).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JoinMatches {
    /// Probe (stream) row per output row.
    pub probe: Vec<u32>,
    /// Build (table) row per output row.
    pub build: Vec<Option<u32>>,
}

/// What a window aggregator computes: the windows and, per aggregate, its input domain.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowAggregatePlan {
    /// Which windows rows belong to.
    pub window: WindowSpec,
    /// One entry per output aggregate, in output order.
    pub aggregates: Vec<AggregatePlan>,
}

/// One aggregate: the function and the domain of its input (`None` for `count(*)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatePlan {
    /// The function.
    pub function: AggregateFunction,
    /// The input's domain; `None` means no input column (`count(*)`).
    pub input: Option<NumericKind>,
}

/// What an OVER aggregator computes: per output aggregate, its function, input domain and
/// frame. Aggregates with equal frames share the frame's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct OverAggregatePlan {
    /// One entry per output aggregate, in output order.
    pub aggregates: Vec<(AggregatePlan, OverFrame)>,
}

impl OverAggregatePlan {
    /// The distinct frames, in order of first use; aggregate `i` uses frame `frame_of(i)`.
    pub fn frames(&self) -> Vec<OverFrame> {
        let mut frames: Vec<OverFrame> = Vec::new();
        for (_, frame) in &self.aggregates {
            if !frames.contains(frame) {
                frames.push(*frame);
            }
        }
        frames
    }
}

/// The per-key frames of one OVER operator, on one backend.
///
/// Contract: `aggregate` gets rows in emission order, ascending time and arrival order among
/// equal times, none earlier than any row given in an earlier call (the operator releases
/// rows as the watermark passes them, so every later row is later); a call breaking that is
/// refused. It returns,
/// per aggregate of the plan, one value per row over the rows of the row's key in its frame:
/// for `RANGE`, every row given so far (this call included) whose time is in `[t - preceding,
/// t]`, ties after the row too; for `ROWS`, the row and the `preceding` rows before it.
pub trait OverAggregator: Send + Debug {
    /// Adds rows in emission order and returns their aggregates (one array per aggregate).
    fn aggregate(&mut self, input: &AggregateInput<'_>) -> Result<Vec<ArrayRef>>;

    /// Forgets what no row at `watermark` or later can see (rows older than every RANGE
    /// frame, keys with nothing left).
    fn expire(&mut self, watermark: i64);

    /// Keys with state now.
    fn keys(&self) -> usize;

    /// Copies the state out between micro-batches, for a checkpoint.
    fn snapshot(&mut self) -> Result<StateSnapshot>;

    /// Loads `state`, a snapshot this backend took for the same plan, into this fresh
    /// aggregator.
    fn restore(&mut self, state: &StateSnapshot) -> Result<()>;
}

/// The window state of one operator, on one backend.
///
/// Contract: `accumulate` adds every row to each of its windows that has not fired yet;
/// `fire(w)` removes and returns every window with `end <= w`. A row none of whose windows
/// is still open is late: it changes nothing and its index is returned.
pub trait WindowAggregator: Send + Debug {
    /// Adds a micro-batch. Returns the indices of late rows, ascending.
    fn accumulate(&mut self, input: &AggregateInput<'_>) -> Result<Vec<u32>>;

    /// Closes every window whose end is at or before `watermark` and returns their rows in
    /// any order (the operator sorts them).
    fn fire(&mut self, watermark: i64) -> Result<ClosedWindows>;

    /// How many (key, window) groups are open now.
    fn open_groups(&self) -> usize;

    /// Copies the state out between micro-batches, for a checkpoint (a GPU backend reads it
    /// back from the device; the state itself stays where it is).
    fn snapshot(&mut self) -> Result<StateSnapshot>;

    /// Loads `state`, a snapshot this backend took for the same plan, into this fresh
    /// aggregator (nothing accumulated yet). Fails, naming the format, for state written by
    /// another backend.
    fn restore(&mut self, state: &StateSnapshot) -> Result<()>;
}

/// One micro-batch as a backend sees it: key ids, event times and aggregate inputs.
#[derive(Debug, Clone, Copy)]
pub struct AggregateInput<'a> {
    /// Key id per row.
    pub keys: &'a [u64],
    /// Event time per row, epoch ms.
    pub ts: &'a [i64],
    /// One entry per aggregate of the plan, in the same order.
    pub columns: &'a [ColumnValues<'a>],
}

impl AggregateInput<'_> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Fails unless every row has a time and every aggregate of `plan` a column.
    pub fn check(&self, plan: &WindowAggregatePlan) -> Result<()> {
        if self.keys.len() != self.ts.len() || self.columns.len() != plan.aggregates.len() {
            return Err(crate::error::Error::Internal(
                "aggregate input columns do not match the plan".into(),
            ));
        }
        Ok(())
    }
}

/// The values of one aggregate's input column, widened.
#[derive(Debug, Clone, Copy)]
pub enum ColumnValues<'a> {
    /// No column (`count(*)`).
    Rows,
    /// Integer values with their validity.
    Int(&'a [i64], Option<&'a NullBuffer>),
    /// Float values with their validity.
    Float(&'a [f64], Option<&'a NullBuffer>),
}

/// The rows of closed windows, column by column; row `i` of every field belongs together.
#[derive(Debug, Default)]
pub struct ClosedWindows {
    /// Key id per row.
    pub keys: Vec<u64>,
    /// Window start per row (epoch ms).
    pub starts: Vec<i64>,
    /// Window end per row (epoch ms, exclusive).
    pub ends: Vec<i64>,
    /// One array per aggregate, in plan order.
    pub aggregates: Vec<ArrayRef>,
}

impl ClosedWindows {
    /// Number of closed (key, window) rows.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether nothing closed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
