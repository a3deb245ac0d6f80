//! GPU buffers: the group and distinct-value tables, per-micro-batch buffers, and reading a
//! buffer range back to the host.

use std::sync::{Arc, Mutex};

use super::device::GpuDevice;
use crate::error::{Error, Result};

/// Usage of every storage buffer: bound by kernels, written by the queue, copied for reads.
pub(crate) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

pub(crate) fn storage(gpu: &GpuDevice, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: STORAGE,
        mapped_at_creation: false,
    })
}

pub(crate) fn staging(gpu: &GpuDevice, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// An open-addressing table: `capacity` state words, then four key words per entry.
#[derive(Debug)]
pub(crate) struct HashTable {
    pub buffer: wgpu::Buffer,
    pub capacity: u32,
    /// The most entries it may hold.
    pub limit: u32,
}

impl HashTable {
    /// A table of `capacity` entries (a power of two); `largest` says no bigger one fits the
    /// device, so it may fill further before the job fails.
    pub(crate) fn new(gpu: &GpuDevice, label: &str, capacity: u32, largest: bool) -> Self {
        // Linear probing stays short below three quarters full; a table that cannot grow
        // accepts longer probes rather than fail a job early.
        let limit = if largest {
            capacity / 8 * 7
        } else {
            capacity / 4 * 3
        };
        HashTable {
            buffer: storage(gpu, label, u64::from(capacity) * 5 * 4),
            capacity,
            limit,
        }
    }

    pub(crate) fn mask(&self) -> u32 {
        self.capacity - 1
    }
}

/// The group table with its accumulators (`stride` words per slot).
#[derive(Debug)]
pub(crate) struct GroupTable {
    pub keys: HashTable,
    pub acc: wgpu::Buffer,
}

impl GroupTable {
    pub(crate) fn new(gpu: &GpuDevice, capacity: u32, stride: u32, largest: bool) -> Self {
        GroupTable {
            keys: HashTable::new(gpu, "groups", capacity, largest),
            acc: storage(
                gpu,
                "accumulators",
                u64::from(capacity) * u64::from(stride) * 4,
            ),
        }
    }
}

/// A buffer mapped for reading after `submission`: created, awaited, read, unmapped.
#[derive(Debug)]
pub(crate) struct PendingRead {
    done: Arc<Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>>,
    submission: wgpu::SubmissionIndex,
    bytes: u64,
}

impl PendingRead {
    /// Starts mapping the first `bytes` of `buffer` once `submission` completes.
    pub(crate) fn start(
        buffer: &wgpu::Buffer,
        bytes: u64,
        submission: wgpu::SubmissionIndex,
    ) -> Self {
        let done: Arc<Mutex<Option<_>>> = Arc::default();
        let flag = Arc::clone(&done);
        buffer.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            if let Ok(mut slot) = flag.lock() {
                *slot = Some(r);
            }
        });
        PendingRead {
            done,
            submission,
            bytes,
        }
    }

    /// Waits for the mapping, copies the words out and unmaps `buffer`.
    pub(crate) fn finish(self, gpu: &GpuDevice, buffer: &wgpu::Buffer) -> Result<Vec<u32>> {
        let bytes = self.bytes;
        self.finish_prefix(gpu, buffer, bytes)
    }

    /// Like [`PendingRead::finish`], copying out only the first `bytes` of the mapped range.
    pub(crate) fn finish_prefix(
        self,
        gpu: &GpuDevice,
        buffer: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u32>> {
        let bytes = bytes.min(self.bytes);
        gpu.wait(self.submission)?;
        let state = self
            .done
            .lock()
            .map_err(|_| Error::Internal("GPU map callback panicked".into()))?
            .take();
        match state {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Gpu(format!("reading results back: {e}"))),
            None => {
                return Err(Error::Gpu(
                    "reading results back: the mapping never completed".into(),
                ));
            }
        }
        let words = {
            let view = buffer
                .get_mapped_range(0..self.bytes)
                .map_err(|e| Error::Gpu(format!("reading results back: {e}")))?;
            bytemuck::pod_collect_to_vec::<u8, u32>(&view[..bytes as usize])
        };
        buffer.unmap();
        Ok(words)
    }
}

/// Copies the first `bytes` of `source` to `staging` and reads them (blocking).
pub(crate) fn read_back(
    gpu: &GpuDevice,
    source: &wgpu::Buffer,
    staging: &wgpu::Buffer,
    bytes: u64,
) -> Result<Vec<u32>> {
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("read back"),
        });
    encoder.copy_buffer_to_buffer(source, 0, staging, 0, bytes);
    let submission = gpu.queue.submit([encoder.finish()]);
    PendingRead::start(staging, bytes, submission).finish(gpu, staging)
}
