//! What a job checkpoint records besides operator state: source positions, watermarks,
//! counters and the sinks' staged output, stored as the manifest's `info`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::MetricsSnapshot;
use crate::sink::Staged;
use crate::source::Position;
use crate::state::StateHeader;

/// The non-bulk part of a job checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// The job's name, for listings.
    pub job: String,
    /// Per source partition (by name): where it stands and its event-time progress.
    pub sources: BTreeMap<String, PartitionState>,
    /// The watermark every operator has seen (`i64::MIN`: none yet).
    pub watermark: i64,
    /// Stateful operators by position in the chain, each with its state's header and the
    /// checkpoint files holding its batches (in the header's order).
    pub operators: Vec<OperatorState>,
    /// What each sink staged for this epoch and earlier ones not yet published: published
    /// once the checkpoint is complete.
    pub sinks: SinkStates,
    /// Counters of the job so far.
    pub counts: Counts,
}

/// One source partition in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Where reading resumes.
    pub position: Position,
    /// The largest event time it had produced (`None`: none yet).
    pub max_ts: Option<i64>,
}

/// One stateful operator in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    /// Its position in the operator chain.
    pub index: usize,
    /// Its snapshot without the batches.
    pub header: StateHeader,
    /// The checkpoint file of each batch, in the header's order.
    pub files: Vec<String>,
}

/// The staged output of each sink (empty when it staged nothing or is not transactional),
/// oldest epoch first: a checkpoint holds its own epoch's and those of earlier epochs not yet
/// published (their checkpoint or their publishing failed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStates {
    pub output: Vec<Staged>,
    pub late: Vec<Staged>,
    pub dead_letter: Vec<Staged>,
}

impl SinkStates {
    /// Whether no sink staged anything.
    pub fn is_empty(&self) -> bool {
        self.output.is_empty() && self.late.is_empty() && self.dead_letter.is_empty()
    }

    /// Adds `later`'s staged output after this one's, sink by sink.
    pub fn append(&mut self, later: SinkStates) {
        self.output.extend(later.output);
        self.late.extend(later.late);
        self.dead_letter.extend(later.dead_letter);
    }
}

/// Job counters carried across restarts, so totals match an uninterrupted run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub events_in: u64,
    pub events_out: u64,
    pub late: u64,
    pub malformed: u64,
}

impl From<MetricsSnapshot> for Counts {
    fn from(m: MetricsSnapshot) -> Self {
        Counts {
            events_in: m.events_in,
            events_out: m.events_out,
            late: m.late,
            malformed: m.malformed,
        }
    }
}
