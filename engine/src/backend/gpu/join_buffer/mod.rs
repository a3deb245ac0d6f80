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

mod growth;
mod slab;
#[cfg(test)]
mod tests;

use slab::{Index, Scratch, Slab, words};

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
