//! Reads a text file as numbered records in chunks, skipping blank lines.
//!
//! A chunk keeps its records back to back in one buffer, each followed by exactly one `\n`, so a
//! run of records is one contiguous slice that Arrow can decode in one call, and a single record
//! is still at hand, with its line number, when Arrow rejects it. The reader counts the bytes
//! and lines it consumes, so it can stop after any record and a new one can start there. Lines
//! end as [`Lines`] says.
//!
//! **Records over several lines** (CSV only): a record goes on past a line end inside a quoted
//! field ([`Quotes`]). Such a record must close its quote properly, within
//! [`MAX_SPANNING_RECORD`] bytes and before the end of the file; otherwise its opening quote was
//! a stray one, and the record is its first line alone, marked [`Unclosed`], while the lines
//! after it are read again as records of their own. A bad quote so costs one line, not the file.

use std::ops::Range;
use std::path::Path;

use sluice_engine::Result;
use sluice_engine::source::Position;

use super::lines::Lines;
use super::quoting::Quotes;

/// The most bytes a record spanning several lines may have: a quoted field still open after
/// this many is taken to be a stray quote (1 MiB: far more than any field meant to hold text,
/// and little memory to hold while deciding).
pub const MAX_SPANNING_RECORD: usize = 1 << 20;

/// Why a record was cut back to its first line: its quoted field never closed properly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unclosed {
    /// Still open at the end of the file.
    AtEndOfFile,
    /// Still open after [`MAX_SPANNING_RECORD`] bytes.
    TooLong,
    /// Closed improperly (a quote followed by text) on a later line: it ran into other records.
    RanIntoRecords,
}

impl Unclosed {
    /// The dead letter's reason.
    pub fn reason(self) -> String {
        let why = match self {
            Unclosed::AtEndOfFile => "is still open at the end of the file".to_string(),
            Unclosed::TooLong => format!("is still open after {MAX_SPANNING_RECORD} bytes"),
            Unclosed::RanIntoRecords => {
                "does not close properly on the lines after it (a quote followed by text)"
                    .to_string()
            }
        };
        format!("a quoted field opened on this line {why}; the line is read alone")
    }
}

/// One record in a chunk: `bytes[start..end]` (without its newline), first seen on `line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub start: usize,
    pub end: usize,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// Set when the record is a line whose quoted field never closed: a dead letter as is.
    pub unclosed: Option<Unclosed>,
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

    /// The bytes of record `i`, without its newline.
    pub fn record_bytes(&self, i: usize) -> &[u8] {
        let r = self.records[i];
        &self.bytes[r.start..r.end]
    }

    /// The text of record `i`, without its newline (invalid UTF-8 replaced).
    pub fn raw(&self, i: usize) -> String {
        String::from_utf8_lossy(self.record_bytes(i)).into_owned()
    }
}

/// Reads records from a file, counting lines.
#[derive(Debug)]
pub struct RecordReader {
    lines: Lines,
    /// Lines read so far.
    line: u64,
    /// Bytes read so far: the offset of the next unread byte.
    offset: u64,
    /// Whether a record continues past a newline inside double quotes (CSV).
    quoted_newlines: bool,
}

impl RecordReader {
    /// Opens `path`; failing to is an [`sluice_engine::Error::Io`] naming it.
    pub fn open(path: &Path, quoted_newlines: bool) -> Result<Self> {
        Self::open_at(path, quoted_newlines, Position::default())
    }

