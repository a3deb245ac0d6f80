//! One side of a stream join on the GPU: buffered rows in a slab of slots resident on the
//! device, chained per key from newest to oldest, found through a key index built on the
//! device (`shaders/join_buffer_*.wgsl`).
//!
//! A row's slot holds its event time, its handle and the slot of its key's next older row, so
//! a chain lists a key's rows in descending handle order and a probe can write each probe
//! row's matches in ascending handle order, the CPU buffer's order, without sorting. Per
//! insert the host uploads the new rows' event times and, per distinct key of the batch, its
//! first and last row (it groups the batch, which it has in hand); `join_buffer_insert` fills
//! the slots and `join_buffer_link` hangs each key's batch rows on its chain. Expiry unlinks
//! expired rows per chain (`join_buffer_expire`) and pushes their slots on a free stack that
//! later inserts take from, so memory follows the rows held, whatever order their event times
//! come in.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use super::buffers::{read_back, staging, storage};
use super::kernels::{PassParams, grid};
use super::shaders::Kernel;
use super::{GpuContext, Tuning};
use crate::backend::{BufferMatches, JoinBuffer, JoinProbe};
use crate::error::{Error, Result};

/// Bytes per slot of the slab (`ENTRY` words in `shaders/join_buffer.wgsl`).
const ENTRY_BYTES: u64 = 20;
/// Bytes per index slot: its state word and `KEY` key words.
const KEY_BYTES: u64 = 16;
/// Words of the counters buffer (`J_*` in `shaders/join_buffer.wgsl`).
const COUNTERS: usize = 8;
const J_CLAIMED: usize = 0;
const J_LIVE: usize = 1;
const J_KEYS: usize = 2;
const J_FREED: usize = 3;
const J_MATCHES: usize = 4;
/// The first tag of `join_buffer_link` (0 is an empty index slot, 1 a rehashed key).
const FIRST_TAG: u32 = 2;
const FIRST_SLOTS: u32 = 1024;
const FIRST_KEYS: u32 = 64;
const FIRST_PLACES: u64 = 1024;
/// Expiry unlinks once the buffer holds twice the rows the last unlinking kept plus this
/// many: each unlinking walks every chain, so it waits until it can free about half the slab
/// (at most one walk per row inserted, amortised).
const UNLINK_SLACK: usize = 4096;

/// A stream join side's rows on the GPU.
#[derive(Debug)]
pub(crate) struct GpuJoinBuffer {
    gpu: Arc<GpuContext>,
    hash_mode: u32,
    max_chunk_rows: usize,
    slab: Slab,
    index: Index,
    /// `J_*` words; `J_CLAIMED` counts across calls, the others are zeroed by their pass's call.
    counters: wgpu::Buffer,
    counters_read: wgpu::Buffer,
    /// One `Pass` block, rewritten before each submission.
    params: wgpu::Buffer,
    /// Per-call buffers, grown when a call needs more.
    uploads: Scratch,
    keys: Scratch,
    slots: Scratch,
    found: Scratch,
    found_read: Scratch,
    matches: Scratch,
    matches_read: Scratch,
    next: u64,
    /// The highest expiry bound so far.
    bound: i64,
    /// The bound of the last unlinking, and the rows it kept.
    unlinked_at: i64,
    kept: usize,
    pub(super) unlink_slack: usize,
}

/// Slots of buffered rows: `entries` (`ENTRY_BYTES` each) and the stack of free ones.
#[derive(Debug)]
struct Slab {
    entries: wgpu::Buffer,
    free: wgpu::Buffer,
    capacity: u32,
    /// Slots ever used: fresh slots start here.
    length: u32,
    /// Slots on the free stack, all below `length`.
    free_slots: u32,
}

impl Slab {
    fn new(gpu: &GpuContext, capacity: u32) -> Self {
        Slab {
            entries: storage(
                &gpu.device,
                "join buffer rows",
                u64::from(capacity) * ENTRY_BYTES,
            ),
            free: storage(
                &gpu.device,
                "join buffer free slots",
                u64::from(capacity) * 4,
            ),
            capacity,
            length: 0,
            free_slots: 0,
        }
    }

    /// Rows in the slab: every used slot not on the free stack.
    fn held(&self) -> u32 {
        self.length - self.free_slots
    }

    /// Whether `rows` more rows fit without growing.
    fn fits(&self, rows: u32) -> bool {
        u64::from(self.free_slots) + u64::from(self.capacity - self.length) >= u64::from(rows)
    }
}

