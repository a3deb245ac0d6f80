//! OVER frames: which rows of its partition an OVER aggregate sees besides the current row.
//!
//! Every kind ends at the current row (`... AND CURRENT ROW`), as Flink's streaming OVER
//! aggregations do: a row's result is final once the watermark passes its time, so it is
//! emitted then, once. Bounded frames keep their rows (so that rows can leave them);
//! unbounded ones keep running totals per key only, forever (Flink keeps them until a state
//! TTL, which sluice does not have yet).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest `ROWS n PRECEDING` accepted: each key keeps its last `n` values per aggregate.
pub const MAX_ROWS_PRECEDING: u64 = 1_000_000;

/// The rows an OVER aggregate covers for a row at time `t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OverFrame {
    /// `RANGE BETWEEN INTERVAL ... PRECEDING AND CURRENT ROW`: the rows of the key whose time
    /// is in `[t - preceding, t]` (ms), every row at `t` included, even those after it.
    Range {
        /// How far back the frame reaches, in ms.
        preceding: i64,
    },
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW`: the row and the `preceding` rows of the
    /// key before it, in (time, arrival) order.
    Rows {
        /// How many earlier rows the frame holds.
        preceding: u64,
    },
    /// `RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW` (Flink's default frame): every
    /// row of the key up to `t`, every row at `t` included.
    RangeUnbounded,
    /// `ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW`: the row and every row of the key
    /// before it, in (time, arrival) order.
    RowsUnbounded,
}

impl OverFrame {
    /// Checks the bounds; `setting` names the job key in errors.
    pub fn validate(&self, setting: &str) -> Result<()> {
        match *self {
            OverFrame::Range { preceding } if preceding < 0 => Err(Error::config(
                setting,
                "a RANGE frame reaches back a non-negative span of time",
            )),
            OverFrame::Rows { preceding } if preceding > MAX_ROWS_PRECEDING => Err(Error::config(
                setting,
                format!("a ROWS frame holds at most {MAX_ROWS_PRECEDING} preceding rows"),
            )),
            _ => Ok(()),
        }
    }

    /// The frame in short (`RANGE 1h PRECEDING`, `ROWS 9 PRECEDING`), for EXPLAIN.
    pub fn describe(&self) -> String {
        match *self {
            OverFrame::Range { preceding } => {
                format!("RANGE {} PRECEDING", crate::duration::DurationMs(preceding))
            }
            OverFrame::Rows { preceding } => format!("ROWS {preceding} PRECEDING"),
            OverFrame::RangeUnbounded => "RANGE UNBOUNDED PRECEDING".into(),
            OverFrame::RowsUnbounded => "ROWS UNBOUNDED PRECEDING".into(),
        }
    }

    /// Whether the frame reaches back to the key's first row (keeps totals, not rows).
    pub fn is_unbounded(&self) -> bool {
        matches!(self, OverFrame::RangeUnbounded | OverFrame::RowsUnbounded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        assert!(OverFrame::Range { preceding: 0 }.validate("f").is_ok());
        assert!(OverFrame::Range { preceding: -1 }.validate("f").is_err());
        assert!(OverFrame::Rows { preceding: 0 }.validate("f").is_ok());
        let err = OverFrame::Rows {
            preceding: MAX_ROWS_PRECEDING + 1,
        }
        .validate("operators[0].aggregates[1].rows")
        .expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("operators[0].aggregates[1].rows")
        );
    }

    #[test]
    fn frames_describe_themselves() {
        assert_eq!(
            OverFrame::Range {
                preceding: 3_600_000
            }
            .describe(),
            "RANGE 1h PRECEDING"
        );
        assert_eq!(
            OverFrame::Rows { preceding: 9 }.describe(),
            "ROWS 9 PRECEDING"
        );
        assert_eq!(
            OverFrame::RangeUnbounded.describe(),
            "RANGE UNBOUNDED PRECEDING"
        );
        assert!(OverFrame::RowsUnbounded.is_unbounded());
        assert!(!OverFrame::Rows { preceding: 1 }.is_unbounded());
    }
}
