//! The window join: rows of both streams with equal keys in the same tumbling or hopping
//! window, emitted when the watermark closes the window.
//!
//! Both sides buffer their on-time rows. When windows close, every left row in a closing
//! window probes the right side's buffer for that window's time range, once per closing
//! window that contains it (a hopping window join pairs two rows once per window they share).
//! A left outer join emits a left row without a match (or with a null key) once per window,
//! with nulls for the right's columns; a full outer join also each right row that no left
//! row of the window matched, with nulls for the left's columns (and the keys from its own).
//! A row is late when every window containing it has closed. The joined row's event time is its window's last millisecond (`end - 1`), so
//! windows after the join see it on time.

use std::collections::HashSet;

use arrow::array::RecordBatch;

use super::{JoinSideId, StreamJoinOperator};
use crate::backend::JoinProbe;
use crate::error::{Error, Result};
use crate::operator::{Emitted, JoinKind};
use crate::window::WindowSpec;

/// The (right handle, window start) pairs a window's left rows matched.
type Matched = HashSet<(u64, i64)>;

/// A (left row, window) pair to emit: the row's place in the left store, the window start,
/// and whether its key can match.
struct Probe {
    at: (usize, usize),
    start: i64,
    valid: bool,
}

impl StreamJoinOperator {
    pub(super) fn window_arrive(
        &mut self,
        side: JoinSideId,
        batch: &RecordBatch,
        window: WindowSpec,
        out: &mut Emitted,
    ) -> Result<()> {
        let keep_null_keys = self.keeps_null_keys(side);
        let from = open_from(window, self.watermark);
        let s = side as usize;
        let mut arrival = self.sides[s].arrive(&mut self.keys, batch, from, keep_null_keys)?;
        self.late(side, arrival.late.take(), out)?;
        self.sides[s].store(arrival)
    }

    /// Whether `side` keeps rows with a null key: an outer join emits them unmatched.
    pub(super) fn keeps_null_keys(&self, side: JoinSideId) -> bool {
        matches!(
            (side, self.spec.kind),
            (JoinSideId::Left, JoinKind::Left | JoinKind::Full)
                | (JoinSideId::Right, JoinKind::Full)
        )
    }

    pub(super) fn window_close(
        &mut self,
        watermark: i64,
        window: WindowSpec,
        out: &mut Emitted,
    ) -> Result<()> {
        let size = window.size().unwrap_or(1);
        let was_open = open_from(window, self.watermark);
        let now_open = open_from(window, watermark);
        self.watermark = watermark;
        if now_open <= was_open {
            return Ok(());
        }
        // Windows starting in [was_open, now_open) close now.
        let probes = self.closing(JoinSideId::Left, window, watermark, was_open, now_open);
        let mut matched = HashSet::new();
        if !probes.is_empty() {
            let (batch, pairs) = self.emit_windows(&probes, size)?;
            out.batches.extend(batch);
            matched = pairs;
        }
        if self.spec.kind == JoinKind::Full {
            // A right row's handle: its stored batch's first handle plus its row.
            let firsts: Vec<u64> = self.sides[1].rows.batches().map(|s| s.first).collect();
            let unmatched: Vec<Probe> = self
                .closing(JoinSideId::Right, window, watermark, was_open, now_open)
                .into_iter()
                .filter(|p| {
                    let handle = firsts[p.at.0] + p.at.1 as u64;
                    !p.valid || !matched.contains(&(handle, p.start))
                })
                .collect();
            out.batches.extend(self.emit_right_alone(&unmatched, size)?);
        }
        let before = now_open;
        self.sides[0].expire(before)?;
        self.sides[1].expire(before)
    }

    /// Every (row, window) of `side` in the windows closing now (starting in `[was_open,
    /// now_open)`): several windows may close at once, so they come in window order as
    /// window aggregation emits them, each in arrival order.
    fn closing(
        &self,
        side: JoinSideId,
        window: WindowSpec,
        watermark: i64,
        was_open: i64,
        now_open: i64,
    ) -> Vec<Probe> {
        let mut probes = Vec::new();
        for (b, stored) in self.sides[side as usize].rows.batches().enumerate() {
            if stored.min_ts >= watermark || stored.max_ts < was_open {
                continue;
            }
            for (r, &ts) in stored.ts.iter().enumerate() {
                if ts >= watermark || ts < was_open {
                    continue;
                }
                let first = probes.len();
                probes.extend(
                    window
                        .last_start(ts)
                        .into_iter()
                        .flat_map(|last| window.starts_from(last, ts))
                        .filter(|&s| s >= was_open && s < now_open)
                        .map(|start| Probe {
                            at: (b, r),
                            start,
                            valid: stored.valid[r],
                        }),
                );
                probes[first..].reverse();
            }
        }
        // A stable sort: each window's rows stay in arrival order.
        probes.sort_by_key(|p| p.start);
        probes
    }