/// The key index: open addressing, kept at most half full.
#[derive(Debug)]
struct Index {
    buffer: wgpu::Buffer,
    capacity: u32,
    /// At least the claimed slots (exact after a read of `J_CLAIMED`).
    claimed: u32,
    /// The next `join_buffer_link` pass's tag.
    tag: u32,
}

impl Index {
    fn new(gpu: &GpuContext, capacity: u32) -> Self {
        Index {
            buffer: storage(
                &gpu.device,
                "join buffer index",
                u64::from(capacity) * KEY_BYTES,
            ),
            capacity,
            claimed: 0,
            tag: FIRST_TAG,
        }
    }
}

/// A per-call buffer, replaced by a larger one when a call needs more.
#[derive(Debug)]
struct Scratch {
    buffer: wgpu::Buffer,
    bytes: u64,
    label: &'static str,
    read: bool,
}

impl Scratch {
    fn new(gpu: &GpuContext, label: &'static str, read: bool) -> Self {
        let bytes = 256;
        let make = if read { staging } else { storage };
        Scratch {
            buffer: make(&gpu.device, label, bytes),
            bytes,
            label,
            read,
        }
    }

    fn at_least(&mut self, gpu: &GpuContext, bytes: u64) -> &wgpu::Buffer {
        if bytes > self.bytes {
            self.bytes = bytes.next_power_of_two();
            let make = if self.read { staging } else { storage };
            self.buffer = make(&gpu.device, self.label, self.bytes);
        }
        &self.buffer
    }
}

/// Low and high words of a 64-bit value (WGSL has 32-bit integers only).
fn words(v: u64) -> [u32; 2] {
    [v as u32, (v >> 32) as u32]
}

impl GpuJoinBuffer {
    /// An empty buffer on `gpu`.
    pub(crate) fn new(gpu: Arc<GpuContext>, tuning: Tuning) -> Self {
        let params = gpu.device.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("join buffer parameters"),
            size: gpu.kernels.params_stride,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let counters = storage(&gpu.device, "join buffer counters", COUNTERS as u64 * 4);
        let counters_read = staging(&gpu.device, "join buffer counters", COUNTERS as u64 * 4);
        GpuJoinBuffer {
            hash_mode: tuning.hash_mode,
            max_chunk_rows: tuning.max_chunk_rows.clamp(1, 1 << 24),
            slab: Slab::new(&gpu, FIRST_SLOTS),
            index: Index::new(&gpu, FIRST_KEYS),
            counters,
            counters_read,
            params,
            uploads: Scratch::new(&gpu, "join buffer uploads", false),
            keys: Scratch::new(&gpu, "join buffer batch keys", false),
            slots: Scratch::new(&gpu, "join buffer batch slots", false),
            found: Scratch::new(&gpu, "join buffer found", false),
            found_read: Scratch::new(&gpu, "join buffer found", true),
            matches: Scratch::new(&gpu, "join buffer matches", false),
            matches_read: Scratch::new(&gpu, "join buffer matches", true),
            next: 0,
            bound: i64::MIN,
            unlinked_at: i64::MIN,
            kept: 0,
            unlink_slack: UNLINK_SLACK,
            gpu,
        }
    }

    /// The most bytes one binding may hold on this device.
    fn binding_limit(&self) -> u64 {
        let limits = &self.gpu.device.limits;
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
    }

    /// Rows per round when each row takes `bytes` of a binding.
    fn chunk_rows(&self, bytes: u64) -> usize {
        ((self.binding_limit() / bytes) as usize).clamp(1, self.max_chunk_rows)
    }

