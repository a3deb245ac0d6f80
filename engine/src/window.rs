//! Window kinds and how an event time maps to the windows that contain it.
//!
//! All times are epoch milliseconds. A window is the half-open range `[start, end)`; it is
//! complete, and fires, once the watermark reaches `end`. The arithmetic is checked: a window
//! whose bounds do not fit an `i64` has no start (`None`) rather than a wrapped one. The runtime
//! never gets near that: event times are limited to the valid range
//! ([`crate::event_time::EVENT_TIME_MIN`]`..=`[`crate::event_time::EVENT_TIME_MAX`]) and
//! window sizes to its length.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::event_time::EVENT_TIME_SPAN;

/// The most hopping windows one event may belong to (`size / slide`, rounded up). Each is a
/// group per key in the window state, and a row updates every one: 1 d sliding by 1 ms (86.4 M
/// windows per event) would exhaust memory within seconds, so such a window is refused at
/// validation. 10 000 admits a day sliding by 8.64 s, or an hour by 360 ms.
pub const MAX_WINDOWS_PER_EVENT: i64 = 10_000;

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
    /// Flink's `CUMULATE`: windows `[start, start + k * step)` for `k = 1 ..= size / step`, all
    /// from the same `start` (aligned to `size` and `offset`); an event is in every one that
    /// ends after it. Backends never see this kind: the operator
    /// ([`crate::operator::CumulateWindowOperator`]) aggregates `step`-long tumbling slices on
    /// the backend and merges them.
    Cumulate { step: i64, size: i64, offset: i64 },
}

