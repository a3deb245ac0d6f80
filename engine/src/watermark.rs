//! Tracks watermarks per source partition and combines them into the stream's watermark.
//!
//! A partition's watermark is its largest event time minus the allowed delay. The stream's
//! watermark is the minimum over partitions that are neither finished nor idle, and it never
//! moves backwards. A partition that has sent nothing for `idle_timeout` stops holding the
//! stream back until it sends again; when every partition has finished, the watermark is
//! `i64::MAX` (end of input), which closes every window.
//!
//! The live partitions are kept ordered by their watermark, so a batch costs O(log P) however
//! many partitions a job has (100 000 generator partitions, a folder of 33 000 files): a scan
//! over all of them per batch would make such a job quadratic.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// The watermark meaning "end of input".
pub const END_OF_INPUT: i64 = i64::MAX;

/// Per-partition event-time progress.
#[derive(Debug, Clone)]
pub struct WatermarkTracker {
    partitions: Vec<PartitionProgress>,
    /// (watermark, partition) of every partition neither finished nor found idle.
    live: BTreeSet<(i64, usize)>,
    /// The largest partition watermark ever shown: where the stream goes when every
    /// unfinished partition is idle.
    shown: Option<i64>,
    finished: usize,
    current: i64,
}

#[derive(Debug, Clone)]
struct PartitionProgress {
    /// The stream's allowed delay and idle timeout (streams of a join may differ).
    delay: i64,
    idle_timeout: Option<Duration>,
    max_ts: Option<i64>,
    /// When the partition last delivered anything; `None` while its reader has not opened it
    /// yet (a partition waiting for a reader thread is not idle: it holds the watermark).
    last_active: Option<Instant>,
    finished: bool,
    /// Found idle by [`WatermarkTracker::advance`] and taken out of `live` until it sends.
    idle: bool,
}

impl PartitionProgress {
    /// This partition's watermark; `i64::MIN` before it has shown an event time.
    fn watermark(&self) -> i64 {
        self.max_ts
            .map_or(i64::MIN, |m| m.saturating_sub(self.delay))
    }