    /// Writes `params` and submits one compute pass running `passes` (kernel, storage
    /// buffers, invocations) in order.
    fn run(
        &self,
        params: PassParams,
        passes: &[(Kernel, &[&wgpu::Buffer], u32)],
    ) -> wgpu::SubmissionIndex {
        let device = &self.gpu.device;
        device
            .queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        let mut encoder = device
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("join buffer"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("join buffer"),
                timestamp_writes: None,
            });
            for &(kernel, buffers, invocations) in passes {
                let Some(pipeline) = self.gpu.kernels.pipeline(kernel) else {
                    continue; // only the 64-bit window update may be missing
                };
                let group = self
                    .gpu
                    .kernels
                    .bind(&device.device, kernel, &self.params, buffers);
                let (x, y) = grid(
                    invocations,
                    device.limits.max_compute_workgroups_per_dimension,
                );
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &group, &[0]);
                pass.dispatch_workgroups(x, y, 1);
            }
        }
        device.queue.submit([encoder.finish()])
    }

    fn params(&self) -> PassParams {
        PassParams {
            mask: self.index.capacity - 1,
            hash_mode: self.hash_mode,
            first: self.slab.free_slots,
            last: self.slab.length,
            ..PassParams::default()
        }
    }

    /// Zeroes counters `which` before the next submission runs.
    fn reset_counters(&self, which: std::ops::Range<usize>) {
        let zeros = vec![0u32; which.len()];
        self.gpu.device.queue.write_buffer(
            &self.counters,
            which.start as u64 * 4,
            bytemuck::cast_slice(&zeros),
        );
    }

    fn read_counters(&self) -> Result<Vec<u32>> {
        read_back(
            &self.gpu.device,
            &self.counters,
            &self.counters_read,
            COUNTERS as u64 * 4,
        )
    }

    fn too_large(&self, what: &str, bytes: u64) -> Error {
        Error::Gpu(format!(
            "a stream join buffer's {what} needs {bytes} bytes, more than the device binds \
             ({}); run this job with --backend cpu",
            self.binding_limit()
        ))
    }

    /// Makes room for `rows` more rows: unlinks expired ones first when the bound moved,
    /// then grows the slab (copying it: slots keep their numbers, so chains stay valid).
    fn make_room(&mut self, rows: u32) -> Result<()> {
        if self.slab.fits(rows) {
            return Ok(());
        }
        if self.bound > self.unlinked_at {
            self.unlink()?;
        }
        let needed = u64::from(self.slab.held()) + u64::from(rows);
        // Room at last, but a nearly full slab would unlink again at every insert: grow.
        if self.slab.fits(rows) && needed <= u64::from(self.slab.capacity) / 4 * 3 {
            return Ok(());
        }
        let capacity = (needed * 2).next_power_of_two();
        if capacity * ENTRY_BYTES > self.binding_limit() || capacity > 1 << 31 {
            return Err(self.too_large("rows", capacity * ENTRY_BYTES));
        }
        let grown = Slab {
            length: self.slab.length,
            free_slots: self.slab.free_slots,
            ..Slab::new(&self.gpu, capacity as u32)
        };
        let device = &self.gpu.device;
        let mut encoder = device
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("join buffer growth"),
            });
        encoder.copy_buffer_to_buffer(
            &self.slab.entries,
            0,
            &grown.entries,
            0,
            u64::from(self.slab.length) * ENTRY_BYTES,
        );
        encoder.copy_buffer_to_buffer(
            &self.slab.free,
            0,
            &grown.free,
            0,
            u64::from(self.slab.free_slots) * 4,
        );
        device.queue.submit([encoder.finish()]);
        self.slab = grown;
        Ok(())
    }

    /// Makes room in the index for `keys` more keys (and a fresh tag for their pass).
    fn make_index_room(&mut self, keys: u32) -> Result<()> {
        if self.index.tag == u32::MAX {
            // Tags would wrap around onto slots claimed long ago: rehashing settles them all.
            self.rehash(u64::from(self.index.capacity))?;
        }
        if self.index.claimed + keys <= self.index.capacity / 2 {
            return Ok(());
        }
        // The bound counted every batch key as new: read how many slots are claimed.
        self.index.claimed = self.read_counters()?[J_CLAIMED];
        let wanted = self.index.claimed + keys;
        // Rehash above a quarter full, so reading the count stays rare.
        if wanted > self.index.capacity / 4 {
            self.rehash(
                (u64::from(wanted) * 4)
                    .next_power_of_two()
                    .max(u64::from(FIRST_KEYS)),
            )?;
        }
        Ok(())
    }

    /// Moves the keys that have rows into a new index of `capacity` slots.
    fn rehash(&mut self, capacity: u64) -> Result<()> {
        if capacity * KEY_BYTES > self.binding_limit() || capacity > 1 << 31 {
            return Err(self.too_large("key index", capacity * KEY_BYTES));
        }
        let index = Index {
            claimed: self.index.claimed,
            ..Index::new(&self.gpu, capacity as u32)
        };
        self.reset_counters(J_CLAIMED..J_CLAIMED + 1);
        let params = PassParams {
            new_mask: index.capacity - 1,
            ..self.params()
        };
        self.run(
            params,
            &[(
                Kernel::JoinBufferRehash,
                &[&self.index.buffer, &index.buffer, &self.counters],
                self.index.capacity,
            )],
        );
        self.index = index;
        Ok(())
    }

    /// Unlinks every row older than the bound from its chain and frees its slot; afterwards
    /// the rows held are exactly those at or after the bound.
    fn unlink(&mut self) -> Result<()> {
        self.reset_counters(J_LIVE..J_FREED + 1);
        let [lo, hi] = words(self.bound as u64);
        let params = PassParams {
            min_open_lo: lo,
            min_open_hi: hi,
            ..self.params()
        };
        self.run(
            params,
            &[(
                Kernel::JoinBufferExpire,
                &[
                    &self.index.buffer,
                    &self.slab.entries,
                    &self.slab.free,
                    &self.counters,
                ],
                self.index.capacity,
            )],
        );
        let counters = self.read_counters()?;
        let (live, keys, freed) = (counters[J_LIVE], counters[J_KEYS], counters[J_FREED]);
        if u64::from(live) + u64::from(freed) != u64::from(self.slab.held()) {
            return Err(Error::Gpu(format!(
                "join buffer expiry kept {live} and freed {freed} of {} rows",
                self.slab.held()
            )));
        }
        self.slab.free_slots += freed;
        if live == 0 {
            // Nothing held: fresh slots again, from the start.
            self.slab.length = 0;
            self.slab.free_slots = 0;
        }
        self.index.claimed = counters[J_CLAIMED];
        self.unlinked_at = self.bound;
        self.kept = live as usize;
        // Keys whose rows all expired keep their slots until a rehash drops them.
        if self.index.claimed > 2 * keys + FIRST_KEYS / 2 {
            self.rehash(
                (u64::from(keys) * 4)
                    .next_power_of_two()
                    .max(u64::from(FIRST_KEYS)),
            )?;
        }
        Ok(())
    }

    /// Buffers one round of rows (at most `chunk_rows` of them).
    fn insert_round(&mut self, ids: &[u64], ts: &[i64]) -> Result<()> {
        let rows = ids.len() as u32;
        // Per distinct key: id lo, id hi, its first row, its last row; per row: ts lo, ts hi,
        // the previous row of its key plus one.
        let mut keys: Vec<[u32; 4]> = Vec::new();
        let mut key_of: HashMap<u64, usize> = HashMap::with_capacity(ids.len().min(1 << 16));
        let mut uploads = Vec::with_capacity(ids.len() * 3);
        for (row, (&id, &t)) in ids.iter().zip(ts).enumerate() {
            let row = row as u32;
            let previous = match key_of.entry(id) {
                Entry::Occupied(at) => {
                    let key = &mut keys[*at.get()];
                    let previous = key[3];
                    key[3] = row;
                    previous + 1
                }
                Entry::Vacant(at) => {
                    at.insert(keys.len());
                    let [lo, hi] = words(id);
                    keys.push([lo, hi, row, row]);
                    0
                }
            };
            let [lo, hi] = words(t as u64);
            uploads.extend([lo, hi, previous]);
        }
        self.make_room(rows)?;
        self.make_index_room(keys.len() as u32)?;
        let gpu = Arc::clone(&self.gpu);
        let queue = &gpu.device.queue;
        queue.write_buffer(
            self.uploads.at_least(&gpu, uploads.len() as u64 * 4),
            0,
            bytemuck::cast_slice(&uploads),
        );
        queue.write_buffer(
            self.keys.at_least(&gpu, keys.len() as u64 * 16),
            0,
            bytemuck::cast_slice(&keys),
        );
        self.slots.at_least(&gpu, u64::from(rows) * 4);
        let [base_lo, base_hi] = words(self.next);
        let params = PassParams {
            rows,
            items: keys.len() as u32,
            tag: self.index.tag,
            wbase_lo: base_lo,
            wbase_hi: base_hi,
            ..self.params()
        };
        self.run(
            params,
            &[
                (
                    Kernel::JoinBufferInsert,
                    &[
                        &self.uploads.buffer,
                        &self.slab.free,
                        &self.slab.entries,
                        &self.slots.buffer,
                    ],
                    rows,
                ),
                (
                    Kernel::JoinBufferLink,
                    &[
                        &self.keys.buffer,
                        &self.slots.buffer,
                        &self.slab.entries,
                        &self.index.buffer,
                        &self.counters,
                    ],
                    keys.len() as u32,
                ),
            ],
        );
        let taken = rows.min(self.slab.free_slots);
        self.slab.free_slots -= taken;
        self.slab.length += rows - taken;
        self.index.claimed += keys.len() as u32;
        self.index.tag += 1;
        self.next += u64::from(rows);
        Ok(())
    }

    /// Probes one round of rows (the first is probe row `first`) and appends their pairs.
    fn probe_round(
        &mut self,
        probe: &JoinProbe<'_>,
        first: u32,
        out: &mut BufferMatches,
    ) -> Result<()> {
        let rows = probe.len() as u32;
        let mut uploads = Vec::with_capacity(probe.len() * 6);
        for ((&id, &lo), &hi) in probe.ids.iter().zip(probe.lo).zip(probe.hi) {
            uploads.extend(words(id));
            uploads.extend(words(lo as u64));
            uploads.extend(words(hi as u64));
        }
        let gpu = Arc::clone(&self.gpu);
        gpu.device.queue.write_buffer(
            self.uploads.at_least(&gpu, uploads.len() as u64 * 4),
            0,
            bytemuck::cast_slice(&uploads),
        );
        self.found.at_least(&gpu, u64::from(rows) * 8);
        self.found_read.at_least(&gpu, u64::from(rows) * 8);
        self.matches.at_least(&gpu, FIRST_PLACES * 8);
        let places = (self.matches.bytes / 8).min(u64::from(u32::MAX)) as u32;
        self.reset_counters(J_MATCHES..J_MATCHES + 1);
        let params = PassParams {
            rows,
            limit: places,
            ..self.params()
        };
        self.run(
            params,
            &[(
                Kernel::JoinBufferProbe,
                &[
                    &self.uploads.buffer,
                    &self.index.buffer,
                    &self.slab.entries,
                    &self.found.buffer,
                    &self.matches.buffer,
                    &self.counters,
                ],
                rows,
            )],
        );
        let found = read_back(
            &gpu.device,
            &self.found.buffer,
            &self.found_read.buffer,
            u64::from(rows) * 8,
        )?;
        let total: u64 = found.chunks_exact(2).map(|f| u64::from(f[1])).sum();
        if total == 0 {
            return Ok(());
        }
        if total > u64::from(places) {
            let most = self.binding_limit() / 8;
            if total <= most {
                self.matches.at_least(&gpu, total * 8);
                return self.probe_round(probe, first, out);
            }
            // More pairs than one binding holds: probe the halves apart.
            if rows == 1 {
                return Err(self.too_large("matches of one probe row", total * 8));
            }
            let half = probe.len() / 2;
            let (head, tail) = (0..half, half..probe.len());
            for range in [head, tail] {
                let part = JoinProbe {
                    ids: &probe.ids[range.clone()],
                    lo: &probe.lo[range.clone()],
                    hi: &probe.hi[range.clone()],
                };
                self.probe_round(&part, first + range.start as u32, out)?;
            }
            return Ok(());
        }
        let pairs = read_back(
            &gpu.device,
            &self.matches.buffer,
            self.matches_read.at_least(&gpu, total * 8),
            total * 8,
        )?;
        for (row, f) in found.chunks_exact(2).enumerate() {
            let (at, count) = (f[0] as usize, f[1] as usize);
            if count == 0 {
                continue;
            }
            let handles = pairs.get(2 * at..2 * (at + count)).ok_or_else(|| {
                Error::Gpu(format!(
                    "join buffer probe placed {count} matches at {at} of {total}"
                ))
            })?;
            out.probe
                .extend(std::iter::repeat_n(first + row as u32, count));
            out.handles.extend(
                handles
                    .chunks_exact(2)
                    .map(|h| u64::from(h[0]) | (u64::from(h[1]) << 32)),
            );
        }
        Ok(())
    }
}

