//! Watermarks passed through a repartition topic: each writer (a task of the first stage, one
//! per source partition) sends its watermark to every partition of the topic, as a message
//! with no key or value and three headers; a reader's partition is complete up to the smallest
//! watermark of all writers.
//!
//! Rows of a repartition topic come from every writer, each at its own pace: the largest event
//! time a partition has seen says nothing about the slowest writer. So the partition's
//! watermark is the minimum over writers, and none until every writer has spoken (`of` in the
//! markers says how many there are; the largest `of` seen counts, so that writers added with
//! new source partitions are waited for too).

use std::collections::BTreeMap;

use arrow::array::RecordBatch;
use rdkafka::message::{Header, OwnedHeaders};
use sluice_engine::Result;
use sluice_engine::source::SourceBatch;

use super::KafkaRecord;
use super::format::PayloadDecoder;

/// The header holding the writer's watermark (decimal epoch ms).
pub(super) const WATERMARK: &str = "sluice-watermark";
/// The header naming the writer (its source partition, `topic/partition`).
const WRITER: &str = "sluice-writer";
/// The header saying how many writers there are.
const WRITERS: &str = "sluice-writers";

/// The headers of a marker from `writer`, one of `writers`, at `watermark`.
pub(super) fn marker(writer: &str, writers: usize, watermark: i64) -> OwnedHeaders {
    let (watermark, writers) = (watermark.to_string(), writers.to_string());
    OwnedHeaders::new()
        .insert(Header {
            key: WATERMARK,
            value: Some(watermark.as_bytes()),
        })
        .insert(Header {
            key: WRITER,
            value: Some(writer.as_bytes()),
        })
        .insert(Header {
            key: WRITERS,
            value: Some(writers.as_bytes()),
        })
}

/// What a marker says, from a message's headers: (writer, writers, watermark); `None` for a
/// message that is not one.
pub(super) fn read_marker(headers: &[(&str, Option<&[u8]>)]) -> Option<(String, usize, i64)> {
    let (mut watermark, mut writer, mut writers) = (None, None, None);
    for &(key, value) in headers {
        let text = value.and_then(|v| std::str::from_utf8(v).ok());
        match key {
            WATERMARK => watermark = text.and_then(|t| t.parse().ok()),
            WRITER => writer = text.map(str::to_string),
            WRITERS => writers = text.and_then(|t| t.parse().ok()),
            _ => {}
        }
    }
    Some((writer?, writers?, watermark?))
}

/// The writers' watermarks one partition of a repartition topic has seen.
#[derive(Debug, Default)]
pub(super) struct WriterWatermarks {
    latest: BTreeMap<String, i64>,
    writers: usize,
    reported: Option<i64>,
}

impl WriterWatermarks {
    /// Takes in a marker; the partition's watermark if it moved.
    pub(super) fn observe(
        &mut self,
        writer: String,
        writers: usize,
        watermark: i64,
    ) -> Option<i64> {
        self.writers = self.writers.max(writers);
        let slot = self.latest.entry(writer).or_insert(i64::MIN);
        *slot = (*slot).max(watermark);
        if self.latest.len() < self.writers {
            return None;
        }
        let min = self.latest.values().copied().min()?;
        if self.reported.is_some_and(|r| r >= min) {
            return None;
        }
        self.reported = Some(min);
        Some(min)
    }
}

/// Decodes `records`; on a repartition topic (`writers`), the writers' markers among them
/// move the partition's watermark instead of becoming rows.
pub(super) fn decode(
    decoder: &PayloadDecoder,
    writers: Option<&mut WriterWatermarks>,
    records: Vec<KafkaRecord<'_>>,
) -> Result<SourceBatch> {
    let Some(writers) = writers else {
        return decoder.decode(&records);
    };
    let mut watermark = None;
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        match read_marker(&r.headers) {
            Some((writer, count, w)) => {
                if let Some(moved) = writers.observe(writer, count, w) {
                    watermark = Some(moved);
                }
            }
            None => rows.push(r),
        }
    }
    let mut batch = if rows.is_empty() {
        SourceBatch::new(RecordBatch::new_empty(decoder.schema()))
    } else {
        decoder.decode(&rows)?
    };
    batch.watermark = watermark;
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_waits_for_every_writer_and_follows_the_slowest() {
        let mut w = WriterWatermarks::default();
        assert_eq!(w.observe("t/0".into(), 3, 100), None);
        assert_eq!(w.observe("t/1".into(), 3, 50), None);
        assert_eq!(w.observe("t/0".into(), 3, 200), None, "t/2 not heard yet");
        assert_eq!(w.observe("t/2".into(), 3, 70), Some(50));
        assert_eq!(w.observe("t/0".into(), 3, 300), None, "t/1 still at 50");
        assert_eq!(w.observe("t/1".into(), 3, 400), Some(70));
        // A fourth writer appears (a partition added upstream): wait for it.
        assert_eq!(w.observe("t/2".into(), 4, 500), None);
        assert_eq!(w.observe("t/3".into(), 4, 250), Some(250));
        // Older markers (a writer's earlier owner) never move a watermark back.
        assert_eq!(w.observe("t/3".into(), 4, 10), None);
    }

    #[test]
    fn markers_round_trip_through_headers() {
        use rdkafka::message::Headers;
        let headers = marker("payments/3", 6, 1_767_225_600_000);
        let seen: Vec<(&str, Option<&[u8]>)> = headers.iter().map(|h| (h.key, h.value)).collect();
        assert_eq!(
            read_marker(&seen),
            Some(("payments/3".to_string(), 6, 1_767_225_600_000))
        );
        assert_eq!(read_marker(&[]), None);
        assert_eq!(read_marker(&[("producer", Some(b"x".as_slice()))]), None);
    }
}