    /// A full outer join's right rows that no left row of their window matched, each with
    /// nulls for the left's columns.
    fn emit_right_alone(&self, probes: &[Probe], size: i64) -> Result<Option<RecordBatch>> {
        if probes.is_empty() {
            return Ok(None);
        }
        let [left, right] = &self.sides;
        let right_picks: Vec<Option<(usize, usize)>> = probes.iter().map(|p| Some(p.at)).collect();
        let left_picks = vec![None; probes.len()];
        let starts: Vec<i64> = probes.iter().map(|p| p.start).collect();
        let ends: Vec<i64> = starts.iter().map(|s| s.saturating_add(size)).collect();
        let time: Vec<i64> = ends.iter().map(|e| e - 1).collect();
        let batch = self.columns.build_right(
            |i| left.rows.gather(i, &left_picks),
            |i| right.rows.gather(i, &right_picks),
            Some((starts, ends)),
            time,
        )?;
        Ok(Some(batch))
    }

    /// Joins each (left row, window) with the right rows of that window; also gives the
    /// (right handle, window start) pairs that matched (for a full outer join).
    fn emit_windows(
        &mut self,
        probes: &[Probe],
        size: i64,
    ) -> Result<(Option<RecordBatch>, Matched)> {
        let [left, right] = &mut self.sides;
        let valid: Vec<usize> = (0..probes.len()).filter(|&i| probes[i].valid).collect();
        let ids: Vec<u64> = {
            let stored: Vec<_> = left.rows.batches().collect();
            valid
                .iter()
                .map(|&i| stored[probes[i].at.0].ids[probes[i].at.1])
                .collect()
        };
        let lo: Vec<i64> = valid.iter().map(|&i| probes[i].start).collect();
        let hi: Vec<i64> = lo.iter().map(|s| s.saturating_add(size - 1)).collect();
        let buffer = right
            .buffer
            .as_mut()
            .ok_or_else(|| Error::Internal("a window join's right side has no buffer".into()))?;
        let matches = buffer.probe(&JoinProbe {
            ids: &ids,
            lo: &lo,
            hi: &hi,
        })?;
        let outer = matches!(self.spec.kind, JoinKind::Left | JoinKind::Full);
        let full = self.spec.kind == JoinKind::Full;
        let mut matched = HashSet::new();
        // Output rows in probe order: each probe's matches (already in handle order), or
        // one row of nulls for an unmatched probe of a left outer join.
        let mut left_picks = Vec::new();
        let mut right_handles = Vec::new();
        let mut starts = Vec::new();
        let mut m = 0;
        let mut v = 0;
        for (i, probe) in probes.iter().enumerate() {
            let mut found = 0;
            if valid.get(v) == Some(&i) {
                while m < matches.len() && matches.probe[m] as usize == v {
                    if full {
                        matched.insert((matches.handles[m], probe.start));
                    }
                    right_handles.push(Some(matches.handles[m]));
                    m += 1;
                    found += 1;
                }
                v += 1;
            }
            if found == 0 && outer {
                right_handles.push(None);
                found = 1;
            }
            left_picks.extend(std::iter::repeat_n(Some(probe.at), found));
            starts.extend(std::iter::repeat_n(probe.start, found));
        }
        if left_picks.is_empty() {
            return Ok((None, matched));
        }
        let right_picks = right.rows.locate(right_handles.into_iter())?;
        let ends: Vec<i64> = starts.iter().map(|s| s.saturating_add(size)).collect();
        let time: Vec<i64> = ends.iter().map(|e| e - 1).collect();
        let batch = self.columns.build(
            |i| left.rows.gather(i, &left_picks),
            |i| right.rows.gather(i, &right_picks),
            Some((starts, ends)),
            time,
        )?;
        Ok((Some(batch), matched))
    }
}

/// The start of the earliest window still open at `watermark`: rows before it are in closed
/// windows only.
pub(super) fn open_from(window: WindowSpec, watermark: i64) -> i64 {
    match watermark {
        i64::MIN | i64::MAX => watermark,
        w => {
            let size = window.size().unwrap_or(1);
            let slide = window.slide().unwrap_or(1);
            // No window start fits below an i64 watermark that low: everything is open.
            window
                .last_start(w.saturating_sub(size))
                .map_or(i64::MIN, |start| start.saturating_add(slide))
        }
    }
}
