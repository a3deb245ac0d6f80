//! One side of a stream join on the CPU: buffered rows in event-time buckets, each a hash map
//! from key id to a chain of the key's (event time, handle) entries; probed in parallel chunks.
//!
//! Buckets are as wide as the join's granularity (the interval's width, or the window slide),
//! so a probe touches two or three of them, and expiry drops whole buckets: a bucket goes once
//! every time it covers is below the expiry bound.
//!
//! A bucket keeps each key's first row inline in its map entry and chains the key's later
//! rows through one array in insertion (handle) order. Inserting is one map lookup and at
//! most a push, with no allocation per key, and expiring a bucket frees two allocations. A
//! probe of a key with one row here (the usual case when one side is sparse, like logins
//! against transactions) reads one map entry and nothing else. A map from key to its own
//! vector of rows spent most of the interval-join workload's insert and expiry time growing
//! and freeing those vectors, and its probes a second cache miss per key
//! (docs/benchmarks.md, "Stream joins").

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use super::partition::BuildKeyHasher;
use crate::backend::{BufferMatches, JoinBuffer, JoinProbe};
use crate::error::{Error, Result};

/// Probe rows per parallel chunk: below this a probe runs on one thread.
const CHUNK: usize = 1 << 13;

/// The end of a key's chain.
const END: u32 = u32::MAX;

/// Buffered rows of one join side, bucketed by event time.
#[derive(Debug)]
pub struct CpuJoinBuffer {
    width: i64,
    buckets: BTreeMap<i64, Bucket>,
    rows: usize,
    next: u64,
    pool: Option<Arc<rayon::ThreadPool>>,
}

/// The rows of one bucket by key id, each key's in handle order.
#[derive(Debug, Default)]
struct Bucket {
    keys: HashMap<u64, Chain, BuildKeyHasher>,
    /// Every key's rows after its first, each linking to the key's next.
    later: Vec<Row>,
    rows: usize,
}

/// A key's rows in a bucket: the first inline, the others in [`Bucket::later`].
#[derive(Debug, Clone, Copy)]
struct Chain {
    first: Row,
    /// The key's last row in `later` ([`END`]: it has one row).
    last: u32,
}

/// One buffered row.
#[derive(Debug, Clone, Copy)]
struct Row {
    ts: i64,
    handle: u64,
    /// The key's next row in [`Bucket::later`], or [`END`].
    next: u32,
}

impl Bucket {
    /// Appends a row; fails when the bucket already holds `u32::MAX` later rows.
    fn push(&mut self, id: u64, ts: i64, handle: u64) -> Result<()> {
        let row = Row {
            ts,
            handle,
            next: END,
        };
        let chain = match self.keys.entry(id) {
            MapEntry::Vacant(vacant) => {
                vacant.insert(Chain {
                    first: row,
                    last: END,
                });
                self.rows += 1;
                return Ok(());
            }
            MapEntry::Occupied(occupied) => occupied.into_mut(),
        };
        let at = u32::try_from(self.later.len())
            .ok()
            .filter(|&at| at != END)
            .ok_or_else(|| {
                Error::Internal(format!(
                    "a join buffer bucket holds {} rows, the most it can",
                    self.rows
                ))
            })?;
        self.later.push(row);
        match chain.last {
            END => chain.first.next = at,
            last => self.later[last as usize].next = at,
        }
        chain.last = at;
        self.rows += 1;
        Ok(())
    }

    /// Pushes the handles of key `id`'s rows within `[lo, hi]`, in handle order; returns
    /// whether the key has rows here.
    #[inline]
    fn find(&self, id: u64, lo: i64, hi: i64, out: &mut Vec<u64>) -> bool {
        let Some(chain) = self.keys.get(&id) else {
            return false;
        };
        let mut row = &chain.first;
        loop {
            if lo <= row.ts && row.ts <= hi {
                out.push(row.handle);
            }
            match row.next {
                END => return true,
                next => row = &self.later[next as usize],
            }
        }
    }
}

