//! Where a GPU window operator's wall time goes, for tuning: printed when the operator is
//! dropped if `SLUICE_GPU_PROFILE` is set, and free otherwise.

use std::time::{Duration, Instant};

/// Wall time per phase, summed over the operator's life.
#[derive(Debug, Default)]
pub(super) struct Profile {
    /// Writing a chunk into its mapped upload buffer: window indexing, late-row detection
    /// and copying keys and columns, in parallel (part of `submit`).
    pub fill: Duration,
    /// Waiting for an earlier round's counters before reusing its buffers.
    pub drain: Duration,
    /// Filling, encoding and submitting a chunk's first round.
    pub submit: Duration,
    /// `queue.submit` of a chunk's first round (part of `submit`).
    pub queue: Duration,
    /// `fire` that closed windows: waiting for rounds, rebuild sweep, read-back.
    pub fire: Duration,
    /// Waiting for the rounds in flight (part of `fire`).
    pub fire_wait: Duration,
    /// The rebuild sweep, up to its counters read back (part of `fire`).
    pub fire_sweep: Duration,
    /// GPU time of the batches' first rounds (assign and update passes), from GPU
    /// timestamps where the adapter writes them.
    pub gpu_rounds: Duration,
    pub timed_rounds: u64,
    pub rows: u64,
    pub fires: u64,
}

impl Profile {
    /// A profile when `SLUICE_GPU_PROFILE` is set.
    pub fn from_env() -> Option<Profile> {
        std::env::var_os("SLUICE_GPU_PROFILE").map(|_| Profile::default())
    }
}

/// Adds the time since `begin` to `phase` when profiling.
pub(super) fn add(
    profile: &mut Option<Profile>,
    begin: Instant,
    phase: fn(&mut Profile) -> &mut Duration,
) {
    if let Some(p) = profile {
        *phase(p) += begin.elapsed();
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        eprintln!(
            "gpu profile: {} rows, {} closing fires; drain {:.1} ms, submit {:.1} ms (fill {:.1} ms, queue {:.1} ms), fire {:.1} ms (wait {:.1} ms, sweep {:.1} ms)",
            self.rows,
            self.fires,
            ms(self.drain),
            ms(self.submit),
            ms(self.fill),
            ms(self.queue),
            ms(self.fire),
            ms(self.fire_wait),
            ms(self.fire_sweep)
        );
        if self.timed_rounds > 0 {
            eprintln!(
                "gpu profile: {} first rounds took {:.1} ms of GPU time ({:.2} G rows/s)",
                self.timed_rounds,
                ms(self.gpu_rounds),
                self.rows as f64 / self.gpu_rounds.as_secs_f64().max(1e-9) / 1e9
            );
        }
    }
}
