//! Messages for the format tests, and their decoding poll by poll.

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use sluice_engine::source::{DeadLetter, Location};

use super::PayloadDecoder;
use crate::kafka::KafkaRecord;

/// A message of partition `payments/3` at `offset`.
pub(super) fn message(offset: i64, payload: Option<&[u8]>) -> KafkaRecord<'_> {
    KafkaRecord {
        topic: "payments",
        partition: 3,
        offset,
        timestamp: Some(1_700_000_000_000 + offset),
        key: None,
        payload,
        headers: Vec::new(),
    }
}

/// Messages at offsets 100, 101, ... with these payloads.
pub(super) fn messages<'a>(payloads: &[Option<&'a [u8]>]) -> Vec<KafkaRecord<'a>> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| message(100 + i as i64, *p))
        .collect()
}

/// What decoding some messages gave, all polls together.
#[derive(Debug)]
pub(super) struct Decoded {
    pub batch: RecordBatch,
    /// The offset of each row's message.
    pub offsets: Vec<u64>,
    pub dead_letters: Vec<DeadLetter>,
}

impl Decoded {
    /// (offset, reason) of each dead letter.
    pub fn reasons(&self) -> Vec<(u64, &str)> {
        self.dead_letters
            .iter()
            .map(|d| match d.location {
                Location::Offset(offset) => (offset, d.reason.as_str()),
                other => panic!("a Kafka dead letter located by {other:?}"),
            })
            .collect()
    }
}

/// Decodes `records` in polls of `poll` messages (the last may be shorter), checking what
/// every batch must satisfy: a row or a dead letter for each message, each once.
pub(super) fn decode_in_polls(
    decoder: &PayloadDecoder,
    records: &[KafkaRecord<'_>],
    poll: usize,
) -> Decoded {
    let mut batches = Vec::new();
    let mut offsets = Vec::new();
    let mut dead_letters = Vec::new();
    for chunk in records.chunks(poll.max(1)) {
        let read = decoder.decode(chunk).expect("decode");
        assert_eq!(read.batch.schema(), decoder.schema());
        let locations = read.locations.as_deref().expect("offsets").to_vec();
        assert_eq!(locations.len(), read.batch.num_rows());
        assert_eq!(
            locations.len() + read.dead_letters.len(),
            chunk.len(),
            "one row or one dead letter per message"
        );
        for letter in &read.dead_letters {
            assert_eq!(letter.source, "payments/3");
        }
        offsets.extend(locations);
        dead_letters.extend(read.dead_letters);
        batches.push(read.batch);
    }
    let batch = concat_batches(&decoder.schema(), &batches).expect("concat");
    Decoded {
        batch,
        offsets,
        dead_letters,
    }
}

/// A seeded SplitMix64 generator: reproducible inputs without a dependency.
#[derive(Debug)]
pub(super) struct SplitMix(pub u64);

impl SplitMix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