impl CpuJoinBuffer {
    /// An empty buffer whose buckets span `granularity` ms (at least 1); probes run on `pool`
    /// when given, else on Rayon's global threads.
    pub fn new(granularity: i64, pool: Option<Arc<rayon::ThreadPool>>) -> Self {
        CpuJoinBuffer {
            width: granularity.max(1),
            buckets: BTreeMap::new(),
            rows: 0,
            next: 0,
            pool,
        }
    }

    fn probe_rows(&self, probe: &JoinProbe<'_>, first: usize, out: &mut BufferMatches) {
        // Most probes find about one row: reserve that much once rather than grow per row.
        out.handles.reserve(probe.len());
        out.probe.reserve(probe.len());
        // Consecutive probe rows mostly ask for the same buckets: look them up once per run.
        let mut span = (1, 0);
        let mut buckets: Vec<&Bucket> = Vec::new();
        for i in 0..probe.len() {
            let (id, lo, hi) = (probe.ids[i], probe.lo[i], probe.hi[i]);
            if lo > hi {
                continue;
            }
            let wanted = (lo.div_euclid(self.width), hi.div_euclid(self.width));
            if wanted != span {
                span = wanted;
                buckets.clear();
                buckets.extend(self.buckets.range(span.0..=span.1).map(|(_, b)| b));
            }
            let start = out.handles.len();
            let mut found_in = 0;
            for bucket in &buckets {
                found_in += usize::from(bucket.find(id, lo, hi, &mut out.handles));
            }
            // Each bucket lists its rows in handle order; rows from several buckets interleave.
            if found_in > 1 {
                out.handles[start..].sort_unstable();
            }
            let found = out.handles.len() - start;
            out.probe
                .extend(std::iter::repeat_n((first + i) as u32, found));
        }
    }

    fn probe_all(&self, probe: &JoinProbe<'_>) -> BufferMatches {
        if probe.len() <= CHUNK {
            let mut out = BufferMatches::default();
            self.probe_rows(probe, 0, &mut out);
            return out;
        }
        let parts: Vec<BufferMatches> = (0..probe.len().div_ceil(CHUNK))
            .into_par_iter()
            .map(|c| {
                let range = c * CHUNK..((c + 1) * CHUNK).min(probe.len());
                let chunk = JoinProbe {
                    ids: &probe.ids[range.clone()],
                    lo: &probe.lo[range.clone()],
                    hi: &probe.hi[range],
                };
                let mut out = BufferMatches::default();
                self.probe_rows(&chunk, c * CHUNK, &mut out);
                out
            })
            .collect();
        let total = parts.iter().map(BufferMatches::len).sum();
        let mut out = BufferMatches {
            probe: Vec::with_capacity(total),
            handles: Vec::with_capacity(total),
        };
        for part in parts {
            out.probe.extend(part.probe);
            out.handles.extend(part.handles);
        }
        out
    }
}

impl JoinBuffer for CpuJoinBuffer {
    fn insert(&mut self, ids: &[u64], ts: &[i64]) -> Result<()> {
        let mut last: Option<(i64, &mut Bucket)> = None;
        for (&id, &t) in ids.iter().zip(ts) {
            let b = t.div_euclid(self.width);
            let bucket = match last.take() {
                Some((at, bucket)) if at == b => bucket,
                _ => self.buckets.entry(b).or_default(),
            };
            bucket.push(id, t, self.next)?;
            self.next += 1;
            self.rows += 1;
            last = Some((b, bucket));
        }
        Ok(())
    }

    fn probe(&mut self, probe: &JoinProbe<'_>) -> Result<BufferMatches> {
        probe.check()?;
        Ok(super::in_pool(&self.pool, || self.probe_all(probe)))
    }

