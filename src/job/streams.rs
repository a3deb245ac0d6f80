//! `[streams.<name>]` and `[join]`: a job that joins two named streams.
//!
//! Each stream has its own source, event time and (stateless) operators; `[join]` says which
//! streams, on which keys and within which time bound. The top-level `operators` then run on
//! the joined rows.

use std::path::Path;

use serde::Deserialize;
use sluice_connectors::SourceSpec;
use sluice_engine::duration::SignedDurationMs;
use sluice_engine::error::{Error, Result};
use sluice_engine::operator::{JoinKind, JoinTime, StreamJoinSpec};
use sluice_engine::pipeline::InputStream;

use super::{EventTimeFile, OperatorFile, WindowFile};

/// `[streams.<name>]`: one input of a joined job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFile {
    /// Where the stream's events come from.
    pub source: SourceSpec,
    /// Its event-time column and watermark settings.
    pub event_time: EventTimeFile,
    /// Filters, projections and lookup joins applied before the join.
    #[serde(default)]
    pub operators: Vec<OperatorFile>,
}

/// Which time bound a join uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinType {
    /// Rows in the same window.
    Window,
    /// Rows within an interval of each other.
    Interval,
}

/// `[join]`: how the two streams meet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinFile {
    /// `window` or `interval`.
    #[serde(rename = "type")]
    pub join_type: JoinType,
    /// The left stream's name.
    pub left: String,
    /// The right stream's name.
    pub right: String,
    /// Left key columns (one name or a list).
    pub on: super::operators::KeyColumns,
    /// Right key columns, pairwise with `on` (default: the same names).
    #[serde(default)]
    pub right_on: Option<super::operators::KeyColumns>,
    /// `inner` (default) or `left` (window joins).
    #[serde(default)]
    pub kind: JoinKind,
    /// The window (window joins).
    #[serde(default)]
    pub window: Option<WindowFile>,
    /// How far the left row may come before the right one (interval joins; may be negative).
    #[serde(default)]
    pub lower: Option<SignedDurationMs>,
    /// How far the left row may come after the right one (interval joins; may be negative).
    #[serde(default)]
    pub upper: Option<SignedDurationMs>,
}

impl JoinFile {
    /// The engine's join spec.
    pub fn to_spec(&self) -> Result<StreamJoinSpec> {
        let time = match self.join_type {
            JoinType::Window => {
                if self.lower.is_some() || self.upper.is_some() {
                    return Err(Error::config(
                        "join.lower",
                        "`lower` and `upper` belong to interval joins; a window join has `window`",
                    ));
                }
                let window = self.window.as_ref().ok_or_else(|| {
                    Error::config(
                        "join.window",
                        "a window join needs `window = { type = \"tumbling\", size = \"1m\" }`",
                    )
                })?;
                JoinTime::Window(window.to_spec())
            }
            JoinType::Interval => {
                if self.window.is_some() {
                    return Err(Error::config(
                        "join.window",
                        "`window` belongs to window joins; an interval join has `lower` and `upper`",
                    ));
                }
                let (Some(lower), Some(upper)) = (self.lower, self.upper) else {
                    return Err(Error::config(
                        "join.lower",
                        "an interval join needs `lower` and `upper` (left.ts BETWEEN \
                         right.ts - lower AND right.ts + upper)",
                    ));
                };
                JoinTime::Interval {
                    lower: lower.0,
                    upper: upper.0,
                }
            }
        };
        let on = self.on.names();
        Ok(StreamJoinSpec {
            left: self.left.clone(),
            right: self.right.clone(),
            right_on: self
                .right_on
                .as_ref()
                .map_or_else(|| on.clone(), |k| k.names()),
            on,
            kind: self.kind,
            time,
        })
    }
}

impl StreamFile {
    /// The engine's input stream called `name`; relative paths resolve against `base_dir`.
    pub fn to_input(&self, name: &str, base_dir: &Path) -> Result<InputStream> {
        let source = self
            .source
            .build(base_dir)
            .map_err(|e| in_stream(e, name))?;
        let mut stream = InputStream::new(name, source, self.event_time.to_spec());
        for (i, operator) in self.operators.iter().enumerate() {
            let setting = format!("streams.{name}.operators[{i}]");
            stream = stream.operator(operator.to_spec_at(&setting, base_dir)?);
        }
        Ok(stream)
    }
}

/// Names the stream in a source error's setting.
fn in_stream(error: Error, name: &str) -> Error {
    match error {
        Error::Config { key, message } => Error::Config {
            key: format!("streams.{name}.{key}"),
            message,
        },
        other => other,
    }
}
