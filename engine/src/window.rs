//! Window kinds and how an event time maps to the windows that contain it.
//!
//! All times are epoch milliseconds. A window is the half-open range `[start, end)`; it is
//! complete, and fires, once the watermark reaches `end`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which windows an event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowSpec {
    /// Fixed, non-overlapping windows of `size`, aligned to `offset` (mod `size`).
    Tumbling { size: i64, offset: i64 },
    /// Windows of `size` starting every `slide`; an event is in `ceil(size / slide)` of them
    /// (fewer when `slide` does not divide `size`).
    Hopping { size: i64, slide: i64, offset: i64 },
    /// Per-key activity sessions: events closer than `gap` share a window
    /// `[first event, last event + gap)`; an event that bridges two sessions merges them.
    Session { gap: i64 },
}

impl WindowSpec {
    /// Checks sizes; `key` names the job setting in the error.
    pub fn validate(&self, key: &str) -> Result<()> {
        let positive = |name: &str, v: i64| {
            if v <= 0 {
                Err(Error::config(
                    format!("{key}.{name}"),
                    format!("must be positive, got {v}ms"),
                ))
            } else {
                Ok(())
            }
        };
        match *self {
            WindowSpec::Tumbling { size, .. } => positive("size", size),
            WindowSpec::Hopping { size, slide, .. } => {
                positive("size", size)?;
                positive("slide", slide)?;
                if slide > size {
                    return Err(Error::config(
                        format!("{key}.slide"),
                        format!("slide ({slide}ms) larger than size ({size}ms) would skip events"),
                    ));
                }
                Ok(())
            }
            WindowSpec::Session { gap } => positive("gap", gap),
        }
    }

    /// The length of every window, or `None` for sessions (which vary).
    pub fn size(&self) -> Option<i64> {
        match *self {
            WindowSpec::Tumbling { size, .. } | WindowSpec::Hopping { size, .. } => Some(size),
            WindowSpec::Session { .. } => None,
        }
    }

    /// The step between window starts for aligned windows (`size` for tumbling).
    pub fn slide(&self) -> Option<i64> {
        match *self {
            WindowSpec::Tumbling { size, .. } => Some(size),
            WindowSpec::Hopping { slide, .. } => Some(slide),
            WindowSpec::Session { .. } => None,
        }
    }

    fn offset(&self) -> i64 {
        match *self {
            WindowSpec::Tumbling { offset, .. } | WindowSpec::Hopping { offset, .. } => offset,
            WindowSpec::Session { .. } => 0,
        }
    }

    /// The start of the last aligned window that begins at or before `ts`.
    pub fn last_start(&self, ts: i64) -> i64 {
        let slide = self.slide().unwrap_or(1);
        let offset = self.offset().rem_euclid(slide);
        ts - (ts - offset).rem_euclid(slide)
    }

    /// Calls `f(start)` for every aligned window containing `ts`, latest first.
    #[inline]
    pub fn for_each_start(&self, ts: i64, mut f: impl FnMut(i64)) {
        let (Some(size), Some(slide)) = (self.size(), self.slide()) else {
            return;
        };
        let mut start = self.last_start(ts);
        while start > ts - size {
            f(start);
            start -= slide;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(spec: WindowSpec, ts: i64) -> Vec<i64> {
        let mut out = Vec::new();
        spec.for_each_start(ts, |s| out.push(s));
        out
    }

    #[test]
    fn tumbling_assigns_one_aligned_window() {
        let spec = WindowSpec::Tumbling {
            size: 1_000,
            offset: 0,
        };
        assert_eq!(starts(spec, 0), vec![0]);
        assert_eq!(starts(spec, 999), vec![0]);
        assert_eq!(starts(spec, 1_000), vec![1_000]);
        assert_eq!(starts(spec, -1), vec![-1_000]);
    }

    #[test]
    fn tumbling_offset_shifts_the_grid() {
        let spec = WindowSpec::Tumbling {
            size: 1_000,
            offset: 250,
        };
        assert_eq!(starts(spec, 249), vec![-750]);
        assert_eq!(starts(spec, 250), vec![250]);
        assert_eq!(starts(spec, 1_249), vec![250]);
    }

    #[test]
    fn hopping_assigns_size_over_slide_windows() {
        let spec = WindowSpec::Hopping {
            size: 60_000,
            slide: 10_000,
            offset: 0,
        };
        assert_eq!(
            starts(spec, 65_000),
            vec![60_000, 50_000, 40_000, 30_000, 20_000, 10_000]
        );
        // Not a multiple: size 25, slide 10 puts ts=20 in [20,45), [10,35), [0,25).
        let odd = WindowSpec::Hopping {
            size: 25,
            slide: 10,
            offset: 0,
        };
        assert_eq!(starts(odd, 20), vec![20, 10, 0]);
        assert_eq!(starts(odd, 26), vec![20, 10]);
    }

    #[test]
    fn validation_names_the_setting() {
        let err = WindowSpec::Hopping {
            size: 10,
            slide: 20,
            offset: 0,
        }
        .validate("operators[0].window")
        .expect_err("slide > size");
        assert!(
            err.to_string().starts_with("operators[0].window.slide:"),
            "{err}"
        );
        let err = WindowSpec::Session { gap: 0 }
            .validate("w")
            .expect_err("gap 0");
        assert!(err.to_string().contains("w.gap"), "{err}");
    }
}
