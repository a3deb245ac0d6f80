//! The interval join: `left.ts BETWEEN right.ts - lower AND right.ts + upper` on equal keys.
//!
//! An arriving row probes the other side's buffer and the pairs are emitted at once, so each
//! pair appears exactly once: when its later row arrives. A row is late when its event time
//! is below the watermark (it could miss pairs whose partner has expired). A left row can
//! match no future right row once `ts + lower < watermark`, a right row once
//! `ts + upper < watermark`; that is when they expire. The joined row's event time is the
//! later of the two.

use arrow::array::UInt32Array;
use arrow::compute::take;

use super::{JoinSideId, StreamJoinOperator};
use crate::backend::JoinProbe;
use crate::error::{Error, Result};
use crate::operator::Emitted;

impl StreamJoinOperator {
    pub(super) fn interval_arrive(
        &mut self,
        side: JoinSideId,
        batch: &arrow::array::RecordBatch,
        lower: i64,
        upper: i64,
        out: &mut Emitted,
    ) -> Result<()> {
        let s = side as usize;
        let mut arrival = self.sides[s].arrive(&mut self.keys, batch, self.watermark, false)?;
        self.late(side, arrival.late.take(), out)?;
        if arrival.rows.num_rows() == 0 {
            return Ok(());
        }
        // A left row probes right rows in [ts - upper, ts + lower]; a right row, left rows in
        // [ts - lower, ts + upper].
        let (before, after) = match side {
            JoinSideId::Left => (upper, lower),
            JoinSideId::Right => (lower, upper),
        };
        let lo: Vec<i64> = arrival
            .ts
            .iter()
            .map(|t| t.saturating_sub(before))
            .collect();
        let hi: Vec<i64> = arrival.ts.iter().map(|t| t.saturating_add(after)).collect();
        let other = &mut self.sides[1 - s];
        let buffer = other
            .buffer
            .as_mut()
            .ok_or_else(|| Error::Internal("an interval join side has no buffer".into()))?;
        let matches = buffer.probe(&JoinProbe {
            ids: &arrival.ids,
            lo: &lo,
            hi: &hi,
        })?;
        if !matches.is_empty() {
            let other = &self.sides[1 - s];
            let picks = other
                .rows
                .locate(matches.handles.iter().map(|&h| Some(h)))?;
            let other_ts = other.rows.ts_at(&picks);
            let time: Vec<i64> = matches
                .probe
                .iter()
                .zip(&other_ts)
                .map(|(&p, &t)| arrival.ts[p as usize].max(t))
                .collect();
            let indices = UInt32Array::from(matches.probe);
            let here = |i: usize| {
                take(arrival.rows.column(i), &indices, None)
                    .map_err(Error::arrow("gathering joined rows"))
            };
            let there = |i: usize| other.rows.gather(i, &picks);
            let joined = match side {
                JoinSideId::Left => self.columns.build(here, there, None, time)?,
                JoinSideId::Right => self.columns.build(there, here, None, time)?,
            };
            out.batches.push(joined);
        }
        self.sides[s].store(arrival)
    }
}
