//! Rebuilding the group table: closing fired windows into a compact output, growing tables,
//! and reading closed groups back.

use super::*;

/// What a closing rebuild wrote to `out`: its row count, and the rows themselves when they
/// came back in the same round trip as the counters.
#[derive(Debug, Default)]
pub(super) struct Swept {
    pub rows: u32,
    pub words: Option<Vec<u32>>,
}

impl GpuWindowAggregator {
    pub(super) fn grow_distinct(&mut self, needed: u64) -> Result<()> {
        let max = self.max_distinct();
        let Some(current) = &self.distinct else {
            return Ok(());
        };
        let capacity = grown_capacity(current, needed, max, "distinct values")?;
        if capacity > current.capacity {
            self.grow_distinct_to(capacity);
        }
        Ok(())
    }

    /// Moves the distinct-value table into one of `capacity` entries.
    pub(super) fn grow_distinct_to(&mut self, capacity: u32) {
        self.tables_generation += 1;
        let largest = capacity >= self.max_distinct();
        let new = HashTable::new(self.device(), "distinct values", capacity, largest);
        let params = PassParams {
            identity: 1,
            new_mask: new.mask(),
            ..self.base_params()
        };
        self.write_params(FIRE_BLOCK + 1, &params);
        self.reset_counters(C_DOCCUPIED, 1);
        let mut encoder = self.encoder("grow distinct");
        if let Some(old) = &self.distinct {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.dispatch(
                &mut pass,
                Kernel::DistinctRebuild,
                FIRE_BLOCK + 1,
                &[&old.buffer, &new.buffer, &self.slot_map, &self.counters],
                old.capacity,
            );
        }
        self.device().queue.submit([encoder.finish()]);
        self.distinct = Some(new);
        self.spare_distinct = None;
    }

