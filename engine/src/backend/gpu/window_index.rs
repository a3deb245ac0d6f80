//! Aligned windows as integer indices: window `w` is `[origin + w * slide, + size)`. The host
//! turns each row's event time into its newest window index and decides lateness; the GPU
//! only subtracts and compares indices, in 32-bit words.

use crate::window::WindowSpec;

/// Index arithmetic for one tumbling or hopping window spec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowIndex {
    size: i64,
    slide: i64,
    /// The offset reduced into `[0, slide)`: every window start is `origin + w * slide`.
    origin: i64,
    /// Windows per row at most: `ceil(size / slide)`.
    pub per_row: u32,
    /// Whether rows can belong to fewer than `per_row` windows (slide does not divide size).
    pub varying: bool,
}

/// The window indices of one micro-batch.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct IndexedRows {
    /// Newest window index per row.
    pub newest: Vec<i64>,
    /// Windows per row, only when `varying`.
    pub counts: Vec<u32>,
    /// Rows every window of which has fired, ascending.
    pub late: Vec<u32>,
    /// The smallest window index of a row that is not late (`i64::MAX` when none).
    pub lowest: i64,
}

impl WindowIndex {
    /// `None` for session windows.
    pub(crate) fn new(spec: WindowSpec) -> Option<Self> {
        let (size, slide) = (spec.size()?, spec.slide()?);
        let offset = match spec {
            WindowSpec::Tumbling { offset, .. } | WindowSpec::Hopping { offset, .. } => offset,
            WindowSpec::Session { .. } | WindowSpec::Cumulate { .. } => 0,
        };
        Some(WindowIndex {
            size,
            slide,
            origin: offset.rem_euclid(slide),
            per_row: (size + slide - 1)
                .div_euclid(slide)
                .clamp(1, i64::from(u32::MAX)) as u32,
            varying: size % slide != 0,
        })
    }

    /// The start of window `w`.
    pub(crate) fn start(&self, w: i64) -> i64 {
        self.origin.saturating_add(w.saturating_mul(self.slide))
    }

    /// The end (exclusive) of window `w`.
    pub(crate) fn end(&self, w: i64) -> i64 {
        self.start(w).saturating_add(self.size)
    }

