//! Column kernels shared by the generators: each fills one Arrow column in one tight loop.
//!
//! A batch covers the events `first, first + step, first + 2 step, ...` (one partition's share of
//! the global event indices). Every value is a pure function of the seed, its column and the
//! event's global index, so no kernel depends on another's state or on the batch size.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};

use super::rng::{Stream, below};
use super::zipf::ZipfTable;

/// The global event indices of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Global index of the batch's first event.
    pub first: u64,
    /// Distance between consecutive events of the partition (the partition count).
    pub step: u64,
    /// Number of events.
    pub len: usize,
}

impl Span {
    /// The global index of the batch's `k`-th event.
    #[inline(always)]
    pub fn index(&self, k: usize) -> u64 {
        self.first + k as u64 * self.step
    }
}

/// Fills `len` values from the random bits of each event of `span` in `stream`.
#[inline(always)]
pub fn fill<T>(span: Span, stream: Stream, mut value: impl FnMut(u64) -> T) -> Vec<T> {
    (0..span.len)
        .map(|k| value(stream.bits(span.index(k))))
        .collect()
}

/// Event times: `start + floor(i * 1000 / rate) - uniform(0..=disorder)` ms for event `i`.
///
/// The base time advances by an exact quotient and remainder per event instead of a division per
/// event, which keeps the loop at a few cycles per row.
pub fn event_times(
    span: Span,
    start_ms: i64,
    rate: u64,
    disorder_ms: u64,
    stream: Stream,
) -> Vec<i64> {
    let rate = u128::from(rate.max(1));
    let first = u128::from(span.first) * 1000;
    let step = u128::from(span.step) * 1000;
    // Quotients fit i64 for any index below 9e18 / 1000 * rate; beyond that time wraps.
    let (mut q, mut r) = ((first / rate) as i64, (first % rate) as u64);
    let (dq, dr, rate) = ((step / rate) as i64, (step % rate) as u64, rate as u64);
    let mut times = Vec::with_capacity(span.len);
    for _ in 0..span.len {
        times.push(start_ms.wrapping_add(q));
        q = q.wrapping_add(dq);
        r += dr;
        if r >= rate {
            r -= rate;
            q = q.wrapping_add(1);
        }
    }
    if disorder_ms > 0 {
        let width = disorder_ms + 1;
        for (k, t) in times.iter_mut().enumerate() {
            *t -= below(stream.bits(span.index(k)), width) as i64;
        }
    }
    times
}

/// Keys in `1..=count`, uniform or Zipf-distributed (key 1 hottest) when a table is given.
pub fn keys(span: Span, count: u64, zipf: Option<&ZipfTable>, stream: Stream) -> Vec<i64> {
    match zipf {
        Some(table) => fill(span, stream, |bits| table.sample(bits) as i64 + 1),
        None => fill(span, stream, |bits| below(bits, count) as i64 + 1),
    }
}

/// Uniform integers in `low..low + count`.
pub fn uniform(span: Span, low: i64, count: u64, stream: Stream) -> Vec<i64> {
    fill(span, stream, |bits| low + below(bits, count) as i64)
}

/// Wraps values as a UTC millisecond timestamp column without copying.
pub fn timestamp_column(values: Vec<i64>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::new(ScalarBuffer::from(values), None).with_timezone("UTC"))
}

/// Wraps values as an `Int64` column without copying.
pub fn int64_column(values: Vec<i64>) -> ArrayRef {
    Arc::new(Int64Array::new(ScalarBuffer::from(values), None))
}

/// Wraps values as a `Float64` column without copying.
pub fn float64_column(values: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::new(ScalarBuffer::from(values), None))
}

/// A categorical string column drawn from a few short values with weights out of 256.
#[derive(Debug, Clone)]
pub struct Categories {
    /// Each value's bytes, zero-padded to 8, so that every row copies a fixed 8 bytes (one
    /// store) and advances by the value's real length; the next row overwrites the padding.
    padded: Vec<[u8; 8]>,
    lengths: Vec<usize>,
    /// For each top byte of the random bits, the index of the value it selects.
    by_byte: [u8; 256],
}

