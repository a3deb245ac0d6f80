//! The device buffers of a GPU join buffer: the slab of row slots with its free stack, the
//! key index, and per-call scratch buffers that grow when a call needs more.

use super::super::GpuContext;
use super::super::buffers::{staging, storage};
use super::{ENTRY_BYTES, FIRST_TAG, KEY_BYTES};

/// Slots of buffered rows: `entries` (`ENTRY_BYTES` each) and the stack of free ones.
#[derive(Debug)]
pub(super) struct Slab {
    pub(super) entries: wgpu::Buffer,
    pub(super) free: wgpu::Buffer,
    pub(super) capacity: u32,
    /// Slots ever used: fresh slots start here.
    pub(super) length: u32,
    /// Slots on the free stack, all below `length`.
    pub(super) free_slots: u32,
}

impl Slab {
    pub(super) fn new(gpu: &GpuContext, capacity: u32) -> Self {
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
    pub(super) fn held(&self) -> u32 {
        self.length - self.free_slots
    }

    /// Whether `rows` more rows fit without growing.
    pub(super) fn fits(&self, rows: u32) -> bool {
        u64::from(self.free_slots) + u64::from(self.capacity - self.length) >= u64::from(rows)
    }
}

/// The key index: open addressing, kept at most half full.
#[derive(Debug)]
pub(super) struct Index {
    pub(super) buffer: wgpu::Buffer,
    pub(super) capacity: u32,
    /// At least the claimed slots (exact after a read of `J_CLAIMED`).
    pub(super) claimed: u32,
    /// The next `join_buffer_link` pass's tag.
    pub(super) tag: u32,
}

impl Index {
    pub(super) fn new(gpu: &GpuContext, capacity: u32) -> Self {
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
pub(super) struct Scratch {
    pub(super) buffer: wgpu::Buffer,
    pub(super) bytes: u64,
    pub(super) label: &'static str,
    pub(super) read: bool,
}

impl Scratch {
    pub(super) fn new(gpu: &GpuContext, label: &'static str, read: bool) -> Self {
        let bytes = 256;
        let make = if read { staging } else { storage };
        Scratch {
            buffer: make(&gpu.device, label, bytes),
            bytes,
            label,
            read,
        }
    }

    pub(super) fn at_least(&mut self, gpu: &GpuContext, bytes: u64) -> &wgpu::Buffer {
        if bytes > self.bytes {
            self.bytes = bytes.next_power_of_two();
            let make = if self.read { staging } else { storage };
            self.buffer = make(&gpu.device, self.label, self.bytes);
        }
        &self.buffer
    }
}

/// Low and high words of a 64-bit value (WGSL has 32-bit integers only).
pub(super) fn words(v: u64) -> [u32; 2] {
    [v as u32, (v >> 32) as u32]
}
