//! Lookup joins on the GPU: the table's distinct key ids go into an open-addressing hash table
//! built on the device (`lookup_build.wgsl`) and resident there; each micro-batch's key ids
//! are probed by `lookup_probe.wgsl`, which returns per stream row its range of build rows.
//! The host expands ranges into (stream row, table row) pairs (it holds the build rows grouped
//! by key, in table order), so the output order equals the CPU index's.

use std::sync::{Arc, Mutex};

use super::buffers::{read_back, staging, storage};
use super::kernels::{PassParams, grid};
use super::shaders::Kernel;
use super::{GpuContext, Tuning};
use crate::backend::{BuildGroups, JoinMatches, LookupIndex};
use crate::error::{Error, Result};

/// A lookup join's table on the GPU.
#[derive(Debug)]
pub(crate) struct GpuLookupIndex {
    gpu: Arc<GpuContext>,
    hash_mode: u32,
    capacity: u32,
    /// `[state: capacity][id lo, id hi, first, count: 4 per slot]`.
    table: wgpu::Buffer,
    params: wgpu::Buffer,
    /// Build rows grouped by key id, ascending within a key; ranges index into it.
    rows: Vec<u32>,
    /// Per-batch buffers, reused while large enough.
    buffers: Mutex<Option<ProbeBuffers>>,
}

#[derive(Debug)]
struct ProbeBuffers {
    rows: usize,
    probe: wgpu::Buffer,
    ranges: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl GpuLookupIndex {
    /// Groups the valid build rows by id on the host and builds the hash table on the device.
    pub(crate) fn build(
        gpu: Arc<GpuContext>,
        tuning: Tuning,
        ids: &[u64],
        valid: &[bool],
    ) -> Result<Self> {
        let groups = BuildGroups::new(ids, valid);
        let entries: Vec<u32> = groups
            .keys
            .iter()
            .flat_map(|&(id, first, count)| [id as u32, (id >> 32) as u32, first, count])
            .collect();
        let distinct = groups.keys.len();
        // At most half full: probes stay short and always end at an empty slot.
        let capacity = (distinct * 2).next_power_of_two().max(16);
        let limit = gpu.device.limits.max_storage_buffer_binding_size;
        if capacity as u64 * 20 > limit {
            return Err(Error::Gpu(format!(
                "a lookup table of {distinct} keys needs {} bytes, more than the device binds \
                 ({limit}); run this job with --backend cpu",
                capacity * 20
            )));
        }
        let device = &gpu.device;
        let table = storage(device, "lookup table", capacity as u64 * 20);
        let params = params_buffer(&gpu);
        let index = GpuLookupIndex {
            hash_mode: tuning.hash_mode,
            capacity: capacity as u32,
            table,
            params,
            rows: groups.rows,
            buffers: Mutex::new(None),
            gpu,
        };
        if distinct > 0 {
            let keys = storage(&index.gpu.device, "lookup keys", entries.len() as u64 * 4);
            index
                .gpu
                .device
                .queue
                .write_buffer(&keys, 0, bytemuck::cast_slice(&entries));
            // Later submissions (the probes) run after this one: no wait.
            index.run(Kernel::LookupBuild, distinct, &[&keys, &index.table]);
        }
        Ok(index)
    }

    /// Writes the pass parameters for `rows` and submits one dispatch of `kernel`.
    fn run(&self, kernel: Kernel, rows: usize, buffers: &[&wgpu::Buffer]) {
        let params = PassParams {
            rows: rows as u32,
            mask: self.capacity - 1,
            hash_mode: self.hash_mode,
            ..PassParams::default()
        };
        let device = &self.gpu.device;
        device
            .queue
            .write_buffer(&self.params, 0, bytemuck::bytes_of(&params));
        let group = self
            .gpu
            .kernels
            .bind(&device.device, kernel, &self.params, buffers);
        let mut encoder = device
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some(kernel.file()),
            });
        if let Some(pipeline) = self.gpu.kernels.pipeline(kernel) {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel.file()),
                timestamp_writes: None,
            });
            let (x, y) = grid(
                rows as u32,
                device.limits.max_compute_workgroups_per_dimension,
            );
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &group, &[0]);
            pass.dispatch_workgroups(x, y, 1);
        }
        device.queue.submit([encoder.finish()]);
    }

    /// The (first, count) range of build rows of each of `ids`.
    fn ranges(&self, ids: &[u64], valid: &[bool]) -> Result<Vec<u32>> {
        let rows = ids.len();
        let mut words = Vec::with_capacity(rows * 3);
        for (&id, &ok) in ids.iter().zip(valid) {
            words.extend([id as u32, (id >> 32) as u32, u32::from(ok)]);
        }
        let mut held = self
            .buffers
            .lock()
            .map_err(|_| Error::Internal("GPU lookup buffers poisoned".into()))?;
        if held.as_ref().is_none_or(|b| b.rows < rows) {
            let device = &self.gpu.device;
            let size = rows.next_power_of_two() as u64;
            *held = Some(ProbeBuffers {
                rows: size as usize,
                probe: storage(device, "lookup probe", size * 12),
                ranges: storage(device, "lookup ranges", size * 8),
                staging: staging(device, "lookup ranges", size * 8),
            });
        }
        let buffers = held
            .as_ref()
            .ok_or_else(|| Error::Internal("GPU lookup buffers missing".into()))?;
        self.gpu
            .device
            .queue
            .write_buffer(&buffers.probe, 0, bytemuck::cast_slice(&words));
        self.run(
            Kernel::LookupProbe,
            rows,
            &[&buffers.probe, &self.table, &buffers.ranges],
        );
        read_back(
            &self.gpu.device,
            &buffers.ranges,
            &buffers.staging,
            rows as u64 * 8,
        )
    }
}

