//! Reads a text file as numbered records in chunks, skipping blank lines.
//!
//! A chunk keeps its records back to back in one buffer, each followed by exactly one `\n`, so a
//! run of records is one contiguous slice that Arrow can decode in one call, and a single record
//! is still at hand, with its line number, when Arrow rejects it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::{Path, PathBuf};

use sluice_engine::{Error, Result};

/// One record in a chunk: `bytes[start..end]` (without its newline), first seen on `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub start: usize,
    pub end: usize,
    /// 1-based line number of the record's first line.
    pub line: u64,
}

/// Records read together.
#[derive(Debug, Default)]
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub records: Vec<Record>,
}

impl Chunk {
    /// The bytes of `records[range]`, newlines included: ready for a decoder.
    pub fn slice(&self, range: Range<usize>) -> &[u8] {
        match (
            self.records.get(range.start),
            range.end.checked_sub(1).and_then(|i| self.records.get(i)),
        ) {
            (Some(first), Some(last)) if range.start < range.end => {
                &self.bytes[first.start..last.end + 1]
            }
            _ => &[],
        }
    }

    /// The text of record `i`, without its newline (invalid UTF-8 replaced).
    pub fn raw(&self, i: usize) -> String {
        let r = self.records[i];
        String::from_utf8_lossy(&self.bytes[r.start..r.end]).into_owned()
    }
}

/// Reads records from a file, counting lines.
#[derive(Debug)]
pub struct RecordReader {
    path: PathBuf,
    reader: BufReader<File>,
    /// Lines read so far.
    line: u64,
    /// Whether a record continues past a newline inside double quotes (CSV).
    quoted_newlines: bool,
}

impl RecordReader {
    /// Opens `path`; failing to is an [`Error::Io`] naming it.
    pub fn open(path: &Path, quoted_newlines: bool) -> Result<Self> {
        let file = File::open(path).map_err(Error::io(path))?;
        Ok(RecordReader {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            line: 0,
            quoted_newlines,
        })
    }

    /// Reads up to `max_records` records; `None` at the end of the file.
    pub fn next_chunk(&mut self, max_records: usize) -> Result<Option<Chunk>> {
        let mut chunk = Chunk::default();
        while chunk.records.len() < max_records.max(1) && self.read_record(&mut chunk)? {}
        Ok((!chunk.records.is_empty()).then_some(chunk))
    }

    /// Appends the next non-blank record to `chunk`; false at the end of the file.
    fn read_record(&mut self, chunk: &mut Chunk) -> Result<bool> {
        loop {
            let start = chunk.bytes.len();
            let first_line = self.line + 1;
            let mut quotes = 0usize;
            loop {
                let line_start = chunk.bytes.len();
                let read = self
                    .reader
                    .read_until(b'\n', &mut chunk.bytes)
                    .map_err(Error::io(&self.path))?;
                if read == 0 {
                    break;
                }
                self.line += 1;
                strip_line_end(&mut chunk.bytes);
                if self.quoted_newlines {
                    quotes += chunk.bytes[line_start..]
                        .iter()
                        .filter(|&&b| b == b'"')
                        .count();
                }
                // An odd number of quotes means a quoted field is still open: the record goes on.
                if quotes.is_multiple_of(2) {
                    break;
                }
                chunk.bytes.push(b'\n');
            }
            if !quotes.is_multiple_of(2) {
                // The file ended inside quotes: drop the newline added for the missing next line.
                chunk.bytes.pop();
            }
            if chunk.bytes.len() == start && self.line < first_line {
                return Ok(false);
            }
            if chunk.bytes[start..].iter().all(u8::is_ascii_whitespace) {
                chunk.bytes.truncate(start);
                continue;
            }
            chunk.records.push(Record {
                start,
                end: chunk.bytes.len(),
                line: first_line,
            });
            chunk.bytes.push(b'\n');
            return Ok(true);
        }
    }
}

/// Removes a trailing `\n` or `\r\n`.
fn strip_line_end(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, quoted_newlines: bool, per_chunk: usize) -> Vec<(u64, String)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.txt");
        std::fs::write(&path, text).expect("write");
        let mut reader = RecordReader::open(&path, quoted_newlines).expect("open");
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk(per_chunk).expect("chunk") {
            assert!(chunk.records.len() <= per_chunk);
            assert_eq!(chunk.slice(0..chunk.records.len()).len(), chunk.bytes.len());
            out.extend(
                chunk
                    .records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (r.line, chunk.raw(i))),
            );
        }
        out
    }

    #[test]
    fn blank_lines_are_skipped_but_counted() {
        let got = read_all("a\n\n  \nb\r\nc", false, 2);
        assert_eq!(got, vec![(1, "a".into()), (4, "b".into()), (5, "c".into())]);
    }

    #[test]
    fn quoted_newlines_keep_a_csv_record_together() {
        let got = read_all("h\n\"x\ny\",1\nz,2\n\"open", true, 10);
        let want = [(1, "h"), (2, "\"x\ny\",1"), (4, "z,2"), (5, "\"open")];
        assert_eq!(got, want.map(|(n, s)| (n, s.to_string())));
    }

    #[test]
    fn an_empty_file_has_no_chunks() {
        assert!(read_all("", false, 4).is_empty());
        assert!(read_all("\n\n", false, 4).is_empty());
    }
}