    fn is_idle(&self, now: Instant) -> bool {
        !self.finished
            && self.idle_timeout.is_some_and(|timeout| {
                self.last_active
                    .is_some_and(|at| now.duration_since(at) >= timeout)
            })
    }
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
        let partitions: Vec<PartitionProgress> = streams
            .iter()
            .flat_map(|&(count, delay, idle_timeout)| {
                let progress = PartitionProgress {
                    delay,
                    idle_timeout,
                    max_ts: None,
                    last_active: Some(now),
                    finished: false,
                    idle: false,
                };
                std::iter::repeat_n(progress, count)
            })
            .collect();
        WatermarkTracker {
            live: (0..partitions.len()).map(|p| (i64::MIN, p)).collect(),
            partitions,
            shown: None,
            finished: 0,
            current: i64::MIN,
        }
    }

    /// Partition `p` delivered rows whose largest event time is `max_ts` (if any) at `now`.
    pub fn observe(&mut self, p: usize, max_ts: Option<i64>, now: Instant) {
        if let Some(progress) = self.partitions.get_mut(p) {
            progress.last_active = Some(now);
        }
        self.raise(p, max_ts);
    }

    /// Partition `p`'s largest event time is at least `max_ts`; a partition found idle is
    /// live again.
    fn raise(&mut self, p: usize, max_ts: Option<i64>) {
        let Some(progress) = self.partitions.get_mut(p) else {
            return;
        };
        let before = progress.watermark();
        if let Some(ts) = max_ts {
            progress.max_ts = Some(progress.max_ts.map_or(ts, |m| m.max(ts)));
        }
        let after = progress.watermark();
        if progress.max_ts.is_some() {
            self.shown = Some(self.shown.map_or(after, |s| s.max(after)));
        }
        if progress.finished {
            return;
        }
        if progress.idle {
            progress.idle = false;
            self.live.insert((after, p));
        } else if after != before {
            self.live.remove(&(before, p));
            self.live.insert((after, p));
        }
    }

    /// Partition `p` waits for a reader to open it: until it delivers something (or
    /// [`WatermarkTracker::observe`] says it opened, with no rows), it cannot turn idle.
    pub fn defer(&mut self, p: usize) {
        let Some(progress) = self.partitions.get_mut(p) else {
            return;
        };
        progress.last_active = None;
        if progress.idle {
            progress.idle = false;
            self.live.insert((progress.watermark(), p));
        }
    }

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
        self.raise(p, max_ts);
    }

    /// Resumes from a checkpoint: the watermark had reached `watermark` and never moves back.
    pub fn restore_current(&mut self, watermark: i64) {
        self.current = watermark;
    }

    /// Partition `p` reached the end of its input.
    pub fn finish(&mut self, p: usize) {
        let Some(progress) = self.partitions.get_mut(p) else {
            return;
        };
        if progress.finished {
            return;
        }
        if !progress.idle {
            self.live.remove(&(progress.watermark(), p));
        }
        progress.finished = true;
        progress.idle = false;
        self.finished += 1;
    }

    /// Whether every partition has finished.
    pub fn all_finished(&self) -> bool {
        self.finished == self.partitions.len()
    }

    /// Whether partition `p` counts as idle at `now`.
    pub fn is_idle(&self, p: usize, now: Instant) -> bool {
        self.partitions.get(p).is_some_and(|q| q.is_idle(now))
    }

    /// Recomputes the stream's watermark at `now` and returns it (never less than before).
    pub fn advance(&mut self, now: Instant) -> i64 {
        if self.all_finished() {
            self.current = END_OF_INPUT;
            return self.current;
        }
        // Only the slowest live partition can hold the watermark: take it out while it is
        // idle, and look at the next. One that is idle but not the slowest holds nothing.
        while let Some(&(w, p)) = self.live.first() {
            if !self.partitions[p].is_idle(now) {
                break;
            }
            self.live.remove(&(w, p));
            self.partitions[p].idle = true;
        }
        let candidate = match self.live.first() {
            // An active partition that has sent no rows yet holds everything back.
            Some(&(w, _)) => w,
            // Everything unfinished is idle: advance to what the partitions have shown so far.
            None => self.shown.unwrap_or(i64::MIN),
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
    fn a_partition_no_reader_has_opened_is_never_idle() {
        let t0 = Instant::now();
        let mut w = WatermarkTracker::new(2, 0, Some(Duration::from_millis(50)), t0);
        w.defer(1);
        w.observe(0, Some(100), t0);
        let later = t0 + Duration::from_millis(60);
        w.observe(0, Some(200), later);
        assert!(!w.is_idle(1, later), "waiting for a reader is not idleness");
        assert_eq!(w.advance(later), i64::MIN, "it holds the watermark");
        // Opened (with no rows yet): its idle clock starts now.
        w.observe(1, None, later);
        let much_later = later + Duration::from_millis(60);
        w.observe(0, Some(300), much_later);
        assert!(w.is_idle(1, much_later));
        assert_eq!(w.advance(much_later), 300);
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

    /// The ordered set against the definition, scanned: random observations (with and without
    /// rows), deferrals, finishes and clock jumps over three streams with their own delays
    /// and idle timeouts.
    #[test]
    fn the_ordered_tracker_equals_a_scan_of_every_partition() {
        struct Model {
            delay: i64,
            timeout: Option<Duration>,
            max_ts: Option<i64>,
            last: Option<Instant>,
            finished: bool,
        }
        let streams = [
            (3, 10, None),
            (4, 0, Some(Duration::from_millis(30))),
            (2, 50, Some(Duration::from_millis(80))),
        ];
        let mut state = 99u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..50 {
            let t0 = Instant::now();
            let mut now = t0;
            let mut tracker = WatermarkTracker::for_streams(&streams, t0);
            let mut model: Vec<Model> = streams
                .iter()
                .flat_map(|&(n, delay, timeout)| {
                    (0..n).map(move |_| Model {
                        delay,
                        timeout,
                        max_ts: None,
                        last: Some(t0),
                        finished: false,
                    })
                })
                .collect();
            let mut current = i64::MIN;
            for _ in 0..300 {
                let p = next(model.len() as u64) as usize;
                match next(10) {
                    0 if round % 2 == 0 => {
                        tracker.defer(p);
                        model[p].last = None;
                    }
                    1 => {
                        tracker.finish(p);
                        model[p].finished = true;
                    }
                    2 => now += Duration::from_millis(next(60)),
                    3 => {
                        tracker.observe(p, None, now);
                        model[p].last = Some(now);
                    }
                    _ => {
                        let ts = next(10_000) as i64;
                        tracker.observe(p, Some(ts), now);
                        let m = &mut model[p];
                        m.last = Some(now);
                        m.max_ts = Some(m.max_ts.map_or(ts, |x| x.max(ts)));
                    }
                }
                let idle = |m: &Model| {
                    !m.finished
                        && m.timeout
                            .is_some_and(|t| m.last.is_some_and(|at| now.duration_since(at) >= t))
                };
                let watermark = |m: &Model| m.max_ts.map_or(i64::MIN, |x| x - m.delay);
                let want = if model.iter().all(|m| m.finished) {
                    END_OF_INPUT
                } else {
                    let live: Vec<i64> = model
                        .iter()
                        .filter(|m| !m.finished && !idle(m))
                        .map(watermark)
                        .collect();
                    let candidate = match live.iter().min() {
                        Some(&w) => w,
                        None => model
                            .iter()
                            .filter(|m| m.max_ts.is_some())
                            .map(watermark)
                            .max()
                            .unwrap_or(i64::MIN),
                    };
                    current.max(candidate)
                };
                current = want;
                assert_eq!(tracker.advance(now), want, "round {round}");
            }
        }
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
