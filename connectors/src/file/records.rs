//! Reads a text file as numbered records in chunks, skipping blank lines.
//!
//! A chunk keeps its records back to back in one buffer, each followed by exactly one `\n`, so a
//! run of records is one contiguous slice that Arrow can decode in one call, and a single record
//! is still at hand, with its line number, when Arrow rejects it. The reader counts the bytes
//! and lines it consumes, so it can stop after any record and a new one can start there.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use sluice_engine::source::Position;
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
    /// Bytes read so far: the offset of the next unread byte.
    offset: u64,
    /// Whether a record continues past a newline inside double quotes (CSV).
    quoted_newlines: bool,
}

impl RecordReader {
    /// Opens `path`; failing to is an [`Error::Io`] naming it.
    pub fn open(path: &Path, quoted_newlines: bool) -> Result<Self> {
        Self::open_at(path, quoted_newlines, Position::default())
    }

    /// Opens `path` at `at`, a [`RecordReader::position`] of an earlier reader of the same
    /// file: reading goes on from its byte offset with its line count. The byte before the
    /// offset must end a line (or the offset be the end of the file); if not, the file changed
    /// and the error says so.
    pub fn open_at(path: &Path, quoted_newlines: bool, at: Position) -> Result<Self> {
        // Every line read has at least one byte and every byte read belongs to a line.
        if (at.offset == 0) != (at.records == 0) {
            return Err(resume_error(path, at, "bytes and lines disagree"));
        }
        let mut file = File::open(path).map_err(Error::io(path))?;
        if let Some(before) = at.offset.checked_sub(1) {
            skip(&mut file, before).map_err(Error::io(path))?;
        }
        let mut reader = BufReader::new(file);
        if at.offset > 0 {
            let mut last = [0u8];
            let read = reader.read(&mut last).map_err(Error::io(path))?;
            let at_end = reader.fill_buf().map_err(Error::io(path))?.is_empty();
            if read == 0 {
                return Err(resume_error(path, at, "the file ends before it"));
            }
            if last[0] != b'\n' && !at_end {
                return Err(resume_error(path, at, "it is not the start of a line"));
            }
        }
        Ok(RecordReader {
            path: path.to_path_buf(),
            reader,
            line: at.records,
            offset: at.offset,
            quoted_newlines,
        })
    }

    /// The offset of the next unread record and the lines read before it.
    pub fn position(&self) -> Position {
        Position {
            offset: self.offset,
            records: self.line,
        }
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
                self.offset += read as u64;
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

/// Moves `file` forward by `bytes` (or to its end, if shorter).
fn skip(file: &mut File, bytes: u64) -> io::Result<()> {
    if file.metadata()?.is_file() {
        file.seek(SeekFrom::Start(bytes))?;
    } else {
        // A pipe or device cannot seek: skip by reading (and discarding) instead.
        io::copy(&mut file.by_ref().take(bytes), &mut io::sink())?;
    }
    Ok(())
}

/// Why `path` cannot be read on from `at`: most likely it changed since the checkpoint.
fn resume_error(path: &Path, at: Position, why: &str) -> Error {
    Error::Source {
        name: path.display().to_string(),
        message: format!(
            "cannot resume at byte {} (line {}): {why}; has the file changed since the checkpoint?",
            at.offset,
            at.records + 1
        ),
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
        let reader = RecordReader::open(&path, quoted_newlines).expect("open");
        read_rest(reader, per_chunk)
    }

    fn read_rest(mut reader: RecordReader, per_chunk: usize) -> Vec<(u64, String)> {
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

    const QUOTED: &str = "h\r\n\"x\ny\",1\r\n\n z,2\n\"a\"\"b\",3\n\n";

    #[test]
    fn a_reader_opened_at_a_position_reads_on_with_the_same_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.csv");
        std::fs::write(&path, QUOTED).expect("write");
        let whole = read_all(QUOTED, true, 10);
        assert_eq!(whole.len(), 4);
        for cut in 0..=whole.len() {
            let mut first = RecordReader::open(&path, true).expect("open");
            if cut > 0 {
                first.next_chunk(cut).expect("chunk").expect("records");
            }
            let at = first.position();
            // Independently: the offset is just past the newline that ends the cut record in
            // the text, and the lines are the newlines up to there.
            let want = match cut {
                0 => 0,
                _ => {
                    let last = &whole[cut - 1].1;
                    let end = QUOTED.find(last.as_str()).expect("record") + last.len();
                    end + QUOTED[end..].find('\n').expect("newline") + 1
                }
            };
            assert_eq!(at.offset, want as u64, "cut {cut}");
            assert_eq!(at.records, QUOTED[..want].matches('\n').count() as u64);
            let second = RecordReader::open_at(&path, true, at).expect("open at");
            assert_eq!(read_rest(second, 2), whole[cut..], "cut {cut}");
        }
    }

    #[test]
    fn positions_that_do_not_start_a_line_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "ab\ncd").expect("write");
        let open = |offset, records| {
            RecordReader::open_at(&path, false, Position { offset, records }).map(|_| ())
        };
        let err = open(2, 1).expect_err("inside line 1").to_string();
        let file = path.display();
        assert_eq!(
            err,
            format!(
                "source {file}: cannot resume at byte 2 (line 2): it is not the start of a \
                 line; has the file changed since the checkpoint?"
            )
        );
        assert!(
            open(9, 2)
                .expect_err("past the end")
                .to_string()
                .contains("the file ends")
        );
        assert!(
            open(0, 1)
                .expect_err("no bytes")
                .to_string()
                .contains("disagree")
        );
        open(3, 1).expect("line 2 starts at byte 3");
        open(5, 2).expect("the end of a file without a last newline");
    }

    #[cfg(unix)]
    #[test]
    fn a_pipe_resumes_by_skipping_what_was_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || std::fs::write(path, "a\nbb\n\nc\n").expect("write pipe"))
        };
        let at = Position {
            offset: 5,
            records: 2,
        };
        let reader = RecordReader::open_at(&path, false, at).expect("open pipe");
        assert_eq!(read_rest(reader, 10), vec![(4, "c".to_string())]);
        writer.join().expect("writer");
    }
}
