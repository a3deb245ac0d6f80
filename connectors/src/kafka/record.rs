//! One Kafka message as decoders and dead letters see it, borrowed from the client's buffers.

/// A message: where it sits (topic, partition, offset), its timestamp, key, payload and headers.
#[derive(Debug, Clone, Default)]
pub struct KafkaRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// The message timestamp in epoch milliseconds (create or log-append time), if it has one.
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
    /// `None` for a tombstone.
    pub payload: Option<&'a [u8]>,
    /// Header names and values, in order (a name may repeat).
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl KafkaRecord<'_> {
    /// `topic/partition`: how dead letters and logs name the message's partition.
    pub fn source(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }
}