    fn expire(&mut self, before: i64) -> Result<()> {
        // Bucket b covers [b·w, (b+1)·w): all of it is below `before` when b < ⌊before / w⌋.
        let kept = self.buckets.split_off(&before.div_euclid(self.width));
        let dropped = std::mem::replace(&mut self.buckets, kept);
        self.rows -= dropped.values().map(|b| b.rows).sum::<usize>();
        Ok(())
    }

    fn rows(&self) -> usize {
        self.rows
    }

    fn next_handle(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(buffer: &mut CpuJoinBuffer, rows: &[(u64, i64, i64)]) -> Result<Vec<(u32, u64)>> {
        let ids: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let lo: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let hi: Vec<i64> = rows.iter().map(|r| r.2).collect();
        let found = buffer.probe(&JoinProbe {
            ids: &ids,
            lo: &lo,
            hi: &hi,
        })?;
        Ok(found.probe.into_iter().zip(found.handles).collect())
    }

    #[test]
    fn finds_equal_keys_within_the_range_in_handle_order() -> Result<()> {
        let mut buffer = CpuJoinBuffer::new(10, None);
        // handles:        0   1   2   3   4
        buffer.insert(&[7, 7, 8, 7, 7], &[5, 25, 6, 12, 9])?;
        // Key 7 within [5, 12]: handles 0 (5), 3 (12), 4 (9); key 8 within [0, 5]: none;
        // key 9: none; an empty range: none.
        assert_eq!(
            probe(
                &mut buffer,
                &[(7, 5, 12), (8, 0, 5), (9, 0, 100), (7, 10, 9)]
            )?,
            vec![(0, 0), (0, 3), (0, 4)]
        );
        assert_eq!(buffer.rows(), 5);
        assert_eq!(buffer.next_handle(), 5);
        Ok(())
    }

    #[test]
    fn expiry_drops_only_buckets_wholly_below_the_bound() -> Result<()> {
        let mut buffer = CpuJoinBuffer::new(10, None);
        buffer.insert(&[1, 1, 1, 1], &[-3, 4, 15, 30])?;
        buffer.expire(15)?;
        // Buckets [-10, 0) and [0, 10) went; [10, 20) stays though 15 is its only row.
        assert_eq!(buffer.rows(), 2);
        assert_eq!(
            probe(&mut buffer, &[(1, i64::MIN, i64::MAX)])?,
            vec![(0, 2), (0, 3)]
        );
        buffer.expire(i64::MAX)?;
        assert_eq!(buffer.rows(), 0);
        // Handles keep counting after expiry.
        buffer.insert(&[1], &[100])?;
        assert_eq!(probe(&mut buffer, &[(1, 100, 100)])?, vec![(0, 4)]);
        Ok(())
    }

    #[test]
    fn parallel_chunks_agree_with_one_pass() -> Result<()> {
        let mut buffer = CpuJoinBuffer::new(50, None);
        let ids: Vec<u64> = (0..40_000u64).map(|i| i * 7919 % 97).collect();
        let ts: Vec<i64> = (0..40_000i64).map(|i| (i * 31) % 5_000 - 2_500).collect();
        buffer.insert(&ids, &ts)?;
        let lo: Vec<i64> = ts.iter().map(|t| t - 20).collect();
        let hi: Vec<i64> = ts.iter().map(|t| t + 35).collect();
        let probe = JoinProbe {
            ids: &ids,
            lo: &lo,
            hi: &hi,
        };
        let parallel = buffer.probe(&probe)?;
        let mut single = BufferMatches::default();
        buffer.probe_rows(&probe, 0, &mut single);
        assert_eq!(parallel, single);
        // Brute force over the same rows.
        let mut brute = 0usize;
        for i in 0..2_000 {
            brute += (0..ids.len())
                .filter(|&j| ids[j] == ids[i] && (lo[i]..=hi[i]).contains(&ts[j]))
                .count();
        }
        let counted = parallel.probe.iter().filter(|&&p| p < 2_000).count();
        assert_eq!(counted, brute);
        Ok(())
    }
}
