//! Window aggregation on the GPU (tumbling, hopping, and sessions as buckets: `session.rs`),
//! state resident between micro-batches.
//!
//! Per micro-batch the host indexes windows and finds late rows while it writes the batch into
//! a mapped upload buffer (`batch_upload.rs`), then submits one round
//! of passes: `window_assign` (several times: an item that met a slot claimed in the same pass
//! retries in the next), `window_update`, `window_minmax_lo`, `distinct_insert`. It does not
//! wait: the round's counters are mapped asynchronously and checked before its buffers are
//! reused, two micro-batches later, so uploading batch n+1 overlaps computing batch n. Rare
//! leftovers (fingerprint collisions, a full table) get more rounds then. Only `fire` reads
//! back, and only when some open group's window can close.

pub(crate) mod batch_upload;
mod fire;
mod profile;
mod rebuild;
mod round;
mod session;
mod snapshot;

use batch_upload::Narrow;
use session::SessionMode;

use profile::Profile;

use rebuild::grown_capacity;
use round::BatchSlot;

use std::sync::Arc;
use std::time::Instant;

use super::buffers::{GroupTable, HashTable, PendingRead, read_back, staging, storage};
use super::device::GpuDevice;
use super::kernels::{AggDesc, PassParams, grid};
use super::plan::AccLayout;
use super::shaders::Kernel;
use super::upload::Staging;
use super::window_index::WindowIndex;
use super::{GpuContext, Tuning};
use crate::backend::{
    AggregateInput, ClosedWindows, ColumnValues, WindowAggregatePlan, WindowAggregator,
};
use crate::error::{Error, Result};

/// `window_assign` passes per round; a second pass resolves the usual deferrals (rows of a
/// group claimed in the same pass), more only follow fingerprint collisions.
const ASSIGN_PASSES: usize = 3;
/// `distinct_insert` passes per round (same reasoning).
const DISTINCT_PASSES: usize = 3;
/// Parameter blocks: a round (assign, update, lo, distinct), fire, rebuild, two remaps, two
/// settles and the two session passes.
const PARAM_BLOCKS: u64 = (ASSIGN_PASSES + 2 + DISTINCT_PASSES + 8) as u64;
const FIRE_BLOCK: u64 = PARAM_BLOCKS - 8;
const SETTLE_BLOCK: u64 = PARAM_BLOCKS - 4;
/// `session_fire` and `session_late`.
const SESSION_BLOCK: u64 = PARAM_BLOCKS - 2;
const LATE_BLOCK: u64 = PARAM_BLOCKS - 1;
/// Pass tags run from 2 to this; 1 marks settled entries, 0 empty ones.
const LAST_TAG: u32 = 255;
/// Words in `counters` (`COUNTERS` in `shaders/common.wgsl`) and their indices.
const COUNTERS: u64 = 8;
const C_OCCUPIED: usize = 0;
const C_UNRESOLVED: usize = 1;
const C_FULL: usize = 2;
const C_DOCCUPIED: usize = 3;
const C_DFULL: usize = 4;
const C_RANGE: usize = 5;
const C_OUT: usize = 6;
const C_LATE: usize = 7;
/// A round's status: the counters, then two GPU timestamps (profiling only).
const STATUS_BYTES: u64 = COUNTERS * 4 + 16;
/// Where a slot's timestamps resolve (resolve offsets must be multiples of 256).
const TIMESTAMP_STRIDE: u64 = 256;
/// Smallest tables; both grow by doubling.
const MIN_CAPACITY: u32 = 4096;
/// Slot numbers must fit the 28-bit field of an item's state (`SLOT_MASK`).
const MAX_CAPACITY: u32 = 1 << 27;
/// Rounds one micro-batch may take before the job fails instead of looping.
const MAX_ROUNDS: usize = 100_000;

