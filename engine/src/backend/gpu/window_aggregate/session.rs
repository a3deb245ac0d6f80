//! Session windows on the GPU (`shaders/sessions.wgsl` explains the model): rows go to
//! buckets `(key, floor(ts / gap))`, tumbling windows of the same group table whose
//! accumulators end with the min and max event time; `session_late` finds late rows against
//! the buckets open before the batch; `session_fire` folds runs of connected buckets into
//! sessions and closes those that end by the watermark.

use super::*;
use crate::aggregate::{AggregateFunction, NumericKind};
use crate::backend::AggregatePlan;
use crate::window::WindowSpec;
use arrow::buffer::NullBuffer;

/// What a session operator adds to the tumbling machinery.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionMode {
    pub gap: i64,
    /// The user's aggregates (the two event-time ones follow them).
    pub aggregates: usize,
    /// Accumulator word of a bucket's min event time; its max is 4 words later.
    pub ts_at: u32,
}

impl SessionMode {
    /// For a session plan: the mode, the bucket plan (the user's aggregates, then min and max
    /// of the event time), and the buckets as tumbling windows of `gap`.
    pub(super) fn new(plan: &WindowAggregatePlan) -> Option<(Self, WindowAggregatePlan)> {
        let WindowSpec::Session { gap } = plan.window else {
            return None;
        };
        let mut aggregates = plan.aggregates.clone();
        for function in [AggregateFunction::Min, AggregateFunction::Max] {
            aggregates.push(AggregatePlan {
                function,
                input: Some(NumericKind::Int),
            });
        }
        let buckets = WindowAggregatePlan {
            window: WindowSpec::Tumbling {
                size: gap,
                offset: 0,
            },
            aggregates,
        };
        let mode = SessionMode {
            gap,
            aggregates: plan.aggregates.len(),
            ts_at: 0,
        };
        Some((mode, buckets))
    }
}

impl GpuWindowAggregator {
    /// Accumulates a session batch: its columns plus the event time twice (min and max).
    pub(super) fn accumulate_sessions(
        &mut self,
        mode: SessionMode,
        input: &AggregateInput<'_>,
    ) -> Result<Vec<u32>> {
        let mut columns = input.columns.to_vec();
        columns.extend([ColumnValues::Int(input.ts, None); 2]);
        let input = AggregateInput {
            keys: input.keys,
            ts: input.ts,
            columns: &columns,
        };
        input.check(&self.plan)?;
        if input.is_empty() {
            return Ok(Vec::new());
        }
        let fired = self.fired_through;
        let behind = |ts: &[i64]| {
            fired != i64::MIN && ts.iter().any(|&t| t.saturating_add(mode.gap) <= fired)
        };
        let chunk = self.chunk_rows(&input);
        if input.len() > chunk && behind(input.ts) {
            // Every chunk's late rows must be judged before any chunk is applied: find them
            // all first, then apply the rest.
            let late = self.late_in_chunks(mode, &input, chunk)?;
            let kept = Kept::without(&input, &late);
            let columns = kept.columns();
            let rest = AggregateInput {
                keys: &kept.keys,
                ts: &kept.ts,
                columns: &columns,
            };
            self.apply_chunks(mode, &rest, chunk, |_| false)?;
            return Ok(late);
        }
        self.apply_chunks(mode, &input, chunk, behind)
    }

    /// Uploads and applies `input` chunk by chunk; a chunk for which `check` says some rows
    /// may be late runs `session_late` first. Returns the late rows.
    fn apply_chunks(
        &mut self,
        mode: SessionMode,
        input: &AggregateInput<'_>,
        chunk: usize,
        check: impl Fn(&[i64]) -> bool,
    ) -> Result<Vec<u32>> {
        let mut late = Vec::new();
        let mut start = 0;
        while start < input.len() {
            let end = (start + chunk).min(input.len());
            let s = self.next_slot;
            self.drain(s)?;
            let candidates = check(&input.ts[start..end]);
            let written = self.write_chunk(s, input, start..end)?;
            self.lowest_window = self.lowest_window.min(written.lowest);
            self.prepare_slot(s, &written, end - start);
            if candidates {
                // Judged against everything before the batch: the other slot's leftovers too.
                self.drain(s ^ 1)?;
                let rows = self.late_sessions(s, mode)?;
                late.extend(rows.into_iter().map(|r| r + start as u32));
                self.round(s, false);
            } else {
                self.round(s, true);
            }
            self.next_slot ^= 1;
            start = end;
        }
        late.sort_unstable();
        Ok(late)
    }

    /// The late rows of a batch too large for one chunk, each chunk judged against the table
    /// as it was before the batch (nothing is applied).
    fn late_in_chunks(
        &mut self,
        mode: SessionMode,
        input: &AggregateInput<'_>,
        chunk: usize,
    ) -> Result<Vec<u32>> {
        self.drain_both()?;
        let mut late = Vec::new();
        let mut start = 0;
        while start < input.len() {
            let end = (start + chunk).min(input.len());
            let s = self.next_slot;
            let written = self.write_chunk(s, input, start..end)?;
            self.prepare_slot(s, &written, end - start);
            let rows = self.late_sessions(s, mode)?;
            late.extend(rows.into_iter().map(|r| r + start as u32));
            // Its items were never assigned: nothing for a table growth to follow.
            self.slots[s].live = false;
            self.next_slot ^= 1;
            start = end;
        }
        late.sort_unstable();
        Ok(late)
    }

