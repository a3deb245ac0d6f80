//! Making room in a GPU join buffer: unlinking expired rows from their chains, growing the
//! slab (slots keep their numbers) and rehashing the key index.

use super::*;

impl GpuJoinBuffer {
    /// Makes room for `rows` more rows: unlinks expired ones first when the bound moved,
    /// then grows the slab (copying it: slots keep their numbers, so chains stay valid).
    pub(super) fn make_room(&mut self, rows: u32) -> Result<()> {
        if self.slab.fits(rows) {
            return Ok(());
        }
        if self.bound > self.unlinked_at {
            self.unlink()?;
        }
        let needed = u64::from(self.slab.held()) + u64::from(rows);
        // Room at last, but a nearly full slab would unlink again at every insert: grow.
        if self.slab.fits(rows) && needed <= u64::from(self.slab.capacity) / 4 * 3 {
            return Ok(());
        }
        let capacity = (needed * 2).next_power_of_two();
        if capacity * ENTRY_BYTES > self.binding_limit() || capacity > 1 << 31 {
            return Err(self.too_large("rows", capacity * ENTRY_BYTES));
        }
        let grown = Slab {
            length: self.slab.length,
            free_slots: self.slab.free_slots,
            ..Slab::new(&self.gpu, capacity as u32)
        };
        let device = &self.gpu.device;
        let mut encoder = device
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("join buffer growth"),
            });
        encoder.copy_buffer_to_buffer(
            &self.slab.entries,
            0,
            &grown.entries,
            0,
            u64::from(self.slab.length) * ENTRY_BYTES,
        );
        encoder.copy_buffer_to_buffer(
            &self.slab.free,
            0,
            &grown.free,
            0,
            u64::from(self.slab.free_slots) * 4,
        );
        device.queue.submit([encoder.finish()]);
        self.slab = grown;
        Ok(())
    }

    /// Makes room in the index for `keys` more keys (and a fresh tag for their pass).
    pub(super) fn make_index_room(&mut self, keys: u32) -> Result<()> {
        if self.index.tag == u32::MAX {
            // Tags would wrap around onto slots claimed long ago: rehashing settles them all.
            self.rehash(u64::from(self.index.capacity))?;
        }
        if self.index.claimed + keys <= self.index.capacity / 2 {
            return Ok(());
        }
        // The bound counted every batch key as new: read how many slots are claimed.
        self.index.claimed = self.read_counters()?[J_CLAIMED];
        let wanted = self.index.claimed + keys;
        // Rehash above a quarter full, so reading the count stays rare.
        if wanted > self.index.capacity / 4 {
            self.rehash(
                (u64::from(wanted) * 4)
                    .next_power_of_two()
                    .max(u64::from(FIRST_KEYS)),
            )?;
        }
        Ok(())
    }

    /// Moves the keys that have rows into a new index of `capacity` slots.
    fn rehash(&mut self, capacity: u64) -> Result<()> {
        if capacity * KEY_BYTES > self.binding_limit() || capacity > 1 << 31 {
            return Err(self.too_large("key index", capacity * KEY_BYTES));
        }
        let index = Index {
            claimed: self.index.claimed,
            ..Index::new(&self.gpu, capacity as u32)
        };
        self.reset_counters(J_CLAIMED..J_CLAIMED + 1);
        let params = PassParams {
            new_mask: index.capacity - 1,
            ..self.params()
        };
        self.run(
            params,
            &[(
                Kernel::JoinBufferRehash,
                &[&self.index.buffer, &index.buffer, &self.counters],
                self.index.capacity,
            )],
        );
        self.index = index;
        Ok(())
    }

    /// Unlinks every row older than the bound from its chain and frees its slot; afterwards
    /// the rows held are exactly those at or after the bound.
    pub(super) fn unlink(&mut self) -> Result<()> {
        self.reset_counters(J_LIVE..J_FREED + 1);
        let [lo, hi] = words(self.bound as u64);
        let params = PassParams {
            min_open_lo: lo,
            min_open_hi: hi,
            ..self.params()
        };
        self.run(
            params,
            &[(
                Kernel::JoinBufferExpire,
                &[
                    &self.index.buffer,
                    &self.slab.entries,
                    &self.slab.free,
                    &self.counters,
                ],
                self.index.capacity,
            )],
        );
        let counters = self.read_counters()?;
        let (live, keys, freed) = (counters[J_LIVE], counters[J_KEYS], counters[J_FREED]);
        if u64::from(live) + u64::from(freed) != u64::from(self.slab.held()) {
            return Err(Error::Gpu(format!(
                "join buffer expiry kept {live} and freed {freed} of {} rows",
                self.slab.held()
            )));
        }
        self.slab.free_slots += freed;
        if live == 0 {
            // Nothing held: fresh slots again, from the start.
            self.slab.length = 0;
            self.slab.free_slots = 0;
        }
        self.index.claimed = counters[J_CLAIMED];
        self.unlinked_at = self.bound;
        self.kept = live as usize;
        // Keys whose rows all expired keep their slots until a rehash drops them.
        if self.index.claimed > 2 * keys + FIRST_KEYS / 2 {
            self.rehash(
                (u64::from(keys) * 4)
                    .next_power_of_two()
                    .max(u64::from(FIRST_KEYS)),
            )?;
        }
        Ok(())
    }
}