/// GPU state of one tumbling or hopping window operator.
#[derive(Debug)]
pub struct GpuWindowAggregator {
    gpu: Arc<GpuContext>,
    plan: WindowAggregatePlan,
    layout: AccLayout,
    index: WindowIndex,
    tuning: Tuning,
    params: wgpu::Buffer,
    counters: wgpu::Buffer,
    counters_staging: wgpu::Buffer,
    groups: GroupTable,
    spare: Option<GroupTable>,
    distinct: Option<HashTable>,
    spare_distinct: Option<HashTable>,
    slot_map: wgpu::Buffer,
    out: wgpu::Buffer,
    out_staging: Option<wgpu::Buffer>,
    slots: [BatchSlot; 2],
    next_slot: usize,
    /// The last pass tag used (2..=255; 1 marks entries moved by a rebuild).
    tag: u32,
    fired_through: i64,
    first_open: i64,
    /// No open group has a window index below this (`i64::MAX`: no groups).
    lowest_window: i64,
    /// Group-table entries as of the last status read.
    occupied: u32,
    doccupied: u32,
    /// Bumped whenever a table is rebuilt or grown: a round's status from before says nothing
    /// about the tables now (and must not make them grow again).
    tables_generation: u64,
    /// Which batch columns are uploaded as 32-bit words.
    narrow: Narrow,
    /// Session windows: buckets of `gap` in the table (`None`: tumbling or hopping).
    session: Option<SessionMode>,
    /// Late rows `session_late` lists.
    late: wgpu::Buffer,
    /// Per slot, the row of the closing session it belongs to (`session_fire`).
    session_rows: wgpu::Buffer,
    /// The aggregate descriptors of every batch (ops and accumulator words), for passes that
    /// run without a batch.
    fire_aggs: wgpu::Buffer,
    /// Phase timings when `SLUICE_GPU_PROFILE` is set.
    profile: Option<Profile>,
    /// GPU timestamps of each slot's first round, when profiling on a device that has them.
    timestamps: Option<(wgpu::QuerySet, wgpu::Buffer)>,
}

impl GpuWindowAggregator {
    /// Empty state for `plan` (tumbling or hopping) on `gpu`.
    pub(crate) fn new(
        gpu: Arc<GpuContext>,
        plan: WindowAggregatePlan,
        tuning: Tuning,
    ) -> Result<Self> {
        let (mut session, plan) = match SessionMode::new(&plan) {
            Some((mode, buckets)) => (Some(mode), buckets),
            None => (None, plan),
        };
        let index = WindowIndex::new(plan.window)
            .ok_or_else(|| Error::Internal("unaligned window reached the GPU".into()))?;
        let layout = AccLayout::new(&plan.aggregates)?;
        if let Some(mode) = &mut session {
            mode.ts_at = layout.slots[mode.aggregates].acc_at;
        }
        let descs: Vec<AggDesc> = layout
            .slots
            .iter()
            .map(|slot| AggDesc {
                op: slot.op as u32,
                acc_at: slot.acc_at,
                ..AggDesc::default()
            })
            .collect();
        let fire_aggs = storage(
            &gpu.device,
            "aggregates",
            (descs.len() * std::mem::size_of::<AggDesc>()) as u64,
        );
        gpu.device
            .queue
            .write_buffer(&fire_aggs, 0, bytemuck::cast_slice(&descs));
        let device = &gpu.device;
        let capacity = MIN_CAPACITY;
        let groups = GroupTable::new(device, capacity, layout.stride, false);
        let distinct = layout
            .has_distinct()
            .then(|| HashTable::new(device, "distinct values", MIN_CAPACITY, false));
        let aggregates = plan.aggregates.len();
        let slots = [
            BatchSlot::new(&gpu, aggregates),
            BatchSlot::new(&gpu, aggregates),
        ];
        let profile = Profile::from_env();
        let timestamps = (profile.is_some() && device.timestamps).then(|| {
            let set = device.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("round timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 4,
            });
            let resolve = device.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("round timestamps"),
                size: 2 * TIMESTAMP_STRIDE,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (set, resolve)
        });
        let agg = GpuWindowAggregator {
            params: device.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("pass parameters"),
                size: PARAM_BLOCKS * gpu.kernels.params_stride,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            counters: storage(device, "counters", COUNTERS * 4),
            counters_staging: staging(device, "counters", COUNTERS * 4),
            slot_map: storage(device, "slot map", u64::from(capacity) * 4),
            out: storage(device, "closed groups", out_bytes(capacity, layout.stride)),
            out_staging: None,
            groups,
            spare: None,
            distinct,
            spare_distinct: None,
            slots,
            next_slot: 0,
            tag: 1,
            fired_through: i64::MIN,
            first_open: i64::MIN,
            lowest_window: i64::MAX,
            occupied: 0,
            tables_generation: 0,
            doccupied: 0,
            profile,
            timestamps,
            narrow: Narrow::new(plan.aggregates.len()),
            session,
            late: storage(device, "late rows", 16),
            session_rows: storage(device, "session rows", u64::from(capacity) * 4),
            fire_aggs,
            gpu,
            plan,
            layout,
            index,
            tuning,
        };
        Ok(agg)
    }

    fn device(&self) -> &GpuDevice {
        &self.gpu.device
    }

    /// The largest group table the device's binding limit allows for this layout: its
    /// accumulators and the rows `window_fire` writes must each fit one binding.
    fn max_groups(&self) -> u32 {
        largest_power_of_two(self.binding_limit() / (4 * u64::from(6 + self.layout.stride)))
    }

    /// The largest distinct-value table (five words per entry).
    fn max_distinct(&self) -> u32 {
        largest_power_of_two(self.binding_limit() / 20)
    }

    fn binding_limit(&self) -> u64 {
        self.gpu.device.limits.max_storage_buffer_binding_size
    }

    fn base_params(&self) -> PassParams {
        PassParams {
            mask: self.groups.keys.mask(),
            limit: self.groups.keys.limit,
            dmask: self.distinct.as_ref().map_or(0, HashTable::mask),
            dlimit: self.distinct.as_ref().map_or(0, |d| d.limit),
            hash_mode: self.tuning.hash_mode,
            min_open_lo: self.first_open as u64 as u32,
            min_open_hi: ((self.first_open as u64) >> 32) as u32,
            stride: self.layout.stride,
            n_aggs: self.layout.slots.len() as u32,
            ..PassParams::default()
        }
    }

    fn write_params(&self, block: u64, params: &PassParams) {
        self.device().queue.write_buffer(
            &self.params,
            block * self.gpu.kernels.params_stride,
            bytemuck::bytes_of(params),
        );
    }

    /// Zeroes counters `first..first + count` before the next submit's passes run.
    fn reset_counters(&self, first: usize, count: usize) {
        let zeros = vec![0u32; count];
        self.device().queue.write_buffer(
            &self.counters,
            (first * 4) as u64,
            bytemuck::cast_slice(&zeros),
        );
    }

    fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device()
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        kernel: Kernel,
        block: u64,
        storage: &[&wgpu::Buffer],
        invocations: u32,
    ) {
        let device = self.device();
        let group = self
            .gpu
            .kernels
            .bind(&device.device, kernel, &self.params, storage);
        let offset = (block * self.gpu.kernels.params_stride) as u32;
        let (x, y) = grid(
            invocations,
            device.limits.max_compute_workgroups_per_dimension,
        );
        let Some(pipeline) = self.gpu.kernels.pipeline(kernel) else {
            // Callers only pick kernels the device runs (`native_u64` guards the 64-bit one).
            return;
        };
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &group, &[offset]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Which columns are uploaded narrow now (tests of the fallback).
    #[cfg(test)]
    pub(crate) fn narrow_columns(&self) -> &Narrow {
        &self.narrow
    }

    /// Slots of the group table now (tests of growth).
    #[cfg(test)]
    pub(crate) fn group_capacity(&self) -> u32 {
        self.groups.keys.capacity
    }
}