impl JoinBuffer for GpuJoinBuffer {
    fn insert(&mut self, ids: &[u64], ts: &[i64]) -> Result<()> {
        let rows = ids.len().min(ts.len());
        // Uploads take 12 bytes per row and 16 per distinct key.
        let chunk = self.chunk_rows(16);
        for start in (0..rows).step_by(chunk) {
            let end = (start + chunk).min(rows);
            self.insert_round(&ids[start..end], &ts[start..end])?;
        }
        Ok(())
    }

    fn probe(&mut self, probe: &JoinProbe<'_>) -> Result<BufferMatches> {
        probe.check()?;
        let mut out = BufferMatches::default();
        if self.slab.held() == 0 {
            return Ok(out);
        }
        // Uploads take 24 bytes per probe row.
        let chunk = self.chunk_rows(24);
        for start in (0..probe.len()).step_by(chunk) {
            let range = start..(start + chunk).min(probe.len());
            let part = JoinProbe {
                ids: &probe.ids[range.clone()],
                lo: &probe.lo[range.clone()],
                hi: &probe.hi[range],
            };
            self.probe_round(&part, start as u32, &mut out)?;
        }
        Ok(out)
    }

    fn expire(&mut self, before: i64) -> Result<()> {
        self.bound = self.bound.max(before);
        let held = self.slab.held() as usize;
        if self.bound > self.unlinked_at && held > 0 && held >= 2 * self.kept + self.unlink_slack {
            self.unlink()?;
        }
        Ok(())
    }