impl WindowSpec {
    /// Checks sizes: positive, and at most the length of the valid event-time range (10 000
    /// years), so that no window bound of a valid event time leaves the `i64` range. `key`
    /// names the job setting in the error.
    pub fn validate(&self, key: &str) -> Result<()> {
        let positive = |name: &str, v: i64| {
            if v <= 0 {
                Err(Error::config(
                    format!("{key}.{name}"),
                    format!("must be positive, got {v}ms"),
                ))
            } else if v > EVENT_TIME_SPAN {
                Err(Error::config(
                    format!("{key}.{name}"),
                    format!(
                        "{v}ms is longer than the whole valid event-time range \
                         ({EVENT_TIME_SPAN}ms, the years 0000 to 9999)"
                    ),
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
                let per_event = size / slide + i64::from(size % slide != 0);
                if per_event > MAX_WINDOWS_PER_EVENT {
                    return Err(Error::config(
                        format!("{key}.slide"),
                        format!(
                            "every event would be in {per_event} windows ({size}ms sliding by \
                             {slide}ms); at most {MAX_WINDOWS_PER_EVENT} are allowed: use a \
                             slide of at least {}ms",
                            size / MAX_WINDOWS_PER_EVENT
                                + i64::from(size % MAX_WINDOWS_PER_EVENT != 0)
                        ),
                    ));
                }
                Ok(())
            }
            WindowSpec::Session { gap } => positive("gap", gap),
            WindowSpec::Cumulate { step, size, .. } => {
                positive("size", size)?;
                positive("step", step)?;
                if size % step != 0 {
                    return Err(Error::config(
                        format!("{key}.size"),
                        format!("the size ({size}ms) must be a whole number of steps ({step}ms)"),
                    ));
                }
                if size / step > MAX_WINDOWS_PER_EVENT {
                    return Err(Error::config(
                        format!("{key}.step"),
                        format!(
                            "{} windows per {size}ms; at most {MAX_WINDOWS_PER_EVENT} are allowed",
                            size / step
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Refuses a cumulating window, which reaches a backend only as its tumbling slices.
    pub fn sliced(&self) -> Result<()> {
        match self {
            WindowSpec::Cumulate { .. } => Err(Error::Internal(
                "a cumulating window reaches a backend as its step-long tumbling slices".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The length of every window, or `None` for sessions and cumulating windows (which vary).
    pub fn size(&self) -> Option<i64> {
        match *self {
            WindowSpec::Tumbling { size, .. } | WindowSpec::Hopping { size, .. } => Some(size),
            WindowSpec::Session { .. } | WindowSpec::Cumulate { .. } => None,
        }
    }

    /// The step between window starts for aligned windows (`size` for tumbling).
    pub fn slide(&self) -> Option<i64> {
        match *self {
            WindowSpec::Tumbling { size, .. } => Some(size),
            WindowSpec::Hopping { slide, .. } => Some(slide),
            WindowSpec::Session { .. } | WindowSpec::Cumulate { .. } => None,
        }
    }

    fn offset(&self) -> i64 {
        match *self {
            WindowSpec::Tumbling { offset, .. }
            | WindowSpec::Hopping { offset, .. }
            | WindowSpec::Cumulate { offset, .. } => offset,
            WindowSpec::Session { .. } => 0,
        }
    }

    /// The start of the last aligned window that begins at or before `ts`: the newest window
    /// holding `ts`. `None` if that window's start or end does not fit an `i64` (then no
    /// window of `ts` does); never for a valid event time and a validated spec.
    pub fn last_start(&self, ts: i64) -> Option<i64> {
        let slide = self.slide().unwrap_or(1);
        let size = self.size().unwrap_or(slide);
        if slide <= 0 {
            return None;
        }
        let offset = self.offset().rem_euclid(slide);
        // In i128 the subtraction cannot overflow; the remainder is below `slide`.
        let start =
            i128::from(ts) - (i128::from(ts) - i128::from(offset)).rem_euclid(i128::from(slide));
        let start = i64::try_from(start).ok()?;
        start.checked_add(size)?;
        Some(start)
    }

    /// The starts of every aligned window containing `ts`, latest first, given
    /// `last = last_start(ts)` (callers that process rows in time order can reuse it).
    #[inline]
    pub fn starts_from(&self, last: i64, ts: i64) -> WindowStarts {
        match (self.size(), self.slide()) {
            (Some(size), Some(slide)) => WindowStarts::new(last, ts, size, slide),
            // Sessions have no aligned windows.
            _ => WindowStarts {
                next: None,
                stop: 0,
                slide: 1,
            },
        }
    }
}

/// Window starts from latest to earliest, as a plain counter so the hot loop stays a loop.
#[derive(Debug, Clone, Copy)]
pub struct WindowStarts {
    /// The next start to yield; `None` once the next one would be below `i64::MIN`.
    next: Option<i64>,
    /// Starts must be above this: `ts - size`, exact in i128.
    stop: i128,
    slide: i64,
}

impl WindowStarts {
    /// The starts of windows of `size` every `slide` containing `ts`, from `last` down; for
    /// hot loops that look `size` and `slide` up once rather than per row.
    #[inline]
    pub fn new(last: i64, ts: i64, size: i64, slide: i64) -> Self {
        WindowStarts {
            // A slide that is not positive would never leave `last`: no windows then.
            next: (slide > 0).then_some(last),
            stop: i128::from(ts) - i128::from(size),
            slide,
        }
    }
}

impl Iterator for WindowStarts {
    type Item = i64;

    #[inline]
    fn next(&mut self) -> Option<i64> {
        let start = self.next.filter(|&s| i128::from(s) > self.stop)?;
        self.next = start.checked_sub(self.slide);
        Some(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(spec: WindowSpec, ts: i64) -> Vec<i64> {
        let last = spec.last_start(ts).expect("a window fits");
        spec.starts_from(last, ts).collect()
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

    /// Every start `k * slide + offset` of a window of `size` that holds `ts` and fits an
    /// `i64` whole, latest first, by brute force in i128.
    fn starts_by_brute_force(size: i64, slide: i64, offset: i64, ts: i64) -> Vec<i64> {
        let (size, slide, ts) = (i128::from(size), i128::from(slide), i128::from(ts));
        let fits = |s: i128| s >= i128::from(i64::MIN) && s + size <= i128::from(i64::MAX);
        let newest = ts - (ts - i128::from(offset)).rem_euclid(slide);
        if !fits(newest) {
            return Vec::new();
        }
        (0..)
            .map(|k| newest - k * slide)
            .take_while(|&s| s > ts - size)
            .filter(|&s| fits(s))
            .map(|s| s as i64)
            .collect()
    }

    #[test]
    fn window_bounds_never_wrap_at_the_ends_of_i64() {
        // Issue 12: event time i64::MIN gave the window start 9223372036854771616.
        let tumbling = WindowSpec::Tumbling {
            size: 10_000,
            offset: 0,
        };
        assert_eq!(tumbling.last_start(i64::MIN), None);
        assert_eq!(tumbling.last_start(i64::MAX), None);
        let specs = [
            tumbling,
            WindowSpec::Hopping {
                size: 10_000,
                slide: 1_000,
                offset: 300,
            },
            WindowSpec::Hopping {
                size: 2_500,
                slide: 1_000,
                offset: -7,
            },
            WindowSpec::Tumbling {
                size: i64::MAX,
                offset: 0,
            },
        ];
        let edges = [i64::MIN, i64::MIN + 1, i64::MIN + 2_500, i64::MIN + 20_000];
        let times = edges
            .into_iter()
            .chain(edges.map(|t| -(t + 1)))
            .chain([-1, 0, 1]);
        for spec in specs {
            let (size, slide) = (spec.size().expect("size"), spec.slide().expect("slide"));
            let offset = match spec {
                WindowSpec::Tumbling { offset, .. } | WindowSpec::Hopping { offset, .. } => offset,
                WindowSpec::Session { .. } | WindowSpec::Cumulate { .. } => 0,
            };
            for ts in times.clone() {
                let want = starts_by_brute_force(size, slide, offset, ts);
                let got: Vec<i64> = spec
                    .last_start(ts)
                    .map(|last| spec.starts_from(last, ts).collect())
                    .unwrap_or_default();
                assert_eq!(got, want, "{spec:?} ts {ts}");
            }
        }
    }

    #[test]
    fn windows_longer_than_the_event_time_range_are_refused() {
        let err = WindowSpec::Tumbling {
            size: EVENT_TIME_SPAN + 1,
            offset: 0,
        }
        .validate("operators[0].window")
        .expect_err("too long");
        assert!(
            err.to_string().starts_with("operators[0].window.size: "),
            "{err}"
        );
        let gap = WindowSpec::Session { gap: i64::MAX }.validate("w");
        assert!(gap.is_err_and(|e| e.to_string().starts_with("w.gap: ")));
        WindowSpec::Hopping {
            size: EVENT_TIME_SPAN,
            slide: EVENT_TIME_SPAN,
            offset: 0,
        }
        .validate("w")
        .expect("the whole range is allowed");
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

    /// Issue 12: `hopping` with size 1 d and slide 1 ms passed 4 GB RSS within seconds.
    #[test]
    fn hopping_windows_with_too_many_windows_per_event_are_refused() {
        let day = WindowSpec::Hopping {
            size: 86_400_000,
            slide: 1,
            offset: 0,
        };
        let err = day
            .validate("operators[0].window")
            .expect_err("86.4 M per event");
        let message = err.to_string();
        assert!(
            message.starts_with("operators[0].window.slide:")
                && message.contains("86400000 windows")
                && message.contains("at least 8640ms"),
            "{message}"
        );
        let bound = WindowSpec::Hopping {
            size: 86_400_000,
            slide: 8_640,
            offset: 0,
        };
        bound
            .validate("w")
            .expect("exactly 10 000 windows per event");
        let over = WindowSpec::Hopping {
            size: 86_400_000,
            slide: 8_639,
            offset: 0,
        };
        over.validate("w").expect_err("10 002 windows per event");
    }
}
