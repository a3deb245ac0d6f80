//! Closing fires: waiting for the batches in flight, sizing the rebuilt table, and closing
//! the windows the watermark passed (sessions close in `session.rs`).

use super::*;

impl GpuWindowAggregator {
    /// Waits for both batches in flight, the oldest first, so the counters read last
    /// (occupancy) are the newest.
    pub(super) fn drain_both(&mut self) -> Result<()> {
        let older = self.next_slot;
        for s in [older, older ^ 1] {
            self.drain(s)?;
        }
        Ok(())
    }

    /// The group table's capacity for the rebuild a closing fire does: grown when more than
    /// half full (and a larger table fits); grows the distinct-value table likewise.
    pub(super) fn capacity_for_fire(&mut self, what: &str) -> Result<u32> {
        let current = self.groups.keys.capacity;
        let capacity = if u64::from(self.occupied) * 2 > u64::from(current) {
            grown_capacity(
                &self.groups.keys,
                u64::from(self.occupied),
                self.max_groups(),
                what,
            )?
        } else {
            current
        };
        if let Some(d) = &self.distinct
            && u64::from(self.doccupied) * 2 > u64::from(d.capacity)
        {
            self.grow_distinct(u64::from(self.doccupied))?;
        }
        Ok(capacity)
    }

    /// Closes the windows before `first_open`: waits for both rounds in flight, rebuilds the
    /// table (growing it when over half full) and reads back the closed rows.
    pub(super) fn fire_closing(&mut self, first_open: i64) -> Result<ClosedWindows> {
        let begin = Instant::now();
        self.drain_both()?;
        profile::add(&mut self.profile, begin, |p| &mut p.fire_wait);
        let capacity = self.capacity_for_fire("window groups")?;
        let begin = Instant::now();
        let swept = self.rebuild(capacity, true)?;
        profile::add(&mut self.profile, begin, |p| &mut p.fire_sweep);
        self.lowest_window = if self.occupied == 0 {
            i64::MAX
        } else {
            first_open
        };
        self.read_closed(swept)
    }
}
