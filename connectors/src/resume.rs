//! Test support: restarts a partition at every batch boundary and demands the uninterrupted read.
//!
//! The oracle is the same input read in one go: a partition that resumes from a checkpointed
//! [`Position`] must yield, after the batches read before the cut, exactly the rows, dead letters
//! (with their lines) and row locations of that read, and end at the same position.

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use sluice_engine::source::{DeadLetter, Position, SourceBatch, SourcePartition};

/// Opens a fresh copy of the source under test and returns its partitions.
pub(crate) type Open<'a> = &'a dyn Fn() -> Vec<Box<dyn SourcePartition>>;

/// What a run of batches yielded, flattened so that batch boundaries do not matter.
#[derive(Debug, PartialEq)]
pub(crate) struct Flat {
    pub rows: Option<RecordBatch>,
    pub dead_letters: Vec<DeadLetter>,
    /// The row locations of the batches that carry them.
    pub locations: Vec<u64>,
    /// The rows of batches without locations (generators).
    pub rows_without_locations: usize,
}

/// Joins `batches` into one [`Flat`].
pub(crate) fn flatten<'a>(batches: impl IntoIterator<Item = &'a SourceBatch>) -> Flat {
    let batches: Vec<&SourceBatch> = batches.into_iter().collect();
    let rows = batches.first().map(|first| {
        concat_batches(&first.batch.schema(), batches.iter().map(|b| &b.batch)).expect("concat")
    });
    Flat {
        rows: rows.filter(|r| r.num_rows() > 0),
        dead_letters: batches
            .iter()
            .flat_map(|b| b.dead_letters.clone())
            .collect(),
        locations: batches
            .iter()
            .flat_map(|b| b.locations.as_deref().unwrap_or(&[]).to_vec())
            .collect(),
        rows_without_locations: batches
            .iter()
            .filter(|b| b.locations.is_none())
            .map(|b| b.batch.num_rows())
            .sum(),
    }
}

/// Reads `partition` to its end: its batches and its position before the first and after each.
fn read_to_end(partition: &mut dyn SourcePartition) -> (Vec<SourceBatch>, Vec<Position>) {
    let position = |p: &dyn SourcePartition| p.position().expect("a resumable partition");
    let mut positions = vec![position(partition)];
    let mut batches = Vec::new();
    while let Some(batch) = partition.next_batch().expect("next batch") {
        batches.push(batch);
        positions.push(position(partition));
    }
    (batches, positions)
}

/// Partition `index` of a fresh `open()`, moved to `position`.
fn resumed(open: Open, index: usize, position: Position) -> Box<dyn SourcePartition> {
    let mut partition = open().into_iter().nth(index).expect("partition");
    partition.seek(position).expect("seek");
    assert_eq!(
        partition.position(),
        Some(position),
        "position right after seek"
    );
    partition
}

/// For every partition of `open()` and every cut between (and around) its batches: reads up to
/// the cut, resumes a fresh partition from the position there, and checks that the rest makes
/// the uninterrupted read. Also restarts after every single batch in a chain. Returns the
/// uninterrupted batches per partition, for the caller's own checks against expected values.
pub(crate) fn assert_resumes_everywhere(open: Open) -> Vec<Vec<SourceBatch>> {
    let mut all = Vec::new();
    for (index, mut partition) in open().into_iter().enumerate() {
        let name = partition.name();
        let (batches, positions) = read_to_end(partition.as_mut());
        let whole = flatten(&batches);
        let end = positions.last().copied().expect("a start position");
        for cut in 0..=batches.len() {
            // Read up to the cut with a partition of its own, as a job that stops there would.
            let mut first_run = open().into_iter().nth(index).expect("partition");
            for _ in 0..cut {
                first_run
                    .next_batch()
                    .expect("next batch")
                    .expect("a batch");
            }
            let at = first_run.position().expect("position");
            assert_eq!(at, positions[cut], "{name}: position after {cut} batches");
            let mut second_run = resumed(open, index, at);
            let (rest, rest_positions) = read_to_end(second_run.as_mut());
            assert_eq!(
                flatten(batches[..cut].iter().chain(&rest)),
                whole,
                "{name}: resumed after {cut} batches at {at:?}"
            );
            assert_eq!(
                rest_positions.last(),
                Some(&end),
                "{name}: end after cut {cut}"
            );
            if cut == batches.len() {
                assert!(rest.is_empty(), "{name}: seeking to the end yields nothing");
            }
        }
        // A job that restarts after every batch.
        let mut chained = Vec::new();
        let mut at = positions[0];
        loop {
            let mut partition = resumed(open, index, at);
            let Some(batch) = partition.next_batch().expect("next batch") else {
                break;
            };
            chained.push(batch);
            at = partition.position().expect("position");
        }
        assert_eq!(
            flatten(&chained),
            whole,
            "{name}: restarted after every batch"
        );
        all.push(batches);
    }
    all
}
