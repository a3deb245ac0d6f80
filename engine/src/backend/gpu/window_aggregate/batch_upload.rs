//! Lays one chunk of a micro-batch out in the `batch` buffer and fills its mapped upload
//! buffer on every core, narrowing columns to 32-bit words where every value fits.
//!
//! The upload is the GPU path's bottleneck (docs/benchmarks.md: the host writes into mapped
//! memory at about 30 GB/s on an H200), so bytes per event matter: the 1 s count/sum query
//! moves 12 bytes per event narrowed against 24 wide. Narrowing is optimistic and sticky: a
//! column is written narrow while checking; if some value does not fit, the chunk is written
//! again with that column 64-bit, and it stays 64-bit for the operator's life.

use super::*;
use crate::backend::gpu::upload::{parallel_copy, parallel_narrow};

/// Which columns are uploaded as 32-bit words.
#[derive(Debug, Clone)]
pub(crate) struct Narrow {
    /// Key ids, when all are below 2^32.
    pub keys: bool,
    /// Newest window indices, as offsets from a base, when all are within 2^32 of it.
    pub windows: bool,
    /// Per aggregate: its integer input column, when every value fits an i32.
    pub values: Vec<bool>,
}

impl Narrow {
    pub(super) fn new(aggregates: usize) -> Self {
        Narrow {
            keys: true,
            windows: true,
            values: vec![true; aggregates],
        }
    }
}

/// What did not fit 32 bits in one attempt.
#[derive(Debug, Default)]
struct Overflow {
    keys: bool,
    windows: bool,
    values: Vec<usize>,
}

impl Overflow {
    fn any(&self) -> bool {
        self.keys || self.windows || !self.values.is_empty()
    }
}

