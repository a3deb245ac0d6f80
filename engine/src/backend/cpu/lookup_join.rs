//! The build and probe of a lookup join on the CPU: build rows grouped by key id, probed in
//! parallel chunks.

use std::collections::HashMap;

use rayon::prelude::*;

use super::partition::BuildKeyHasher;
use crate::backend::{BuildGroups, JoinMatches, LookupIndex};
use crate::error::Result;

/// Probe rows per parallel chunk: below this a batch is probed on one thread.
const CHUNK: usize = 1 << 14;

/// Build rows by key id: `rows[start..start + len]` are the rows of one key, ascending.
#[derive(Debug)]
pub struct CpuLookupIndex {
    ranges: HashMap<u64, (u32, u32), BuildKeyHasher>,
    rows: Vec<u32>,
}

impl CpuLookupIndex {
    /// Indexes the build rows whose `valid` is true by their key id.
    pub fn build(ids: &[u64], valid: &[bool]) -> Self {
        let groups = BuildGroups::new(ids, valid);
        let mut ranges =
            HashMap::with_capacity_and_hasher(groups.keys.len(), BuildKeyHasher::default());
        ranges.extend(
            groups
                .keys
                .iter()
                .map(|&(id, first, count)| (id, (first, count))),
        );
        CpuLookupIndex {
            ranges,
            rows: groups.rows,
        }
    }

    fn probe_range(&self, ids: &[u64], valid: &[bool], first: usize, outer: bool) -> JoinMatches {
        let mut out = JoinMatches::default();
        for (i, (&id, &ok)) in ids.iter().zip(valid).enumerate() {
            let row = (first + i) as u32;
            let found = ok.then(|| self.ranges.get(&id)).flatten();
            match found {
                Some(&(start, len)) => {
                    let build = &self.rows[start as usize..(start + len) as usize];
                    out.probe.extend(std::iter::repeat_n(row, build.len()));
                    out.build.extend(build.iter().map(|&b| Some(b)));
                }
                None if outer => {
                    out.probe.push(row);
                    out.build.push(None);
                }
                None => {}
            }
        }
        out
    }
}

impl LookupIndex for CpuLookupIndex {
    fn probe(&self, ids: &[u64], valid: &[bool], outer: bool) -> Result<JoinMatches> {
        if ids.len() <= CHUNK {
            return Ok(self.probe_range(ids, valid, 0, outer));
        }
        let parts: Vec<JoinMatches> = ids
            .par_chunks(CHUNK)
            .zip(valid.par_chunks(CHUNK))
            .enumerate()
            .map(|(c, (ids, valid))| self.probe_range(ids, valid, c * CHUNK, outer))
            .collect();
        let mut out = JoinMatches::default();
        for part in parts {
            out.probe.extend(part.probe);
            out.build.extend(part.build);
        }
        Ok(out)
    }

    fn build_rows(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_match_in_probe_then_build_order_and_nulls_never_match() {
        // Build: key 7 at rows 0 and 3, key 9 at row 1, a null key at row 2.
        let index = CpuLookupIndex::build(&[7, 9, 7, 7], &[true, true, false, true]);
        assert_eq!(index.build_rows(), 3);
        let ids = [9, 7, 5, 7];
        let valid = [true, true, true, false];
        let inner = index.probe(&ids, &valid, false).expect("probe");
        assert_eq!(inner.probe, vec![0, 1, 1]);
        assert_eq!(inner.build, vec![Some(1), Some(0), Some(3)]);
        let outer = index.probe(&ids, &valid, true).expect("probe");
        assert_eq!(outer.probe, vec![0, 1, 1, 2, 3]);
        assert_eq!(outer.build, vec![Some(1), Some(0), Some(3), None, None]);
    }

    #[test]
    fn chunked_probes_equal_one_pass() {
        let build: Vec<u64> = (0..1_000).map(|i| i % 300).collect();
        let index = CpuLookupIndex::build(&build, &vec![true; build.len()]);
        let ids: Vec<u64> = (0..3 * CHUNK as u64 + 17).map(|i| (i * 7) % 400).collect();
        let valid: Vec<bool> = (0..ids.len()).map(|i| i % 11 != 0).collect();
        for outer in [false, true] {
            let whole = index.probe_range(&ids, &valid, 0, outer);
            let chunked = index.probe(&ids, &valid, outer).expect("probe");
            assert_eq!((whole.probe, whole.build), (chunked.probe, chunked.build));
        }
    }
}
