//! Uploads through persistent host-visible buffers, kept mapped between uses and filled by
//! every core, then copied into a storage buffer by the submit that uses them.
//!
//! `queue.write_buffer` copies on one thread into a staging buffer it allocates per call; on
//! an H200 that capped a micro-batch upload at 4.4 GB/s (docs/benchmarks.md). Keeping our own
//! mapped buffer per in-flight batch avoids the allocation and page faults, and filling it in
//! parallel pieces spreads the copy over the cores.

use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::device::GpuDevice;
use crate::error::{Error, Result};

/// Bytes per piece of a parallel copy: big enough to amortise scheduling, small enough to
/// spread a 4 Mi-row column over 16 cores.
const PIECE: usize = 1 << 20;

/// Where a staging buffer's mapping stands.
#[derive(Debug)]
enum Mapping {
    Mapped,
    Pending,
    Failed(String),
}

/// A MAP_WRITE | COPY_SRC buffer that is mapped whenever no submit is using it.
#[derive(Debug)]
pub(crate) struct Staging {
    buffer: wgpu::Buffer,
    mapping: Arc<Mutex<Mapping>>,
}

impl Staging {
    /// A mapped buffer of at least `bytes` (rounded up to a multiple of 4).
    pub(crate) fn new(gpu: &GpuDevice, bytes: u64) -> Self {
        Staging {
            buffer: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("upload staging"),
                size: bytes.max(16).next_multiple_of(4),
                usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            }),
            mapping: Arc::new(Mutex::new(Mapping::Mapped)),
        }
    }

    pub(crate) fn size(&self) -> u64 {
        self.buffer.size()
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Runs `fill` on the first `bytes` of the mapping, waiting first if the mapping asked
    /// for by [`Staging::remap`] has not completed. The buffer stays mapped (a caller may
    /// fill it again) until [`Staging::release`].
    pub(crate) fn fill<R>(
        &self,
        gpu: &GpuDevice,
        bytes: u64,
        fill: impl FnOnce(wgpu::WriteOnly<'_, [u8]>) -> R,
    ) -> Result<R> {
        self.wait_mapped(gpu)?;
        let mut view = self
            .buffer
            .get_mapped_range_mut(0..bytes)
            .map_err(|e| Error::Gpu(format!("writing a micro-batch: {e}")))?;
        Ok(fill(view.slice(..)))
    }

    /// Unmaps the buffer so that the next submit may copy from it.
    pub(crate) fn release(&self) {
        self.buffer.unmap();
        if let Ok(mut m) = self.mapping.lock() {
            *m = Mapping::Pending;
        }
    }

    /// Asks for the buffer to be mapped again once the submits using it have run; call right
    /// after submitting the copy out of it.
    pub(crate) fn remap(&self) {
        let mapping = Arc::clone(&self.mapping);
        self.buffer.map_async(wgpu::MapMode::Write, .., move |r| {
            if let Ok(mut m) = mapping.lock() {
                *m = match r {
                    Ok(()) => Mapping::Mapped,
                    Err(e) => Mapping::Failed(e.to_string()),
                };
            }
        });
    }

    fn wait_mapped(&self, gpu: &GpuDevice) -> Result<()> {
        loop {
            match &*self
                .mapping
                .lock()
                .map_err(|_| Error::Internal("GPU map callback panicked".into()))?
            {
                Mapping::Mapped => return Ok(()),
                Mapping::Failed(e) => {
                    return Err(Error::Gpu(format!("mapping an upload buffer: {e}")));
                }
                Mapping::Pending => {}
            }
            gpu.wait_idle()?;
        }
    }
}

/// A piece of a mapped range that a worker thread writes.
pub(crate) struct Piece<'a>(pub wgpu::WriteOnly<'a, [u8]>);

// SAFETY: a `WriteOnly<[u8]>` is an exclusive write-only borrow of bytes, like `&mut [u8]`,
// which is `Send`; wgpu's own `Send` impl misses slices only because its type parameter is
// implicitly `Sized`. Pieces come from `split_at`, so no two alias.
unsafe impl Send for Piece<'_> {}