    /// Copies slot `s`'s batch into place and runs `session_late` on it, waiting for the
    /// late rows (only batches with rows behind the watermark by a gap or more get here).
    fn late_sessions(&mut self, s: usize, mode: SessionMode) -> Result<Vec<u32>> {
        let rows = self.slots[s].rows;
        if u64::from(rows) * 4 > self.late.size() {
            self.late = storage(
                self.device(),
                "late rows",
                u64::from(rows).next_power_of_two() * 4,
            );
        }
        let slot = &self.slots[s];
        let params = PassParams {
            rows,
            items: rows,
            per_row: 1,
            keys_at: slot.keys_at,
            wins_at: slot.wins_at,
            narrow: slot.narrow,
            wbase_lo: slot.wbase as u64 as u32,
            wbase_hi: ((slot.wbase as u64) >> 32) as u32,
            min_open_lo: self.fired_through as u64 as u32,
            min_open_hi: ((self.fired_through as u64) >> 32) as u32,
            ..self.session_params(mode)
        };
        self.write_params(LATE_BLOCK, &params);
        self.reset_counters(C_LATE, 1);
        let slot = &self.slots[s];
        let mut encoder = self.encoder("session late rows");
        encoder.copy_buffer_to_buffer(slot.upload.buffer(), 0, &slot.batch, 0, slot.copy_bytes);
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.dispatch(
                &mut pass,
                Kernel::SessionLate,
                LATE_BLOCK,
                &[
                    &slot.batch,
                    &self.groups.keys.buffer,
                    &self.groups.acc,
                    &slot.item_slot,
                    &self.counters,
                    &slot.aggs,
                    &self.late,
                ],
                rows,
            );
        }
        self.device().queue.submit([encoder.finish()]);
        self.slots[s].upload.remap();
        self.slots[s].copy_bytes = 0;
        let counters = read_back(
            self.device(),
            &self.counters,
            &self.counters_staging,
            COUNTERS * 4,
        )?;
        let count = counters[C_LATE];
        if count == 0 {
            return Ok(Vec::new());
        }
        let bytes = u64::from(count) * 4;
        self.fit_out_staging(bytes);
        match &self.out_staging {
            Some(out_staging) => read_back(self.device(), &self.late, out_staging, bytes),
            None => Err(Error::Internal("no staging buffer for late rows".into())),
        }
    }

    /// Parameters every session pass shares.
    pub(super) fn session_params(&self, mode: SessionMode) -> PassParams {
        PassParams {
            gap_lo: mode.gap as u64 as u32,
            gap_hi: ((mode.gap as u64) >> 32) as u32,
            ts_at: mode.ts_at,
            n_aggs: (mode.aggregates + 2) as u32,
            ..self.base_params()
        }
    }

    /// Closes the sessions that end at or before `watermark`.
    pub(super) fn fire_sessions(&mut self, watermark: i64) -> Result<ClosedWindows> {
        if watermark <= self.fired_through {
            return Ok(ClosedWindows::default());
        }
        self.fired_through = watermark;
        // A session ends a gap or more after the start of its first bucket.
        if self.lowest_window == i64::MAX || watermark < self.index.end(self.lowest_window) {
            return Ok(ClosedWindows::default());
        }
        self.drain_both()?;
        if self.occupied == 0 {
            self.lowest_window = i64::MAX;
            return Ok(ClosedWindows::default());
        }
        let capacity = self.capacity_for_fire("session buckets")?;
        let swept = self.rebuild(capacity, true)?;
        if self.occupied == 0 {
            self.lowest_window = i64::MAX;
        }
        self.read_closed(swept)
    }
}

/// The rows of an input that are not late, owned (the rare path of a batch that needs several
/// chunks and has rows behind the watermark).
struct Kept {
    keys: Vec<u64>,
    ts: Vec<i64>,
    columns: Vec<KeptColumn>,
}

enum KeptColumn {
    Rows,
    Int(Vec<i64>, Option<NullBuffer>),
    Float(Vec<f64>, Option<NullBuffer>),
}

impl Kept {
    /// `input` without rows `late` (ascending).
    fn without(input: &AggregateInput<'_>, late: &[u32]) -> Self {
        let mut late_rows = late.iter().copied().peekable();
        let kept: Vec<usize> = (0..input.len())
            .filter(|&row| late_rows.next_if_eq(&(row as u32)).is_none())
            .collect();
        let pick = |values: &[i64]| kept.iter().map(|&r| values[r]).collect::<Vec<_>>();
        let nulls = |n: Option<&NullBuffer>| {
            n.map(|n| NullBuffer::from(kept.iter().map(|&r| n.is_valid(r)).collect::<Vec<_>>()))
        };
        let columns = input
            .columns
            .iter()
            .map(|column| match column {
                ColumnValues::Rows => KeptColumn::Rows,
                ColumnValues::Int(v, n) => KeptColumn::Int(pick(v), nulls(*n)),
                ColumnValues::Float(v, n) => {
                    KeptColumn::Float(kept.iter().map(|&r| v[r]).collect(), nulls(*n))
                }
            })
            .collect();
        Kept {
            keys: kept.iter().map(|&r| input.keys[r]).collect(),
            ts: pick(input.ts),
            columns,
        }
    }

    fn columns(&self) -> Vec<ColumnValues<'_>> {
        self.columns
            .iter()
            .map(|c| match c {
                KeptColumn::Rows => ColumnValues::Rows,
                KeptColumn::Int(v, n) => ColumnValues::Int(v, n.as_ref()),
                KeptColumn::Float(v, n) => ColumnValues::Float(v, n.as_ref()),
            })
            .collect()
    }
}