    /// The smallest window index still open once the watermark is `fired_through`: windows
    /// ending at or before it have fired.
    pub(crate) fn first_open(&self, fired_through: i64) -> i64 {
        if fired_through == i64::MIN {
            return i64::MIN;
        }
        let last_closed =
            (i128::from(fired_through) - i128::from(self.origin) - i128::from(self.size))
                .div_euclid(i128::from(self.slide));
        (last_closed + 1).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// The newest window holding event time `t`. In i128, so that no time wraps: the quotient
    /// fits an i64 (the origin is below the slide, so with a slide of 1 it is 0).
    pub(crate) fn newest(&self, t: i64) -> i64 {
        let w = (i128::from(t) - i128::from(self.origin)).div_euclid(i128::from(self.slide));
        w.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// Indexes `ts` into `newest` and, when `varying`, `counts` (4 bytes per row; empty
    /// otherwise): write-only ranges of a mapped upload buffer. Newest windows are 8-byte
    /// indices, or with `narrow_base` 4-byte offsets from it (late rows written as 0, which
    /// the caller puts below the first open window). Returns the late rows (numbered from
    /// `first_row`), the lowest window, and whether every offset fit 32 bits. Runs in
    /// parallel chunks, each writing its own part: the host side of a GPU batch must keep up
    /// with the device.
    pub(crate) fn index_into(
        &self,
        ts: &[i64],
        first_row: usize,
        first_open: i64,
        narrow_base: Option<i64>,
        newest: wgpu::WriteOnly<'_, [u8]>,
        counts: wgpu::WriteOnly<'_, [u8]>,
    ) -> (Vec<u32>, i64, bool) {
        use super::upload::{Piece, pieces};
        use rayon::prelude::*;
        const CHUNK: usize = 1 << 16;
        // Rows indexed at a time into stack buffers (a heap buffer per chunk page-faults).
        const RUN: usize = 2048;
        let width = if narrow_base.is_some() { 4 } else { 8 };
        let chunks = ts.len().div_ceil(CHUNK);
        let mut count_pieces = pieces(counts, CHUNK * 4);
        count_pieces.resize_with(chunks, || Piece(wgpu::WriteOnly::default()));
        let parts: Vec<(Vec<u32>, i64, bool)> = ts
            .par_chunks(CHUNK)
            .zip(pieces(newest, CHUNK * width))
            .zip(count_pieces)
            .enumerate()
            .map(|(i, ((ts, mut newest_out), mut counts_out))| {
                let (mut late, mut lowest, mut fits) = (Vec::new(), i64::MAX, true);
                let mut wins = [0i64; RUN];
                let mut offsets = [0u32; RUN];
                let mut counts = [0u32; RUN];
                for (r, run) in ts.chunks(RUN).enumerate() {
                    let n = run.len();
                    let row = first_row + i * CHUNK + r * RUN;
                    let counts = &mut counts[..if self.varying { n } else { 0 }];
                    let (run_late, run_lowest) =
                        self.index_rows(run, row, first_open, &mut wins[..n], counts);
                    lowest = lowest.min(run_lowest);
                    let at = r * RUN;
                    match narrow_base {
                        Some(base) => {
                            for (o, &w) in offsets.iter_mut().zip(&wins[..n]) {
                                let off = if w < first_open {
                                    0
                                } else {
                                    w.wrapping_sub(base)
                                };
                                fits &= (0..1 << 32).contains(&off);
                                *o = off as u32;
                            }
                            newest_out
                                .0
                                .slice(at * 4..(at + n) * 4)
                                .copy_from_slice(bytemuck::cast_slice(&offsets[..n]));
                        }
                        None => newest_out
                            .0
                            .slice(at * 8..(at + n) * 8)
                            .copy_from_slice(bytemuck::cast_slice(&wins[..n])),
                    }
                    if self.varying {
                        counts_out
                            .0
                            .slice(at * 4..(at + n) * 4)
                            .copy_from_slice(bytemuck::cast_slice(counts));
                    }
                    late.extend(run_late);
                }
                (late, lowest, fits)
            })
            .collect();
        let lowest = parts.iter().map(|p| p.1).min().unwrap_or(i64::MAX);
        let fits = parts.iter().all(|p| p.2);
        (parts.into_iter().flat_map(|p| p.0).collect(), lowest, fits)
    }

    /// Indexes `ts` in one pass (the reference the parallel path is tested against).
    #[cfg(test)]
    pub(crate) fn index(&self, ts: &[i64], first_open: i64) -> IndexedRows {
        let mut newest = vec![0i64; ts.len()];
        let mut counts = vec![0u32; if self.varying { ts.len() } else { 0 }];
        let (late, lowest) = self.index_rows(ts, 0, first_open, &mut newest, &mut counts);
        IndexedRows {
            newest,
            counts,
            late,
            lowest,
        }
    }

    /// Indexes one run of rows into `newest` and `counts` (empty unless `varying`);
    /// `first_row` is the index of `ts[0]` in the batch. Returns the late rows and the lowest
    /// window of the run.
    fn index_rows(
        &self,
        ts: &[i64],
        first_row: usize,
        first_open: i64,
        newest: &mut [i64],
        counts: &mut [u32],
    ) -> (Vec<u32>, i64) {
        let (mut late, mut lowest) = (Vec::new(), i64::MAX);
        // Rows arrive nearly in time order: reuse the previous row's window when ts is in it.
        let (mut pane_start, mut pane_end, mut pane_w) = (i64::MAX, i64::MIN, 0i64);
        for (row, &t) in ts.iter().enumerate() {
            if t < pane_start || t >= pane_end {
                pane_w = self.newest(t);
                // Saturates only below i64::MIN, where `t` is less than a slide above it.
                pane_start = self.start(pane_w);
                pane_end = pane_start.saturating_add(self.slide);
            }
            newest[row] = pane_w;
            let count = if self.varying {
                let left = self.size - (t - pane_start);
                let count = (left + self.slide - 1).div_euclid(self.slide).max(1) as u32;
                counts[row] = count;
                count
            } else {
                self.per_row
            };
            if pane_w < first_open {
                late.push((first_row + row) as u32);
            } else {
                let oldest = pane_w.saturating_sub(i64::from(count) - 1).max(first_open);
                lowest = lowest.min(oldest);
            }
        }
        (late, lowest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_agree_with_the_window_starts_of_the_cpu_backend() {
        let specs = [
            WindowSpec::Tumbling {
                size: 1_000,
                offset: 250,
            },
            WindowSpec::Hopping {
                size: 3_000,
                slide: 1_000,
                offset: -400,
            },
            WindowSpec::Hopping {
                size: 2_500,
                slide: 1_000,
                offset: 0,
            },
        ];
        for spec in specs {
            let index = WindowIndex::new(spec).expect("aligned");
            let ts: Vec<i64> = (-5_000..5_000).step_by(37).collect();
            let rows = index.index(&ts, i64::MIN);
            for (row, &t) in ts.iter().enumerate() {
                let last = spec.last_start(t).expect("a window fits");
                let expected: Vec<i64> = spec.starts_from(last, t).collect();
                let count = if index.varying {
                    rows.counts[row]
                } else {
                    index.per_row
                };
                let got: Vec<i64> = (0..i64::from(count))
                    .map(|j| index.start(rows.newest[row] - j))
                    .collect();
                assert_eq!(got, expected, "{spec:?} ts {t}");
            }
        }
    }

    #[test]
    fn parallel_chunks_into_a_mapped_range_index_like_one_pass() {
        let index = WindowIndex::new(WindowSpec::Hopping {
            size: 2_500,
            slide: 1_000,
            offset: 7,
        })
        .expect("aligned");
        // Out of order, with rows both before and after the first open window.
        let ts: Vec<i64> = (0..300_000i64)
            .map(|i| (i * 7_919) % 1_000_003 - 5_000)
            .collect();
        let first_open = index.first_open(400_000);
        let whole = index.index(&ts, first_open);
        let mut newest = vec![0u8; ts.len() * 8];
        let mut counts = vec![0u8; ts.len() * 4];
        let (late, lowest, fits) = index.index_into(
            &ts,
            1_000,
            first_open,
            None,
            wgpu::WriteOnly::from_mut(newest.as_mut_slice()),
            wgpu::WriteOnly::from_mut(counts.as_mut_slice()),
        );
        assert!(fits);
        let newest: Vec<i64> = bytemuck::pod_collect_to_vec(&newest);
        let counts: Vec<u32> = bytemuck::pod_collect_to_vec(&counts);
        assert_eq!(whole.newest, newest);
        assert_eq!(whole.counts, counts);
        let late: Vec<u32> = late.iter().map(|r| r - 1_000).collect();
        assert_eq!(whole.late, late);
        assert!(!late.is_empty() && late.len() < ts.len());
        assert_eq!(whole.lowest, lowest);
    }

    #[test]
    fn narrow_offsets_add_back_to_the_newest_windows_and_late_rows_stay_below() {
        let index = WindowIndex::new(WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        })
        .expect("aligned");
        let ts: Vec<i64> = (0..200_000i64).map(|i| (i * 7_919) % 100_003).collect();
        let first_open = index.first_open(40_000);
        let base = first_open - 1;
        let whole = index.index(&ts, first_open);
        let mut offsets = vec![0u8; ts.len() * 4];
        let (late, _, fits) = index.index_into(
            &ts,
            0,
            first_open,
            Some(base),
            wgpu::WriteOnly::from_mut(offsets.as_mut_slice()),
            wgpu::WriteOnly::default(),
        );
        assert!(fits);
        assert_eq!(late, whole.late);
        let offsets: Vec<u32> = bytemuck::pod_collect_to_vec(&offsets);
        for (row, (&o, &w)) in offsets.iter().zip(&whole.newest).enumerate() {
            if late.binary_search(&(row as u32)).is_ok() {
                assert!(base + i64::from(o) < first_open, "late row {row}");
            } else {
                assert_eq!(base + i64::from(o), w, "row {row}");
            }
        }
        // A row 2^32 windows past the base does not fit.
        let far = [index.start(base + (1 << 32))];
        let mut out = [0u8; 4];
        let (_, _, fits) = index.index_into(
            &far,
            0,
            first_open,
            Some(base),
            wgpu::WriteOnly::from_mut(out.as_mut_slice()),
            wgpu::WriteOnly::default(),
        );
        assert!(!fits);
    }

    #[test]
    fn first_open_is_the_first_window_ending_after_the_watermark() {
        let index = WindowIndex::new(WindowSpec::Hopping {
            size: 2_000,
            slide: 500,
            offset: 100,
        })
        .expect("aligned");
        for watermark in [-3_001, -1, 0, 99, 100, 2_099, 2_100, 2_101, 10_000] {
            let w = index.first_open(watermark);
            assert!(
                index.end(w) > watermark && index.end(w - 1) <= watermark,
                "{watermark}"
            );
        }
        assert_eq!(index.first_open(i64::MIN), i64::MIN);
    }
}