    /// Moves every group into a table of `capacity` slots; with `close`, groups whose window
    /// has fired (sessions that ended) are written to `out` instead.
    pub(super) fn rebuild(&mut self, capacity: u32, close: bool) -> Result<Swept> {
        self.tables_generation += 1;
        let stride = self.layout.stride;
        let old_capacity = self.groups.keys.capacity;
        let spare = match self.spare.take() {
            Some(t) if t.keys.capacity == capacity => t,
            _ => GroupTable::new(
                self.device(),
                capacity,
                stride,
                capacity >= self.max_groups(),
            ),
        };
        if u64::from(old_capacity) * 4 > self.slot_map.size() {
            self.slot_map = storage(self.device(), "slot map", u64::from(old_capacity) * 4);
        }
        if self.session.is_some() && u64::from(old_capacity) * 4 > self.session_rows.size() {
            self.session_rows = storage(self.device(), "session rows", u64::from(old_capacity) * 4);
        }
        if close && out_bytes(old_capacity, stride) > self.out.size() {
            self.out = storage(
                self.device(),
                "closed groups",
                out_bytes(old_capacity, stride),
            );
        }
        let spare_distinct = match (
            self.distinct.as_ref().map(|d| d.capacity),
            self.spare_distinct.take(),
        ) {
            (Some(c), Some(t)) if t.capacity == c => Some(t),
            (Some(c), _) => Some(HashTable::new(
                self.device(),
                "distinct values",
                c,
                c >= self.max_distinct(),
            )),
            (None, _) => None,
        };
        let base = self.base_params();
        let sessions = self.session.filter(|_| close);
        self.write_params(
            FIRE_BLOCK,
            &PassParams {
                new_mask: spare.keys.mask(),
                close: if sessions.is_some() {
                    2
                } else {
                    u32::from(close)
                },
                ..base
            },
        );
        if let Some(mode) = sessions {
            self.write_params(
                SESSION_BLOCK,
                &PassParams {
                    min_open_lo: self.fired_through as u64 as u32,
                    min_open_hi: ((self.fired_through as u64) >> 32) as u32,
                    ..self.session_params(mode)
                },
            );
        }
        if let Some(d) = &spare_distinct {
            self.write_params(
                FIRE_BLOCK + 1,
                &PassParams {
                    new_mask: d.mask(),
                    ..base
                },
            );
        }
        let live: Vec<usize> = (0..2).filter(|&s| self.slots[s].live && !close).collect();
        for (i, &s) in live.iter().enumerate() {
            let items = self.slots[s].items;
            self.write_params(FIRE_BLOCK + 2 + i as u64, &PassParams { items, ..base });
        }
        self.reset_counters(C_OCCUPIED, 1);
        self.reset_counters(C_OUT, 1);
        if spare_distinct.is_some() {
            self.reset_counters(C_DOCCUPIED, 1);
        }
        let mut encoder = self.encoder("rebuild");
        encoder.clear_buffer(&spare.keys.buffer, 0, Some(u64::from(capacity) * 4));
        if let Some(d) = &spare_distinct {
            encoder.clear_buffer(&d.buffer, 0, Some(u64::from(d.capacity) * 4));
        }
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            if sessions.is_some() {
                self.dispatch(
                    &mut pass,
                    Kernel::SessionFire,
                    SESSION_BLOCK,
                    &[
                        &self.groups.keys.buffer,
                        &self.groups.acc,
                        &self.slot_map,
                        &self.out,
                        &self.counters,
                        &self.fire_aggs,
                        &self.session_rows,
                    ],
                    old_capacity,
                );
                if let Some(d) = &self.distinct {
                    self.dispatch(
                        &mut pass,
                        Kernel::SessionDistinct,
                        SESSION_BLOCK,
                        &[
                            &self.groups.keys.buffer,
                            &self.groups.acc,
                            &d.buffer,
                            &self.session_rows,
                            &self.out,
                            &self.fire_aggs,
                        ],
                        d.capacity,
                    );
                }
            }
            self.dispatch(
                &mut pass,
                Kernel::WindowFire,
                FIRE_BLOCK,
                &[
                    &self.groups.keys.buffer,
                    &self.groups.acc,
                    &spare.keys.buffer,
                    &spare.acc,
                    &self.slot_map,
                    &self.out,
                    &self.counters,
                ],
                old_capacity,
            );
            if let (Some(old), Some(new)) = (&self.distinct, &spare_distinct) {
                self.dispatch(
                    &mut pass,
                    Kernel::DistinctRebuild,
                    FIRE_BLOCK + 1,
                    &[&old.buffer, &new.buffer, &self.slot_map, &self.counters],
                    old.capacity,
                );
            }
            for (i, &s) in live.iter().enumerate() {
                let slot = &self.slots[s];
                self.dispatch(
                    &mut pass,
                    Kernel::ItemRemap,
                    FIRE_BLOCK + 2 + i as u64,
                    &[&slot.item_slot, &self.slot_map],
                    slot.items,
                );
            }
        }
        // Closing reads its counters and, in the same round trip, every row it can have
        // closed (at most the groups there were) unless that is much more than a second
        // round trip for exactly the closed rows would read.
        let row_bytes = u64::from(self.row_width()) * 4;
        let bound = if close {
            u64::from(self.occupied.min(old_capacity)) * row_bytes
        } else {
            0
        };
        let eager = bound > 0 && bound <= self.tuning.eager_read_bytes;
        if close {
            encoder.copy_buffer_to_buffer(
                &self.counters,
                0,
                &self.counters_staging,
                0,
                COUNTERS * 4,
            );
            if eager {
                self.fit_out_staging(bound);
                if let Some(out_staging) = &self.out_staging {
                    encoder.copy_buffer_to_buffer(&self.out, 0, out_staging, 0, bound);
                }
            }
        }
        let submission = self.device().queue.submit([encoder.finish()]);
        let old = std::mem::replace(&mut self.groups, spare);
        self.spare = Some(old);
        if let Some(new) = spare_distinct {
            self.spare_distinct = self.distinct.replace(new);
        }
        if !close {
            return Ok(Swept::default());
        }
        let counters = PendingRead::start(&self.counters_staging, COUNTERS * 4, submission.clone());
        let rows = match (&self.out_staging, eager) {
            (Some(out_staging), true) => Some(PendingRead::start(out_staging, bound, submission)),
            _ => None,
        };
        let words = counters.finish(self.device(), &self.counters_staging)?;
        self.occupied = words[C_OCCUPIED];
        self.doccupied = words[C_DOCCUPIED];
        let closed = words[C_OUT];
        let words = match (rows, &self.out_staging) {
            (Some(rows), Some(out_staging)) => Some(rows.finish_prefix(
                self.device(),
                out_staging,
                u64::from(closed) * row_bytes,
            )?),
            _ => None,
        };
        Ok(Swept {
            rows: closed,
            words: words.filter(|w| w.len() as u64 * 4 == u64::from(closed) * row_bytes),
        })
    }

    /// Words per closed row in `out`: key and window index, or key, start and end.
    fn row_width(&self) -> u32 {
        let head = if self.session.is_some() { 6 } else { 4 };
        head + self.layout.stride
    }

    /// Makes `out_staging` (the read-back buffer of closed and late rows) hold `bytes`.
    pub(super) fn fit_out_staging(&mut self, bytes: u64) {
        if self.out_staging.as_ref().is_none_or(|b| b.size() < bytes) {
            self.out_staging = Some(staging(
                self.device(),
                "closed groups",
                bytes.next_power_of_two(),
            ));
        }
    }

    /// Turns the rows a closing rebuild wrote into the operator's shape, reading them from
    /// `out` unless the rebuild already did.
    pub(super) fn read_closed(&mut self, swept: Swept) -> Result<ClosedWindows> {
        let rows = swept.rows;
        if rows == 0 {
            return Ok(ClosedWindows::default());
        }
        let width = self.row_width() as usize;
        let bytes = rows as u64 * width as u64 * 4;
        let words = match swept.words {
            Some(words) => words,
            None => {
                self.fit_out_staging(bytes);
                match &self.out_staging {
                    Some(out_staging) => read_back(self.device(), &self.out, out_staging, bytes)?,
                    None => {
                        return Err(Error::Internal("no staging buffer for closed rows".into()));
                    }
                }
            }
        };
        let rows = rows as usize;
        let mut closed = ClosedWindows {
            keys: Vec::with_capacity(rows),
            starts: Vec::with_capacity(rows),
            ends: Vec::with_capacity(rows),
            aggregates: Vec::new(),
        };
        let pair = |row: &[u32], i: usize| u64::from(row[i]) | (u64::from(row[i + 1]) << 32);
        let head = width - self.layout.stride as usize;
        for row in words.chunks_exact(width) {
            closed.keys.push(pair(row, 0));
            if self.session.is_some() {
                closed.starts.push(pair(row, 2) as i64);
                closed.ends.push(pair(row, 4) as i64);
            } else {
                let w = pair(row, 2) as i64;
                closed.starts.push(self.index.start(w));
                closed.ends.push(self.index.end(w));
            }
        }
        closed.aggregates = self
            .layout
            .decode(rows, |i| &words[i * width + head..(i + 1) * width]);
        if let Some(mode) = self.session {
            // The bucket's event-time aggregates are the engine's, not the query's.
            closed.aggregates.truncate(mode.aggregates);
        }
        Ok(closed)
    }
}

