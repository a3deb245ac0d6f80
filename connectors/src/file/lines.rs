//! Lines of a text file, ended as its first line end decides, with lines given back read again.
//!
//! If the first line ends with a lone CR (classic Mac OS), CR, LF and CRLF all end lines;
//! otherwise lines end at LF (a CR just before it is dropped) and any other CR is part of its
//! line, so that a stray CR inside a record of an LF file neither splits it nor shifts the line
//! numbers of the records after it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sluice_engine::source::Position;
use sluice_engine::{Error, Result};

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnd {
    Lf,
    CrLf,
    Cr,
}

/// Which bytes end lines in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnds {
    /// No line has ended yet: the first line end decides.
    Undecided,
    /// LF, with CRLF's CR dropped.
    Lf,
    /// CR, LF and CRLF.
    Any,
}

impl LineEnds {
    fn after(first: Option<LineEnd>) -> Self {
        match first {
            Some(LineEnd::Cr) => LineEnds::Any,
            Some(_) => LineEnds::Lf,
            None => LineEnds::Undecided,
        }
    }
}

/// A line given back, to be read again before the file.
#[derive(Debug)]
struct Line {
    text: Vec<u8>,
    /// The bytes it took in the file, line end included.
    len: u64,
}

/// Reads a file line by line.
#[derive(Debug)]
pub struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    ends: LineEnds,
    given_back: VecDeque<Line>,
}

impl Lines {
    /// Opens `path` at `at.offset`, which must start a line (or be the end of the file): if
    /// not, the file changed since `at` was taken, and the error says so.
    pub fn open_at(path: &Path, at: Position) -> Result<Self> {
        // Every line read has at least one byte and every byte read belongs to a line.
        if (at.offset == 0) != (at.records == 0) {
            return Err(resume_error(path, at, "bytes and lines disagree"));
        }
        let file = File::open(path).map_err(Error::io(path))?;
        let seekable = file.metadata().is_ok_and(|m| m.is_file());
        let mut reader = BufReader::new(file);
        let mut ends = LineEnds::Undecided;
        if at.offset > 0 {
            // How lines end is decided by the first one: read it again.
            let (read, end) =
                read_any_line(&mut reader, &mut Vec::new()).map_err(Error::io(path))?;
            ends = LineEnds::after(end);
            let last = if read < at.offset {
                skip(&mut reader, at.offset - 1 - read, seekable).map_err(Error::io(path))?;
                let mut last = [0u8];
                if reader.read(&mut last).map_err(Error::io(path))? == 0 {
                    return Err(resume_error(path, at, "the file ends before it"));
                }
                last[0]
            } else if read == at.offset {
                match end {
                    Some(LineEnd::Cr) => b'\r',
                    Some(_) => b'\n',
                    None => 0,
                }
            } else {
                return Err(resume_error(path, at, "it is not the start of a line"));
            };
            let next = reader.fill_buf().map_err(Error::io(path))?.first().copied();
            let starts_line = match next {
                None => true,
                Some(next) => {
                    last == b'\n' || (ends == LineEnds::Any && last == b'\r' && next != b'\n')
                }
            };
            if !starts_line {
                return Err(resume_error(path, at, "it is not the start of a line"));
            }
        }
        Ok(Lines {
            path: path.to_path_buf(),
            reader,
            ends,
            given_back: VecDeque::new(),
        })
    }

    /// Appends the next line's text (without its end) to `out`: the bytes it took in the
    /// file, or `None` at the end of the file.
    pub fn read(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>> {
        if let Some(line) = self.given_back.pop_front() {
            out.extend_from_slice(&line.text);
            return Ok(Some(line.len));
        }
        let read = match self.ends {
            LineEnds::Lf => {
                let start = out.len();
                let read = self
                    .reader
                    .read_until(b'\n', out)
                    .map_err(Error::io(&self.path))?;
                if out.len() > start && out.last() == Some(&b'\n') {
                    out.pop();
                    if out.len() > start && out.last() == Some(&b'\r') {
                        out.pop();
                    }
                }
                read as u64
            }
            LineEnds::Undecided | LineEnds::Any => {
                let (read, end) =
                    read_any_line(&mut self.reader, out).map_err(Error::io(&self.path))?;
                if self.ends == LineEnds::Undecided {
                    self.ends = LineEnds::after(end);
                }
                read
            }
        };
        Ok((read > 0).then_some(read))
    }

    /// Gives back lines read (text without its end, bytes taken in the file), in file order:
    /// the next reads return them, before anything further in the file.
    pub fn give_back(&mut self, lines: impl DoubleEndedIterator<Item = (Vec<u8>, u64)>) {
        for (text, len) in lines.rev() {
            self.given_back.push_front(Line { text, len });
        }
    }
}

/// Reads one line ending at CR, LF or CRLF into `out` (without its end): the bytes consumed,
/// and how it ended (`None`: at the end of the file).
fn read_any_line(
    reader: &mut BufReader<File>,
    out: &mut Vec<u8>,
) -> io::Result<(u64, Option<LineEnd>)> {
    let mut consumed = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed, None));
        }
        let Some(i) = buf.iter().position(|&b| b == b'\n' || b == b'\r') else {
            let n = buf.len();
            out.extend_from_slice(buf);
            reader.consume(n);
            consumed += n as u64;
            continue;
        };
        let end = buf[i];
        out.extend_from_slice(&buf[..i]);
        reader.consume(i + 1);
        consumed += i as u64 + 1;
        if end == b'\n' {
            return Ok((consumed, Some(LineEnd::Lf)));
        }
        if reader.fill_buf()?.first() == Some(&b'\n') {
            reader.consume(1);
            return Ok((consumed + 1, Some(LineEnd::CrLf)));
        }
        return Ok((consumed, Some(LineEnd::Cr)));
    }
}

/// Moves `reader` forward by `bytes` (or to its end, if shorter).
fn skip(reader: &mut BufReader<File>, bytes: u64, seekable: bool) -> io::Result<()> {
    match i64::try_from(bytes) {
        Ok(bytes) if seekable => reader.seek_relative(bytes),
        // A pipe or device cannot seek: skip by reading (and discarding) instead.
        _ => io::copy(&mut reader.by_ref().take(bytes), &mut io::sink()).map(|_| ()),
    }
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