/// What fills one region of a chunk's upload.
enum Region<'a> {
    /// Bytes as they are (64-bit keys and values).
    Bytes(&'a [u8]),
    /// Bytes made for the upload (a validity bitmap padded to whole words).
    Owned(Vec<u8>),
    /// Key ids narrowed to u32.
    NarrowKeys(&'a [u64]),
    /// Aggregate `d`'s integer values narrowed to i32.
    NarrowInts(usize, &'a [i64]),
    /// Each row's newest window index, computed while writing (narrow or not).
    Windows,
    /// Each row's window count (only when the slide does not divide the size).
    Counts,
}

/// A chunk's layout: regions in buffer order with their byte lengths, the aggregate
/// descriptors, and the words it takes.
struct Layout<'a> {
    regions: Vec<(usize, Region<'a>)>,
    descs: Vec<AggDesc>,
    words: usize,
}

/// A chunk written into a slot's upload buffer.
pub(super) struct Written {
    pub descs: Vec<AggDesc>,
    pub bytes: u64,
    /// `PassParams::narrow` bits.
    pub narrow: u32,
    /// The base window narrow window offsets count from.
    pub wbase: i64,
    /// Late rows among the chunk's, numbered in the whole batch.
    pub late: Vec<u32>,
    /// The chunk's lowest open window (`i64::MAX` when none).
    pub lowest: i64,
}

impl GpuWindowAggregator {
    /// Writes rows `range` of `input` into slot `s`'s upload buffer (growing the slot's
    /// buffers as needed), leaving it unmapped for the submit that copies it.
    pub(super) fn write_chunk(
        &mut self,
        s: usize,
        input: &AggregateInput<'_>,
        range: std::ops::Range<usize>,
    ) -> Result<Written> {
        let ts = &input.ts[range.clone()];
        let first_open = self.first_open;
        // Offsets count from just below the first open window, so a late row can be written
        // as 0 (below `min_open`, skipped on the GPU); before any fire, from 2^31 below the
        // chunk's first row.
        let wbase = if first_open == i64::MIN {
            ts.first()
                .map_or(0, |&t| self.index.newest(t).saturating_sub(1 << 31))
        } else {
            first_open - 1
        };
        loop {
            let layout = self.layout(input, range.clone())?;
            let bytes = layout.words as u64 * 4;
            self.fit_slot(s, bytes, ts.len() as u64 * u64::from(self.index.per_row));
            let (index, narrow) = (self.index, self.narrow.clone());
            let device = &self.gpu.device;
            let (overflow, late, lowest) =
                self.slots[s].upload.fill(device, bytes, |mut mapped| {
                    let mut overflow = Overflow::default();
                    let (mut windows, mut counts) = (None, None);
                    for (len, region) in layout.regions {
                        let (head, tail) = mapped.split_at(len);
                        mapped = tail;
                        match region {
                            Region::Bytes(source) => parallel_copy(head, source),
                            Region::Owned(source) => parallel_copy(head, &source),
                            Region::NarrowKeys(keys) => {
                                overflow.keys =
                                    !parallel_narrow(head, keys, |k| (k as u32, k >> 32 == 0));
                            }
                            Region::NarrowInts(d, values) => {
                                if !parallel_narrow(head, values, |v| {
                                    (v as i32 as u32, v as i32 as i64 == v)
                                }) {
                                    overflow.values.push(d);
                                }
                            }
                            Region::Windows => windows = Some(head),
                            Region::Counts => counts = Some(head),
                        }
                    }
                    let (late, lowest, fits) = match windows {
                        Some(out) => index.index_into(
                            ts,
                            range.start,
                            first_open,
                            narrow.windows.then_some(wbase),
                            out,
                            counts.unwrap_or_default(),
                        ),
                        None => (Vec::new(), i64::MAX, true),
                    };
                    overflow.windows = !fits;
                    (overflow, late, lowest)
                })?;
            if overflow.any() {
                // Sticky: the next attempt (and every later chunk) writes these 64-bit.
                self.narrow.keys &= !overflow.keys;
                self.narrow.windows &= !overflow.windows;
                for d in overflow.values {
                    self.narrow.values[d] = false;
                }
                continue;
            }
            self.slots[s].upload.release();
            let narrow = u32::from(self.narrow.keys) | (u32::from(self.narrow.windows) << 1);
            return Ok(Written {
                descs: layout.descs,
                bytes,
                narrow,
                wbase,
                late,
                lowest,
            });
        }
    }

    /// Regions of rows `range` in buffer order: keys, newest windows, counts, then each
    /// input column and its validity.
    fn layout<'a>(
        &self,
        input: &AggregateInput<'a>,
        range: std::ops::Range<usize>,
    ) -> Result<Layout<'a>> {
        let rows = range.len();
        let keys = &input.keys[range.clone()];
        let mut regions: Vec<(usize, Region<'a>)> = vec![
            if self.narrow.keys {
                (4 * rows, Region::NarrowKeys(keys))
            } else {
                (8 * rows, Region::Bytes(bytemuck::cast_slice(keys)))
            },
            (
                if self.narrow.windows { 4 } else { 8 } * rows,
                Region::Windows,
            ),
        ];
        if self.index.varying {
            regions.push((4 * rows, Region::Counts));
        }
        let mut words = regions.iter().map(|r| r.0).sum::<usize>() / 4;
        let mut descs = Vec::with_capacity(self.layout.slots.len());
        for (d, (slot, column)) in self.layout.slots.iter().zip(input.columns).enumerate() {
            let mut desc = AggDesc {
                op: slot.op as u32,
                values_at: 0,
                valid_at: u32::MAX,
                acc_at: slot.acc_at,
                narrow: 0,
            };
            if slot.op.has_input() {
                desc.values_at = words as u32;
                let nulls = match column {
                    ColumnValues::Int(v, n) if self.narrow.values[d] => {
                        desc.narrow = 1;
                        regions.push((4 * rows, Region::NarrowInts(d, &v[range.clone()])));
                        *n
                    }
                    ColumnValues::Int(v, n) => {
                        regions.push((
                            8 * rows,
                            Region::Bytes(bytemuck::cast_slice(&v[range.clone()])),
                        ));
                        *n
                    }
                    ColumnValues::Float(v, n) => {
                        regions.push((
                            8 * rows,
                            Region::Bytes(bytemuck::cast_slice(&v[range.clone()])),
                        ));
                        *n
                    }
                    ColumnValues::Rows => {
                        return Err(Error::Internal(format!(
                            "{} has no input column on the GPU",
                            slot.function.name()
                        )));
                    }
                };
                words += if desc.narrow == 1 { rows } else { 2 * rows };
                if let Some(nulls) = nulls.filter(|n| n.null_count() > 0) {
                    let mut bits = nulls.inner().slice(range.start, rows).sliced().to_vec();
                    bits.resize(rows.div_ceil(32) * 4, 0);
                    desc.valid_at = words as u32;
                    words += rows.div_ceil(32);
                    regions.push((bits.len(), Region::Owned(bits)));
                }
            }
            descs.push(desc);
        }
        Ok(Layout {
            regions,
            descs,
            words,
        })
    }

    /// Grows slot `s`'s batch, upload and item buffers to hold `bytes` and `items`.
    fn fit_slot(&mut self, s: usize, bytes: u64, items: u64) {
        // Round up to a power of two so buffers are rarely re-made, but never past one
        // binding (chunk_rows keeps what is needed within it).
        let limit = self.binding_limit() & !3;
        let fit = |bytes: u64| bytes.next_power_of_two().min(limit);
        let device = &self.gpu.device;
        let slot = &mut self.slots[s];
        if bytes > slot.batch.size() {
            slot.batch = storage(device, "batch", fit(bytes));
        }
        if bytes > slot.upload.size() {
            slot.upload = Staging::new(device, fit(bytes));
        }
        if items * 4 > slot.item_slot.size() {
            slot.item_slot = storage(device, "item slots", fit(items * 4));
        }
    }
}