fn largest_power_of_two(n: u64) -> u32 {
    let n = n.clamp(1, u64::from(MAX_CAPACITY));
    1 << (63 - n.leading_zeros())
}

/// Bytes of `out` for a table of `capacity`: a closed window's row is its four key words and
/// its accumulators, a session's six (key, start, end) and its accumulators.
fn out_bytes(capacity: u32, stride: u32) -> u64 {
    u64::from(capacity) * u64::from(6 + stride) * 4
}

impl WindowAggregator for GpuWindowAggregator {
    fn accumulate(&mut self, input: &AggregateInput<'_>) -> Result<Vec<u32>> {
        if let Some(mode) = self.session {
            return self.accumulate_sessions(mode, input);
        }
        input.check(&self.plan)?;
        if input.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(p) = &mut self.profile {
            p.rows += input.len() as u64;
        }
        let chunk = self.chunk_rows(input);
        let mut late = Vec::new();
        let mut start = 0;
        while start < input.len() {
            let end = (start + chunk).min(input.len());
            let s = self.next_slot;
            let begin = Instant::now();
            self.drain(s)?;
            profile::add(&mut self.profile, begin, |p| &mut p.drain);
            let begin = Instant::now();
            let (chunk_late, lowest) = self.submit_chunk(s, input, start..end)?;
            profile::add(&mut self.profile, begin, |p| &mut p.submit);
            self.lowest_window = self.lowest_window.min(lowest);
            late.extend(chunk_late);
            self.next_slot ^= 1;
            start = end;
        }
        Ok(late)
    }

    fn fire(&mut self, watermark: i64) -> Result<ClosedWindows> {
        if self.session.is_some() {
            return self.fire_sessions(watermark);
        }
        if watermark <= self.fired_through {
            return Ok(ClosedWindows::default());
        }
        self.fired_through = watermark;
        let first_open = self.index.first_open(watermark);
        let closes = first_open > self.lowest_window;
        self.first_open = first_open;
        if !closes {
            return Ok(ClosedWindows::default());
        }
        let begin = Instant::now();
        let closed = self.fire_closing(first_open);
        profile::add(&mut self.profile, begin, |p| &mut p.fire);
        if let Some(p) = &mut self.profile {
            p.fires += 1;
        }
        closed
    }

    fn open_groups(&self) -> usize {
        self.occupied as usize
    }

    fn snapshot(&mut self) -> Result<crate::state::StateSnapshot> {
        self.take_snapshot()
    }

    fn restore(&mut self, state: &crate::state::StateSnapshot) -> Result<()> {
        self.load_snapshot(state)
    }
}