impl Categories {
    /// `weights[v]` of 256 select `values[v]`; the weights must sum to 256 and values be at most
    /// 8 bytes (longer ones are cut).
    pub fn new(values: &[&str], weights: &[u16]) -> Self {
        debug_assert_eq!(weights.iter().sum::<u16>(), 256, "weights must sum to 256");
        let mut by_byte = [0u8; 256];
        let mut next = 0usize;
        for (v, &w) in weights.iter().enumerate() {
            for slot in by_byte.iter_mut().skip(next).take(usize::from(w)) {
                *slot = v as u8;
            }
            next += usize::from(w);
        }
        let mut padded = Vec::with_capacity(values.len());
        let mut lengths = Vec::with_capacity(values.len());
        for value in values {
            let mut bytes = [0u8; 8];
            let len = value.floor_char_boundary(8);
            bytes[..len].copy_from_slice(&value.as_bytes()[..len]);
            padded.push(bytes);
            lengths.push(len);
        }
        Categories {
            padded,
            lengths,
            by_byte,
        }
    }

    /// The column for `span`: offsets and bytes are written directly, no `String` per row.
    pub fn column(&self, span: Span, stream: Stream) -> ArrayRef {
        let max_len = self.lengths.iter().copied().max().unwrap_or(0);
        let mut offsets = vec![0i32; span.len + 1];
        let mut bytes = vec![0u8; span.len * max_len + 8];
        let mut end = 0usize;
        for k in 0..span.len {
            let v = usize::from(self.by_byte[(stream.bits(span.index(k)) >> 56) as usize]);
            bytes[end..end + 8].copy_from_slice(&self.padded[v]);
            end += self.lengths[v];
            offsets[k + 1] = end as i32;
        }
        bytes.truncate(end);
        // Offsets stay below i32::MAX for any batch under 256 M rows; `new` re-checks them and
        // the UTF-8 once per batch.
        Arc::new(StringArray::new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(bytes),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;

    #[test]
    fn event_times_follow_the_rate_exactly_per_partition() {
        // Rate 3 events/s: event i is due at floor(i * 1000 / 3) ms; partition 1 of 2 owns 1, 3, 5, 7.
        let span = Span {
            first: 1,
            step: 2,
            len: 4,
        };
        let times = event_times(span, 1_000, 3, 0, Stream::new(0, 0));
        assert_eq!(times, vec![1_333, 2_000, 2_666, 3_333]);
    }

    #[test]
    fn disorder_only_moves_events_back_and_at_most_the_bound() {
        let span = Span {
            first: 0,
            step: 1,
            len: 10_000,
        };
        let base = event_times(span, 0, 1_000, 0, Stream::new(1, 0));
        let late = event_times(span, 0, 1_000, 50, Stream::new(1, 0));
        let lags: Vec<i64> = base.iter().zip(&late).map(|(b, t)| b - t).collect();
        assert!(lags.iter().all(|lag| (0..=50).contains(lag)));
        assert_eq!(lags.iter().max(), Some(&50));
        assert_eq!(lags.iter().min(), Some(&0));
    }

    #[test]
    fn categories_respect_weights_and_build_valid_strings() {
        let cats = Categories::new(&["pos", "online", "atm"], &[128, 64, 64]);
        let column = cats.column(
            Span {
                first: 0,
                step: 1,
                len: 20_000,
            },
            Stream::new(5, 9),
        );
        let strings = column.as_any().downcast_ref::<StringArray>().expect("utf8");
        let online = strings.iter().filter(|s| *s == Some("online")).count();
        assert_eq!(strings.len(), 20_000);
        // Expect a quarter (5 000); six standard deviations is about 370.
        assert!((4_630..=5_370).contains(&online), "{online}");
        assert!(
            strings
                .iter()
                .all(|s| matches!(s, Some("pos" | "online" | "atm")))
        );
    }
}