/// After a round found `table` full with `occupied` entries: a capacity four times larger (the
/// unplaced items say little about how many groups they hold, so grow fast), `None` when the
/// table is already the largest but not truly full (a retry places the rest), or an error.
pub(super) fn grow_after_full(
    table: &HashTable,
    occupied: u32,
    max: u32,
    what: &str,
) -> Result<Option<u32>> {
    if table.capacity < max {
        let want = (u64::from(table.capacity) * 4)
            .max(u64::from(occupied) * 2)
            .next_power_of_two()
            .min(u64::from(max));
        return Ok(Some(want as u32));
    }
    if occupied < table.limit {
        return Ok(None);
    }
    Err(Error::Gpu(format!(
        "{what} need more than {} entries, the largest table this GPU's buffers allow; run \
         with --backend cpu",
        table.limit
    )))
}

/// The capacity for `needed` entries: double or more up to `max`; the same table when it is
/// the largest and still holds them; an error when nothing can.
pub(super) fn grown_capacity(table: &HashTable, needed: u64, max: u32, what: &str) -> Result<u32> {
    let want = (needed * 2)
        .max(u64::from(table.capacity) * 2)
        .next_power_of_two()
        .min(u64::from(max)) as u32;
    if want > table.capacity {
        return Ok(want);
    }
    if needed <= u64::from(table.limit) {
        return Ok(table.capacity);
    }
    Err(Error::Gpu(format!(
        "{what} need {needed} entries; the largest table this GPU's buffers allow holds {}; \
         run with --backend cpu",
        table.limit
    )))
}
