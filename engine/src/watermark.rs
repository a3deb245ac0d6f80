//! Tracks watermarks per source partition and combines them into the stream's watermark.
//!
//! A partition's watermark is its largest event time minus the allowed delay. The stream's
//! watermark is the minimum over partitions that are neither finished nor idle, and it never
//! moves backwards. A partition that has sent nothing for `idle_timeout` stops holding the
//! stream back until it sends again; when every partition has finished, the watermark is
//! `i64::MAX` (end of input), which closes every window.

use std::time::{Duration, Instant};

/// The watermark meaning "end of input".
pub const END_OF_INPUT: i64 = i64::MAX;

/// Per-partition event-time progress.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    partitions: Vec<PartitionProgress>,
    current: i64,
}

#[derive(Debug, Clone)]
struct PartitionProgress {
    /// The stream's allowed delay and idle timeout (streams of a join may differ).
    delay: i64,
    idle_timeout: Option<Duration>,
    max_ts: Option<i64>,
    last_active: Instant,
    finished: bool,
}

impl WatermarkTracker {
    /// Tracks `partitions` partitions, all considered active at `now`.
    pub fn new(
        partitions: usize,
        delay: i64,
        idle_timeout: Option<Duration>,
        now: Instant,
    ) -> Self {
        Self::for_streams(&[(partitions, delay, idle_timeout)], now)
    }

    /// Tracks the partitions of several streams, each given as (partitions, delay, idle
    /// timeout); partitions are numbered stream after stream. The watermark is the minimum
    /// over all of them: a join waits for its slower input.
    pub fn for_streams(streams: &[(usize, i64, Option<Duration>)], now: Instant) -> Self {
        let partitions = streams
            .iter()
            .flat_map(|&(count, delay, idle_timeout)| {
                let progress = PartitionProgress {
                    delay,
                    idle_timeout,
                    max_ts: None,
                    last_active: now,
                    finished: false,
                };
                std::iter::repeat_n(progress, count)
            })
            .collect();
        WatermarkTracker {
            partitions,
            current: i64::MIN,
        }
    }

    /// Partition `p` delivered rows whose largest event time is `max_ts` (if any) at `now`.
    pub fn observe(&mut self, p: usize, max_ts: Option<i64>, now: Instant) {
        if let Some(progress) = self.partitions.get_mut(p) {
            progress.last_active = now;
            if let Some(ts) = max_ts {
                progress.max_ts = Some(progress.max_ts.map_or(ts, |m| m.max(ts)));
            }
        }
    }

    /// Partition `p` reached the end of its input.
    /// The largest event time partition `p` has shown (for checkpoints).
    pub fn max_ts(&self, p: usize) -> Option<i64> {
        self.partitions.get(p).and_then(|progress| progress.max_ts)
    }

    /// The watermark as last advanced.
    pub fn current(&self) -> i64 {
        self.current
    }

    /// Resumes from a checkpoint: partition `p` had shown `max_ts`.
    pub fn restore_partition(&mut self, p: usize, max_ts: Option<i64>) {
        if let Some(progress) = self.partitions.get_mut(p) {
            progress.max_ts = max_ts;
        }
    }

    /// Resumes from a checkpoint: the watermark had reached `watermark` and never moves back.
    pub fn restore_current(&mut self, watermark: i64) {
        self.current = watermark;
    }

    pub fn finish(&mut self, p: usize) {
        if let Some(progress) = self.partitions.get_mut(p) {
            progress.finished = true;
        }
    }

    /// Whether every partition has finished.
    pub fn all_finished(&self) -> bool {
        self.partitions.iter().all(|p| p.finished)
    }

    /// Whether partition `p` counts as idle at `now`.
    pub fn is_idle(&self, p: usize, now: Instant) -> bool {
        match self
            .partitions
            .get(p)
            .and_then(|q| q.idle_timeout.map(|t| (q, t)))
        {
            Some((progress, timeout)) => {
                !progress.finished && now.duration_since(progress.last_active) >= timeout
            }
            _ => false,
        }
    }

    /// Recomputes the stream's watermark at `now` and returns it (never less than before).
    pub fn advance(&mut self, now: Instant) -> i64 {
        if self.all_finished() {
            self.current = END_OF_INPUT;
            return self.current;
        }
        let mut min: Option<i64> = None;
        let mut any_active = false;
        for (p, progress) in self.partitions.iter().enumerate() {
            if progress.finished || self.is_idle(p, now) {
                continue;
            }
            any_active = true;
            // An active partition that has sent no rows yet holds everything back.
            let w = progress
                .max_ts
                .map_or(i64::MIN, |m| m.saturating_sub(progress.delay));
            min = Some(min.map_or(w, |x: i64| x.min(w)));
        }
        let candidate = if any_active {
            min.unwrap_or(i64::MIN)
        } else {
            // Everything unfinished is idle: advance to what the partitions have shown so far.
            self.partitions
                .iter()
                .filter_map(|p| p.max_ts.map(|m| m.saturating_sub(p.delay)))
                .max()
                .unwrap_or(i64::MIN)
        };
        self.current = self.current.max(candidate);
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_active_partition_sets_the_watermark() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(2, 100, None, t0);
        w.observe(0, Some(1_000), t0);
        assert_eq!(w.advance(t0), i64::MIN, "partition 1 has sent nothing yet");
        w.observe(1, Some(600), t0);
        assert_eq!(w.advance(t0), 500);
        w.observe(1, Some(2_000), t0);
        assert_eq!(w.advance(t0), 900);
    }

    #[test]
    fn never_moves_backwards() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(1, 0, None, t0);
        w.observe(0, Some(1_000), t0);
        assert_eq!(w.advance(t0), 1_000);
        w.observe(0, Some(400), t0);
        assert_eq!(w.advance(t0), 1_000);
    }

    #[test]
    fn an_idle_partition_stops_holding_the_stream_back() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(2, 0, Some(Duration::from_millis(50)), t0);
        w.observe(0, Some(100), t0);
        w.observe(1, Some(10), t0);
        assert_eq!(w.advance(t0), 10);
        let later = t0 + Duration::from_millis(60);
        w.observe(0, Some(5_000), later);
        assert!(w.is_idle(1, later));
        assert_eq!(w.advance(later), 5_000);
        // It wakes up behind the watermark: the watermark stays put.
        w.observe(1, Some(20), later);
        assert_eq!(w.advance(later), 5_000);
    }

    #[test]
    fn streams_with_their_own_delays_share_one_watermark() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::for_streams(&[(1, 100, None), (2, 10, None)], t0);
        w.observe(0, Some(1_000), t0);
        w.observe(1, Some(1_000), t0);
        w.observe(2, Some(2_000), t0);
        // Stream 0 allows 100 ms of delay, stream 1 only 10 ms: min(900, 990, 1990).
        assert_eq!(w.advance(t0), 900);
        w.observe(0, Some(5_000), t0);
        assert_eq!(w.advance(t0), 990);
    }

    #[test]
    fn finished_partitions_drop_out_and_all_finished_is_the_end() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(2, 0, None, t0);
        w.observe(0, Some(100), t0);
        w.finish(1);
        assert_eq!(w.advance(t0), 100);
        w.finish(0);
        assert_eq!(w.advance(t0), END_OF_INPUT);
    }
}