/// Cuts `range` into consecutive pieces of `size` bytes (the last may be shorter).
pub(crate) fn pieces(mut range: wgpu::WriteOnly<'_, [u8]>, size: usize) -> Vec<Piece<'_>> {
    let mut out = Vec::with_capacity(range.len().div_ceil(size.max(1)));
    while range.len() > size {
        let (head, tail) = range.split_at(size);
        out.push(Piece(head));
        range = tail;
    }
    if !range.is_empty() {
        out.push(Piece(range));
    }
    out
}

/// Copies `source` into `target` (of the same length) on every core.
pub(crate) fn parallel_copy(target: wgpu::WriteOnly<'_, [u8]>, source: &[u8]) {
    pieces(target, PIECE)
        .into_par_iter()
        .zip(source.par_chunks(PIECE))
        .for_each(|(mut piece, part)| piece.0.copy_from_slice(part));
}

/// Writes `values` into `target` as one 32-bit word each (`narrow` gives the word and
/// whether the value fits) on every core. Returns false when some value does not fit; the
/// target then holds garbage and must be written again.
pub(crate) fn parallel_narrow<T: Copy + Sync>(
    target: wgpu::WriteOnly<'_, [u8]>,
    values: &[T],
    narrow: impl Fn(T) -> (u32, bool) + Sync,
) -> bool {
    // Converted through a small stack buffer: a heap one per piece would page-fault.
    const RUN: usize = 2048;
    pieces(target, PIECE)
        .into_par_iter()
        .zip(values.par_chunks(PIECE / 4))
        .map(|(mut piece, part)| {
            let mut words = [0u32; RUN];
            let mut fits = true;
            for (i, run) in part.chunks(RUN).enumerate() {
                for (word, &v) in words.iter_mut().zip(run) {
                    let (w, ok) = narrow(v);
                    *word = w;
                    fits &= ok;
                }
                let at = i * RUN * 4;
                piece
                    .0
                    .slice(at..at + run.len() * 4)
                    .copy_from_slice(bytemuck::cast_slice(&words[..run.len()]));
            }
            fits
        })
        .reduce(|| true, |a, b| a && b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_copy_writes_every_byte_in_place() {
        let source: Vec<u8> = (0..3 * PIECE + 12345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut target = vec![0u8; source.len()];
        parallel_copy(wgpu::WriteOnly::from_mut(target.as_mut_slice()), &source);
        assert_eq!(target, source);
    }

    #[test]
    fn parallel_narrow_writes_words_and_reports_what_does_not_fit() {
        let values: Vec<i64> = (0..PIECE as i64).map(|i| i * 3 - 1_000).collect();
        let mut target = vec![0u8; values.len() * 4];
        let narrow = |v: i64| (v as i32 as u32, v as i32 as i64 == v);
        assert!(parallel_narrow(
            wgpu::WriteOnly::from_mut(target.as_mut_slice()),
            &values,
            narrow
        ));
        let words: Vec<i32> = bytemuck::pod_collect_to_vec(&target);
        assert!(words.iter().zip(&values).all(|(&w, &v)| i64::from(w) == v));
        let mut values = values;
        values[PIECE / 2] = i64::from(i32::MAX) + 1;
        assert!(!parallel_narrow(
            wgpu::WriteOnly::from_mut(target.as_mut_slice()),
            &values,
            narrow
        ));
    }

    #[test]
    fn pieces_cover_the_range_without_overlap() {
        let mut bytes = vec![0u8; 10];
        let cut = pieces(wgpu::WriteOnly::from_mut(bytes.as_mut_slice()), 4);
        assert_eq!(cut.iter().map(|p| p.0.len()).collect::<Vec<_>>(), [4, 4, 2]);
        for (i, mut p) in cut.into_iter().enumerate() {
            let n = p.0.len();
            p.0.copy_from_slice(&vec![i as u8 + 1; n]);
        }
        assert_eq!(bytes, [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]);
    }
}
