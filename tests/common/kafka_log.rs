//! Reads a topic's log as the broker stores it, transaction markers included, and applies
//! them itself: what a `read_committed` consumer should see. The test broker (tansu) does not
//! hide the records of aborted transactions from such consumers, and librdkafka never shows
//! the markers, so the exactly-once tests speak the Fetch protocol (version 4: record batches
//! with their producer ids, control batches with their commit or abort) over a plain socket.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;

/// One data record of the log.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub offset: i64,
    /// The message timestamp, epoch ms.
    pub timestamp: i64,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The producer id of a transactional record; `None` outside transactions.
    pub transaction: Option<i64>,
}

impl LogRecord {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// What the log of one partition holds: data records and, per producer id, the offsets and
/// kinds (true: commit) of its transaction markers.
#[derive(Debug, Default)]
pub struct PartitionLog {
    pub records: Vec<LogRecord>,
    pub markers: Vec<(i64, i64, bool)>,
}

impl PartitionLog {
    /// The records a `read_committed` reader sees: non-transactional ones, and transactional
    /// ones whose producer's next marker after them commits. Records of a transaction with no
    /// marker yet (still open) are left out, as Kafka leaves them past the last stable offset.
    pub fn committed(&self) -> Vec<LogRecord> {
        self.records
            .iter()
            .filter(|r| match r.transaction {
                None => true,
                Some(pid) => self
                    .markers
                    .iter()
                    .filter(|(p, offset, _)| *p == pid && *offset > r.offset)
                    .min_by_key(|(_, offset, _)| *offset)
                    .is_some_and(|(_, _, commit)| *commit),
            })
            .cloned()
            .collect()
    }

    /// How many transactions ended in an abort.
    pub fn aborts(&self) -> usize {
        self.markers.iter().filter(|(_, _, commit)| !commit).count()
    }
}

/// The whole log of `topic`'s `partition` on the broker at `broker` (`host:port`).
pub fn read_partition(broker: &str, topic: &str, partition: i32) -> PartitionLog {
    let mut stream = TcpStream::connect(broker).expect("connect to the broker");
    let mut log = PartitionLog::default();
    let mut next = 0i64;
    for correlation in 1.. {
        let (high, set) = fetch(&mut stream, correlation, topic, partition, next);
        let before = next;
        parse_record_set(&set, &mut log, &mut next);
        if next >= high || next == before {
            assert!(
                next >= high,
                "the log of {topic}/{partition} stopped at {next} of {high}"
            );
            break;
        }
    }
    log
}

/// The committed records of every partition of `topic` (`partitions` of them).
pub fn committed_records(broker: &str, topic: &str, partitions: i32) -> (Vec<LogRecord>, usize) {
    let mut records = Vec::new();
    let mut aborts = 0;
    for p in 0..partitions {
        let log = read_partition(broker, topic, p);
        aborts += log.aborts();
        records.extend(log.committed());
    }
    (records, aborts)
}

/// One Fetch (v4, read_uncommitted) of `partition` from `offset`: its high watermark and
/// record set.
fn fetch(
    stream: &mut TcpStream,
    correlation: i32,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i64, Vec<u8>) {
    let mut body = Vec::new();
    body.extend(1i16.to_be_bytes()); // api key: Fetch
    body.extend(4i16.to_be_bytes()); // api version
    body.extend(correlation.to_be_bytes());
    string(&mut body, "sluice-tests");
    body.extend((-1i32).to_be_bytes()); // replica id
    body.extend(100i32.to_be_bytes()); // max wait ms
    body.extend(0i32.to_be_bytes()); // min bytes
    body.extend((8i32 << 20).to_be_bytes()); // max bytes
    body.push(0); // read_uncommitted: every record and every marker
    body.extend(1i32.to_be_bytes());
    string(&mut body, topic);
    body.extend(1i32.to_be_bytes());
    body.extend(partition.to_be_bytes());
    body.extend(offset.to_be_bytes());
    body.extend((8i32 << 20).to_be_bytes());
    let mut request = (body.len() as i32).to_be_bytes().to_vec();
    request.extend(body);
    stream.write_all(&request).expect("send Fetch");
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("Fetch response size");
    let mut response = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut response).expect("Fetch response");
    let mut r = Cursor(&response, 0);
    assert_eq!(r.i32(), correlation, "correlation id");
    r.i32(); // throttle time
    assert_eq!(r.i32(), 1, "one topic");
    r.string();
    assert_eq!(r.i32(), 1, "one partition");
    assert_eq!(r.i32(), partition);
    let error = r.i16();
    assert_eq!(error, 0, "Fetch error {error} for {topic}/{partition}");
    let high = r.i64();
    r.i64(); // last stable offset
    let aborted = r.i32();
    for _ in 0..aborted.max(0) {
        r.i64();
        r.i64();
    }
    let len = r.i32().max(0) as usize;
    (high, r.take(len).to_vec())
}