impl GpuWindowAggregator {
    /// Indexes rows `range` of `input`, uploads them into slot `s` and submits their first
    /// round; returns the late rows among them and their lowest open window.
    pub(super) fn submit_chunk(
        &mut self,
        s: usize,
        input: &AggregateInput<'_>,
        range: std::ops::Range<usize>,
    ) -> Result<(Vec<u32>, i64)> {
        self.drain(s)?;
        let rows = range.len();
        let begin = Instant::now();
        let written = self.write_chunk(s, input, range)?;
        profile::add(&mut self.profile, begin, |p| &mut p.fill);
        self.prepare_slot(s, &written, rows);
        self.round(s, true);
        Ok((written.late, written.lowest))
    }

    /// Records in slot `s` what the round of a chunk of `rows` just written needs.
    pub(super) fn prepare_slot(&mut self, s: usize, written: &Written, rows: usize) {
        let slot = &mut self.slots[s];
        self.gpu
            .device
            .queue
            .write_buffer(&slot.aggs, 0, bytemuck::cast_slice(&written.descs));
        // Word offsets: keys, then newest windows, then counts, each one or two words a row.
        let key_words = if written.narrow & 1 != 0 { 1 } else { 2 };
        let win_words = if written.narrow & 2 != 0 { 1 } else { 2 };
        slot.copy_bytes = written.bytes;
        slot.rows = rows as u32;
        slot.items = (rows as u64 * u64::from(self.index.per_row)) as u32;
        slot.keys_at = 0;
        slot.wins_at = (key_words * rows) as u32;
        slot.counts_at = if self.index.varying {
            ((key_words + win_words) * rows) as u32
        } else {
            0
        };
        slot.narrow = written.narrow;
        slot.wbase = written.wbase;
        slot.first_open = self.first_open;
        slot.live = true;
    }

    /// Rows per chunk: the batch buffer must fit one storage binding, items a u32.
    pub(super) fn chunk_rows(&self, input: &AggregateInput<'_>) -> usize {
        let columns = self
            .layout
            .slots
            .iter()
            .filter(|s| s.op.has_input())
            .count();
        let bytes_per_row = 16 + 4 * usize::from(self.index.varying) + 9 * columns;
        let limit = self.device().limits.max_storage_buffer_binding_size as usize;
        let by_binding = limit / bytes_per_row;
        let by_items = (limit / 4) / self.index.per_row as usize;
        let rows = by_binding
            .min(by_items)
            .min(1 << 26)
            .min(self.tuning.max_chunk_rows);
        rows.max(1).min(input.len().max(1))
    }
}