    /// Opens `path` at `at`, a [`RecordReader::position`] of an earlier reader of the same
    /// file: reading goes on from its byte offset with its line count. The offset must start
    /// a line (or be the end of the file); if not, the file changed and the error says so.
    pub fn open_at(path: &Path, quoted_newlines: bool, at: Position) -> Result<Self> {
        Ok(RecordReader {
            lines: Lines::open_at(path, at)?,
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
            let mut quotes = Quotes::default();
            // Where each line of the record starts in the chunk, and the bytes it took in the
            // file: to give back all but the first if the record is cut.
            let mut parts: Vec<(usize, u64)> = Vec::new();
            let mut unclosed = None;
            loop {
                if !parts.is_empty() {
                    chunk.bytes.push(b'\n');
                }
                let line_start = chunk.bytes.len();
                let Some(read) = self.lines.read(&mut chunk.bytes)? else {
                    if !parts.is_empty() {
                        chunk.bytes.pop();
                    }
                    if quotes.open() {
                        unclosed = Some(Unclosed::AtEndOfFile);
                    }
                    break;
                };
                self.line += 1;
                self.offset += read;
                parts.push((line_start, read));
                if !self.quoted_newlines {
                    break;
                }
                quotes.scan(&chunk.bytes[line_start..]);
                if quotes.improper_after_break() {
                    unclosed = Some(Unclosed::RanIntoRecords);
                    break;
                }
                if !quotes.open() {
                    break;
                }
                if chunk.bytes.len() - start > MAX_SPANNING_RECORD {
                    unclosed = Some(Unclosed::TooLong);
                    break;
                }
            }
            if parts.is_empty() {
                return Ok(false);
            }
            if unclosed.is_some() {
                self.give_back(chunk, &parts);
            } else if chunk.bytes[start..].iter().all(u8::is_ascii_whitespace) {
                chunk.bytes.truncate(start);
                continue;
            }
            chunk.records.push(Record {
                start,
                end: chunk.bytes.len(),
                line: first_line,
                unclosed,
            });
            chunk.bytes.push(b'\n');
            return Ok(true);
        }
    }

    /// Cuts the record being read (the last in `chunk.bytes`, whose lines start at `parts`)
    /// back to its first line; its other lines are read again next.
    fn give_back(&mut self, chunk: &mut Chunk, parts: &[(usize, u64)]) {
        let mut back = Vec::with_capacity(parts.len() - 1);
        let mut end = chunk.bytes.len();
        for &(start, read) in parts[1..].iter().rev() {
            back.push((chunk.bytes[start..end].to_vec(), read));
            self.line -= 1;
            self.offset -= read;
            // The `\n` that joined this line to the one before.
            end = start - 1;
        }
        chunk.bytes.truncate(end);
        self.lines.give_back(back.into_iter().rev());
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

    /// Every record of `text`: (line, text, why it was cut).
    fn read_marked(text: &str) -> Vec<(u64, String, Option<Unclosed>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.csv");
        std::fs::write(&path, text).expect("write");
        let mut reader = RecordReader::open(&path, true).expect("open");
        let mut out = Vec::new();
        while let Some(chunk) = reader.next_chunk(3).expect("chunk") {
            for (i, r) in chunk.records.iter().enumerate() {
                out.push((r.line, chunk.raw(i), r.unclosed));
            }
        }
        out
    }

    fn marked(want: &[(u64, &str, Option<Unclosed>)]) -> Vec<(u64, String, Option<Unclosed>)> {
        want.iter()
            .map(|&(n, s, u)| (n, s.to_string(), u))
            .collect()
    }

    #[test]
    fn a_stray_quote_inside_a_field_ends_with_its_line() {
        // Issue 12: `x"y` made the rest of a 151 MB file one record.
        let got = read_marked("h\n2,1700000000001,x\"y\n3,1700000000002,z\n4,5,\"a,b\"\n");
        let want = [
            (1, "h", None),
            (2, "2,1700000000001,x\"y", None),
            (3, "3,1700000000002,z", None),
            (4, "4,5,\"a,b\"", None),
        ];
        assert_eq!(got, marked(&want));
    }

    #[test]
    fn a_quote_never_closed_costs_only_its_own_line() {
        let at_end = read_marked("h\n1,\"abc\n2,x\n\n3,y");
        let want = [
            (1, "h", None),
            (2, "1,\"abc", Some(Unclosed::AtEndOfFile)),
            (3, "2,x", None),
            (5, "3,y", None),
        ];
        assert_eq!(at_end, marked(&want));
        // Closed by the opening quote of the next record's quoted field, followed by text.
        let into = read_marked("h\n1,\"abc\n2,\"q,r\",5\n3,s");
        let want = [
            (1, "h", None),
            (2, "1,\"abc", Some(Unclosed::RanIntoRecords)),
            (3, "2,\"q,r\",5", None),
            (4, "3,s", None),
        ];
        assert_eq!(into, marked(&want));
        assert!(
            Unclosed::RanIntoRecords
                .reason()
                .starts_with("a quoted field opened on this line does not close properly")
        );
    }

    #[test]
    fn a_quote_open_for_more_than_the_limit_is_cut_to_its_line() {
        // 30 000 lines of 40 bytes without a quote: 1.2 MB, past the 1 MiB limit.
        let filler: String = (0..30_000).map(|i| format!("{i:>38},x\n")).collect();
        let text = format!("h\n1,\"open\n{filler}2,\"closed\"\n");
        let got = read_marked(&text);
        assert_eq!(got.len(), 30_003);
        assert_eq!(got[1], (2, "1,\"open".to_string(), Some(Unclosed::TooLong)));
        for (i, (line, raw, unclosed)) in got[2..30_002].iter().enumerate() {
            assert_eq!(
                (*line, raw.as_str(), *unclosed),
                (i as u64 + 3, format!("{i:>38},x").as_str(), None)
            );
        }
        assert_eq!(got[30_002], (30_003, "2,\"closed\"".to_string(), None));
        assert_eq!(MAX_SPANNING_RECORD, 1 << 20);
    }

    #[test]
    fn a_first_line_ending_in_a_lone_cr_makes_every_cr_a_line_end() {
        let got = read_all("a\rb\r\rc\r\nd\ne", false, 10);
        let want = [(1, "a"), (2, "b"), (4, "c"), (5, "d"), (6, "e")];
        assert_eq!(got, want.map(|(n, s)| (n, s.to_string())));
        let quoted = read_all("h\r\"x\ry\",1\rz,2\r", true, 10);
        let want = [(1, "h"), (2, "\"x\ny\",1"), (4, "z,2")];
        assert_eq!(quoted, want.map(|(n, s)| (n, s.to_string())));
    }

    #[test]
    fn in_a_file_of_lf_lines_a_lone_cr_is_part_of_its_line() {
        let got = read_all("a\nb\rc\nd\r\n", false, 10);
        let want = [(1, "a"), (2, "b\rc"), (3, "d")];
        assert_eq!(got, want.map(|(n, s)| (n, s.to_string())));
    }

    #[test]
    fn every_record_boundary_resumes_whatever_the_line_ends_or_cut_quotes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.csv");
        let texts = [
            QUOTED.to_string(),
            QUOTED.replace("\r\n", "\n").replace('\n', "\r"),
            "h\r\n1,\"abc\r\n2,\"q,r\",5\r\n\r\n3,\"s\nt\"\n4,\"u".to_string(),
        ];
        for text in texts {
            std::fs::write(&path, &text).expect("write");
            let whole = read_all(&text, true, 10);
            for cut in 0..=whole.len() {
                let mut first = RecordReader::open(&path, true).expect("open");
                if cut > 0 {
                    first.next_chunk(cut).expect("chunk").expect("records");
                }
                let second = RecordReader::open_at(&path, true, first.position()).expect("open at");
                assert_eq!(read_rest(second, 2), whole[cut..], "cut {cut} of {text:?}");
            }
        }
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