    fn rows(&self) -> usize {
        self.slab.held() as usize
    }

    fn next_handle(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::GpuBackend;
    use crate::backend::cpu::CpuJoinBuffer;
    use crate::backend::test_support::Rng;

    /// One call, made on both buffers.
    enum Step {
        Insert(Vec<u64>, Vec<i64>),
        Probe(Vec<u64>, Vec<i64>, Vec<i64>),
        Expire(i64),
    }

    /// A random stream: per round an insert, a probe of ranges around the clock and an expiry
    /// `retain` ms behind it.
    #[derive(Clone, Copy, Debug)]
    struct Stream {
        rounds: usize,
        /// Most rows per insert and per probe (each picks a size up to it, 0 included).
        batch: u64,
        keys: u64,
        /// Percent of rows on key 0.
        hot: u64,
        /// Clock advance per round, how far rows run behind it, probe width, retention (ms).
        step: i64,
        disorder: i64,
        width: i64,
        retain: i64,
    }

    fn stream(s: Stream, seed: u64) -> Vec<Step> {
        let mut rng = Rng(seed | 1);
        let mut steps = Vec::new();
        let mut clock = -(s.step * s.rounds as i64) / 2; // negative times too
        let mut bound = i64::MIN;
        let id = |rng: &mut Rng| {
            if rng.below(100) < s.hot {
                0
            } else {
                rng.below(s.keys).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            }
        };
        for _ in 0..s.rounds {
            let n = rng.below(s.batch + 1) as usize;
            let ids: Vec<u64> = (0..n).map(|_| id(&mut rng)).collect();
            let ts: Vec<i64> = (0..n)
                .map(|_| clock - rng.below(s.disorder as u64 + 1) as i64)
                .collect();
            steps.push(Step::Insert(ids, ts));
            let n = rng.below(s.batch + 1) as usize;
            let ids: Vec<u64> = (0..n).map(|_| id(&mut rng)).collect();
            let (mut lo, mut hi) = (Vec::new(), Vec::new());
            for i in 0..n {
                let at = clock - rng.below(s.disorder as u64 + 1) as i64;
                let (a, b) = if i % 11 == 3 {
                    (at, at - 1) // an empty range
                } else {
                    (at - rng.below(s.width as u64 + 1) as i64, at + s.width)
                };
                // Probes never ask below the expiry bound (the trait's promise).
                lo.push(a.max(bound));
                hi.push(b);
            }
            steps.push(Step::Probe(ids, lo, hi));
            bound = bound.max(clock - s.retain);
            steps.push(Step::Expire(clock - s.retain));
            clock += s.step;
        }
        steps
    }

    /// Every buffered pair by brute force over every row inserted: an oracle independent of
    /// both buffers (rows below the bound can never match a probe that keeps the promise).
    fn brute(rows: &[(u64, i64)], ids: &[u64], lo: &[i64], hi: &[i64]) -> BufferMatches {
        let mut out = BufferMatches::default();
        for (p, ((&id, &lo), &hi)) in ids.iter().zip(lo).zip(hi).enumerate() {
            for (handle, &(row_id, ts)) in rows.iter().enumerate() {
                if row_id == id && lo <= ts && ts <= hi {
                    out.probe.push(p as u32);
                    out.handles.push(handle as u64);
                }
            }
        }
        out
    }

    /// Replays `steps` on a fresh CPU buffer and on `gpu`; fails at the first difference.
    fn replay(gpu: &mut GpuJoinBuffer, steps: &[Step], what: &str) -> Result<usize> {
        let mut cpu = CpuJoinBuffer::new(100, None);
        let mut inserted: Vec<(u64, i64)> = Vec::new();
        let mut pairs = 0;
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Insert(ids, ts) => {
                    cpu.insert(ids, ts)?;
                    gpu.insert(ids, ts)?;
                    inserted.extend(ids.iter().copied().zip(ts.iter().copied()));
                }
                Step::Probe(ids, lo, hi) => {
                    let probe = JoinProbe { ids, lo, hi };
                    let want = cpu.probe(&probe)?;
                    let got = gpu.probe(&probe)?;
                    assert!(
                        got == want,
                        "{what}, step {i}: the GPU found {} pairs, the CPU {}",
                        got.len(),
                        want.len()
                    );
                    if inserted.len() * ids.len() <= 4_000_000 {
                        assert_eq!(got, brute(&inserted, ids, lo, hi), "{what}, step {i}");
                    }
                    pairs += got.len();
                }
                Step::Expire(t) => {
                    cpu.expire(*t)?;
                    gpu.expire(*t)?;
                }
            }
            assert_eq!(gpu.next_handle(), cpu.next_handle(), "{what}, step {i}");
        }
        Ok(pairs)
    }

    /// The buffers the cases run on: as jobs get them, unlinking at every expiry (also cut
    /// into small rounds, and with every key hashing alike: small cases only).
    fn variants(gpu: &GpuBackend, small: bool) -> Vec<(&'static str, GpuJoinBuffer)> {
        let buffer =
            |backend: &GpuBackend| GpuJoinBuffer::new(Arc::clone(&backend.context), backend.tuning);
        let mut eager = buffer(gpu);
        eager.unlink_slack = 0;
        let mut rounds = buffer(&gpu.clone().with_chunk_rows(100));
        rounds.unlink_slack = 0;
        let mut all = vec![
            ("default", buffer(gpu)),
            ("eager unlinking", eager),
            ("rounds of 100 rows, eager unlinking", rounds),
        ];
        if small {
            let mut colliding = buffer(&gpu.clone().with_colliding_hashes());
            colliding.unlink_slack = 0;
            all.push(("colliding hashes", colliding));
        }
        all
    }

    #[test]
    fn the_gpu_buffer_finds_the_same_pairs_as_the_cpu() -> Result<()> {
        let Some(gpu) = GpuBackend::for_tests() else {
            return Ok(());
        };
        let base = Stream {
            rounds: 12,
            batch: 300,
            keys: 40,
            hot: 0,
            step: 100,
            disorder: 300,
            width: 150,
            retain: 600,
        };
        let cases = [
            (
                "many to many",
                Stream {
                    keys: 3,
                    width: 400,
                    ..base
                },
                true,
            ),
            (
                "one hot key",
                Stream {
                    keys: 500,
                    hot: 90,
                    batch: 700,
                    ..base
                },
                true,
            ),
            (
                "sparse keys",
                Stream {
                    keys: 100_000,
                    ..base
                },
                true,
            ),
            // Past the first slab (1,024 rows) and index (64 keys), with little expiring.
            (
                "growth",
                Stream {
                    rounds: 8,
                    batch: 3_000,
                    keys: 2_000,
                    retain: 10_000,
                    ..base
                },
                false,
            ),
            (
                "one row at a time",
                Stream {
                    rounds: 40,
                    batch: 1,
                    keys: 2,
                    ..base
                },
                true,
            ),
        ];
        for (seed, (name, stream_of, small)) in cases.into_iter().enumerate() {
            let steps = stream(stream_of, seed as u64 + 7);
            for (variant, mut buffer) in variants(&gpu, small) {
                let what = format!("{name}, {variant}");
                let pairs = replay(&mut buffer, &steps, &what)?;
                assert!(pairs > 0, "{what}: the case finds no pairs");
                // The cases reach the paths they are for.
                if variant != "default" {
                    assert!(buffer.unlinked_at > i64::MIN, "{what}: never unlinked");
                }
                if name == "growth" {
                    assert!(
                        buffer.slab.capacity > FIRST_SLOTS,
                        "{what}: slab never grew"
                    );
                    assert!(
                        buffer.index.capacity > FIRST_KEYS,
                        "{what}: index never grew"
                    );
                }
                if name == "many to many" {
                    assert!(buffer.matches.bytes > FIRST_PLACES * 8, "{what}: no retry");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn edge_cases_match_the_cpu_and_hand_checked_answers() -> Result<()> {
        let Some(gpu) = GpuBackend::for_tests() else {
            return Ok(());
        };
        let (min, max) = (i64::MIN, i64::MAX);
        let full = |ids: Vec<u64>| {
            let n = ids.len();
            Step::Probe(ids, vec![min; n], vec![max; n])
        };
        let steps = vec![
            // An empty buffer, an empty probe, an empty insert.
            full(vec![1, 2]),
            Step::Probe(vec![], vec![], vec![]),
            Step::Insert(vec![], vec![]),
            full(vec![1]),
            // One row, then the extremes of both words and of time.
            Step::Insert(vec![5], vec![0]),
            Step::Probe(vec![5, 5, 5, 5], vec![0, 1, -1, 0], vec![0, 1, -1, -1]),
            Step::Insert(
                vec![0, u64::MAX, 0, u64::MAX, 0, 1 << 32, 1],
                vec![min, max, -1, min + 1, max - 1, 7, 7],
            ),
            full(vec![0, u64::MAX, 1 << 32, 1, 5, 6]),
            Step::Probe(
                vec![0, 0, u64::MAX, 0, 0, 0],
                vec![min, max, min, -1, 0, max],
                vec![min, max, min + 1, 5, -1, min],
            ),
            Step::Expire(min),
            full(vec![0]),
            Step::Expire(-5),
            Step::Probe(vec![0, u64::MAX], vec![-5, -5], vec![max, max]),
            Step::Expire(max),
            Step::Probe(vec![0, u64::MAX], vec![max, max], vec![max, max]),
            // Handles keep counting after everything expired.
            Step::Insert(vec![0, 0], vec![max, max]),
            Step::Probe(vec![0], vec![max], vec![max]),
        ];
        for (variant, mut buffer) in variants(&gpu, true) {
            replay(&mut buffer, &steps, variant)?;
        }
        // Hand-checked: the CPU buffer's own example.
        let mut buffer = GpuJoinBuffer::new(Arc::clone(&gpu.context), gpu.tuning);
        buffer.insert(&[7, 7, 8, 7, 7], &[5, 25, 6, 12, 9])?;
        let found = buffer.probe(&JoinProbe {
            ids: &[7, 8, 9, 7],
            lo: &[5, 0, 0, 10],
            hi: &[12, 5, 100, 9],
        })?;
        assert_eq!(found.probe, vec![0, 0, 0]);
        assert_eq!(found.handles, vec![0, 3, 4]);
        assert_eq!((buffer.rows(), buffer.next_handle()), (5, 5));
        Ok(())
    }

    /// A long run with steady expiry: rows held, slab and index stay bounded, though one row
    /// far in the future never expires (a ring would stall behind it) and keys keep changing.
    #[test]
    fn memory_stays_bounded_under_steady_expiry() -> Result<()> {
        let Some(gpu) = GpuBackend::for_tests() else {
            return Ok(());
        };
        let mut buffer = GpuJoinBuffer::new(Arc::clone(&gpu.context), gpu.tuning);
        let mut cpu = CpuJoinBuffer::new(100, None);
        let mut rng = Rng(99);
        let (batch, retain) = (500usize, 2_000i64);
        let mut held: Vec<i64> = Vec::new();
        for round in 0..400i64 {
            let clock = round * 100;
            let ids: Vec<u64> = (0..batch as u64)
                .map(|i| (round as u64 / 5) * 1_000 + rng.below(50) + i % 2)
                .collect();
            let mut ts: Vec<i64> = (0..batch).map(|_| clock - rng.below(300) as i64).collect();
            if round == 0 {
                ts[0] = i64::MAX;
            }
            buffer.insert(&ids, &ts)?;
            cpu.insert(&ids, &ts)?;
            held.extend(&ts);
            let bound = clock - retain;
            buffer.expire(bound)?;
            cpu.expire(bound)?;
            held.retain(|&t| t >= bound);
            let live = held.len();
            assert!(
                buffer.rows() >= live && buffer.rows() <= 2 * live + UNLINK_SLACK + 2 * batch,
                "round {round}: {} rows held, {live} live",
                buffer.rows()
            );
            if round % 25 == 0 {
                let lo: Vec<i64> = ts.iter().map(|&t| (t - 500).max(bound)).collect();
                let hi: Vec<i64> = ts.iter().map(|&t| t.saturating_add(100)).collect();
                let probe = JoinProbe {
                    ids: &ids,
                    lo: &lo,
                    hi: &hi,
                };
                assert_eq!(buffer.probe(&probe)?, cpu.probe(&probe)?, "round {round}");
            }
        }
        // About 10,000 rows and 200 keys live, of 200,000 rows and 4,000 keys inserted: the
        // slab and index stay at the scale of the live ones.
        assert!(
            buffer.slab.capacity <= 1 << 16,
            "slab of {}",
            buffer.slab.capacity
        );
        assert!(
            buffer.index.capacity <= 1 << 12,
            "index of {}",
            buffer.index.capacity
        );
        assert_eq!(buffer.next_handle(), 400 * batch as u64);
        Ok(())
    }
}