/// Parses the complete record batches of `set` (the last may be cut short), moving `next`
/// past each.
fn parse_record_set(set: &[u8], log: &mut PartitionLog, next: &mut i64) {
    let mut r = Cursor(set, 0);
    while r.left() >= 12 {
        let base = r.i64();
        let length = r.i32() as usize;
        if r.left() < length {
            break;
        }
        let mut b = Cursor(r.take(length), 0);
        b.i32(); // partition leader epoch
        assert_eq!(b.i8(), 2, "record batch v2");
        b.i32(); // crc
        let attributes = b.i16();
        assert_eq!(attributes & 0x7, 0, "uncompressed batches");
        let transactional = attributes & 0x10 != 0;
        let control = attributes & 0x20 != 0;
        let last_delta = b.i32();
        let first_timestamp = b.i64();
        b.i64(); // max timestamp
        let producer = b.i64();
        b.i16(); // producer epoch
        b.i32(); // base sequence
        let count = b.i32();
        for _ in 0..count {
            b.varint(); // record length
            b.i8(); // attributes
            let timestamp = first_timestamp + b.varint();
            let offset = base + b.varint();
            let key = b.bytes();
            let value = b.bytes();
            let headers = (0..b.varint())
                .map(|_| {
                    let k = b.bytes().map(|k| String::from_utf8_lossy(&k).into_owned());
                    (k.unwrap_or_default(), b.bytes().unwrap_or_default())
                })
                .collect();
            if control {
                // Control record key: version (int16), type (int16: 0 abort, 1 commit).
                let key = key.expect("a control record has a key");
                let kind = i16::from_be_bytes([key[2], key[3]]);
                log.markers.push((producer, offset, kind == 1));
            } else {
                log.records.push(LogRecord {
                    offset,
                    timestamp,
                    value,
                    headers,
                    transaction: transactional.then_some(producer),
                });
            }
        }
        *next = base + i64::from(last_delta) + 1;
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as i16).to_be_bytes());
    out.extend(s.as_bytes());
}

/// A reader of big-endian fields and zig-zag varints.
struct Cursor<'a>(&'a [u8], usize);

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.0.len() - self.1
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.0[self.1..self.1 + n];
        self.1 += n;
        out
    }
    fn i8(&mut self) -> i8 {
        self.take(1)[0] as i8
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().expect("2 bytes"))
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    fn string(&mut self) -> String {
        let n = self.i16().max(0) as usize;
        String::from_utf8_lossy(self.take(n)).into_owned()
    }
    fn varint(&mut self) -> i64 {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.take(1)[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        (value >> 1) as i64 ^ -((value & 1) as i64)
    }
    /// A varint length (-1: null) and that many bytes.
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.varint();
        (n >= 0).then(|| self.take(n as usize).to_vec())
    }
}

/// Records grouped by a header's value (records without it under `""`).
pub fn by_header<'r>(records: &'r [LogRecord], name: &str) -> BTreeMap<String, Vec<&'r LogRecord>> {
    let mut out: BTreeMap<String, Vec<&LogRecord>> = BTreeMap::new();
    for r in records {
        let value = r
            .header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        out.entry(value).or_default().push(r);
    }
    out
}