fn params_buffer(gpu: &GpuContext) -> wgpu::Buffer {
    gpu.device.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("lookup parameters"),
        size: gpu.kernels.params_stride,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

impl LookupIndex for GpuLookupIndex {
    fn probe(&self, ids: &[u64], valid: &[bool], outer: bool) -> Result<JoinMatches> {
        let mut out = JoinMatches::default();
        // Each round binds 12 bytes per row: stay within the device's binding limit.
        let limit = self.gpu.device.limits.max_storage_buffer_binding_size;
        let chunk = ((limit / 12) as usize).clamp(1, 1 << 24);
        for (c, (ids, valid)) in ids.chunks(chunk).zip(valid.chunks(chunk)).enumerate() {
            let ranges = self.ranges(ids, valid)?;
            for (r, range) in ranges.chunks_exact(2).enumerate() {
                let row = (c * chunk + r) as u32;
                let (first, count) = (range[0] as usize, range[1] as usize);
                if count == 0 {
                    if outer {
                        out.probe.push(row);
                        out.build.push(None);
                    }
                    continue;
                }
                let build = self.rows.get(first..first + count).ok_or_else(|| {
                    Error::Gpu(format!(
                        "lookup probe returned rows {first}+{count} out of range"
                    ))
                })?;
                out.probe.extend(std::iter::repeat_n(row, count));
                out.build.extend(build.iter().map(|&b| Some(b)));
            }
        }
        Ok(out)
    }

    fn build_rows(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::test_support::Rng;
    use crate::backend::{Backend, CpuBackend, GpuBackend};

    /// Build and probe ids: `keys` distinct values spread over the u64 range (both words
    /// used), each build id repeated up to three times, every 13th row null.
    fn ids(rows: usize, keys: u64, seed: u64) -> (Vec<u64>, Vec<bool>) {
        let mut rng = Rng(seed | 1);
        let ids = (0..rows)
            .map(|_| rng.below(keys.max(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let valid = (0..rows).map(|i| i % 13 != 5).collect();
        (ids, valid)
    }

    #[test]
    fn the_gpu_index_finds_the_same_pairs_as_the_cpu() {
        let Some(gpu) = GpuBackend::for_tests() else {
            return;
        };
        let cpu = CpuBackend::new();
        for (build_rows, probe_rows, keys, seed) in [
            (0, 100, 10, 1),
            (1, 1, 1, 2),
            (3_000, 10_000, 1_000, 3),
            (257, 5_000, 5_000, 4),
            (50_000, 70_000, 20_000, 5),
        ] {
            let (build, build_valid) = ids(build_rows, keys, seed);
            let (probe, probe_valid) = ids(probe_rows, keys + keys / 3, seed + 100);
            let want_index = cpu.lookup_index(&build, &build_valid).expect("cpu");
            for backend in [gpu.clone(), gpu.clone().with_colliding_hashes()] {
                if backend.tuning.hash_mode == 1 && build_rows > 5_000 {
                    continue; // every key in one probe chain: quadratic, pointless at size
                }
                let index = backend.lookup_index(&build, &build_valid).expect("gpu");
                assert_eq!(index.build_rows(), want_index.build_rows());
                for outer in [false, true] {
                    let want = want_index.probe(&probe, &probe_valid, outer).expect("cpu");
                    let got = index.probe(&probe, &probe_valid, outer).expect("gpu");
                    assert!(
                        got == want,
                        "build {build_rows} probe {probe_rows} hash mode {} outer {outer}: {} pairs, cpu {}",
                        backend.tuning.hash_mode,
                        got.probe.len(),
                        want.probe.len()
                    );
                    if build_rows > 0 && !outer {
                        assert!(!want.probe.is_empty(), "the case has matches");
                    }
                }
                // A second, smaller probe reuses the buffers.
                let n = probe.len().min(7);
                let small = index
                    .probe(&probe[..n], &probe_valid[..n], true)
                    .expect("gpu");
                let want = want_index
                    .probe(&probe[..n], &probe_valid[..n], true)
                    .expect("cpu");
                assert_eq!(small, want);
            }
        }
    }
}
