//! CSV quoting (RFC 4180, read leniently as Arrow's csv-core reads it): where quoted fields open
//! and close, and the fields of a record.
//!
//! A double quote opens a quoted field only at the start of a field; anywhere else it is an
//! ordinary character (`x"y` is the text `x"y`). Inside a quoted field `""` is a quote, and a
//! quote followed by anything but a comma, a quote or the end of the record closes the field
//! improperly: the text after it joins the field, as csv-core does. A quoted field may span
//! lines; the record reader uses [`Quotes`] to know whether a line ends inside one.

/// Where a scan of a CSV record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// At the start of a field (where a quote opens a quoted field).
    #[default]
    FieldStart,
    /// Inside an unquoted field.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: an escaped quote if another follows.
    QuoteInQuoted,
}

/// Scans a record line by line: whether it ends inside a quoted field.
#[derive(Debug, Clone, Copy, Default)]
pub struct Quotes {
    state: State,
    /// Whether a quoted field was closed improperly on a line after the first: the sign of
    /// a stray opening quote that ran on into the next records.
    improper_after_break: bool,
    lines: u32,
}

impl Quotes {
    /// Scans the next line of the record (without its line end).
    pub fn scan(&mut self, line: &[u8]) {
        self.lines += 1;
        for &byte in line {
            let (state, improper) = step(self.state, byte);
            self.state = state;
            self.improper_after_break |= improper && self.lines > 1;
        }
    }

    /// Whether the record is inside a quoted field at the end of the last line scanned, so
    /// that it goes on past the line end.
    pub fn open(&self) -> bool {
        // A quote right at the end of the line closes the field.
        self.state == State::Quoted
    }

    /// Whether a line after the first closed a quoted field improperly.
    pub fn improper_after_break(&self) -> bool {
        self.improper_after_break
    }
}

/// One byte of a record: the new state, and whether the byte closed a quoted field improperly.
fn step(state: State, byte: u8) -> (State, bool) {
    match (state, byte) {
        (State::FieldStart, b'"') => (State::Quoted, false),
        (State::FieldStart | State::Unquoted | State::QuoteInQuoted, b',') => {
            (State::FieldStart, false)
        }
        (State::FieldStart | State::Unquoted, _) => (State::Unquoted, false),
        (State::Quoted, b'"') => (State::QuoteInQuoted, false),
        (State::Quoted, _) => (State::Quoted, false),
        (State::QuoteInQuoted, b'"') => (State::Quoted, false),
        (State::QuoteInQuoted, _) => (State::Unquoted, true),
    }
}

/// Splits a CSV record into its fields, unquoted, by the rules above.
pub fn split_fields(record: &str) -> Vec<String> {
    let (mut fields, mut field) = (Vec::new(), String::new());
    let mut state = State::FieldStart;
    for c in record.chars() {
        let byte = if c.is_ascii() { c as u8 } else { 0 };
        let (next, _) = step(state, byte);
        match (state, next) {
            (_, State::FieldStart) => fields.push(std::mem::take(&mut field)),
            // The quote that opens or closes a quoted field is not part of it; the second
            // quote of `""` is.
            (State::FieldStart, State::Quoted) | (State::Quoted, State::QuoteInQuoted) => {}
            _ => field.push(c),
        }
        state = next;
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_after(lines: &[&str]) -> (bool, bool) {
        let mut quotes = Quotes::default();
        for line in lines {
            quotes.scan(line.as_bytes());
        }
        (quotes.open(), quotes.improper_after_break())
    }

    #[test]
    fn a_quote_opens_a_field_only_at_its_start() {
        // Issue 12: a stray quote inside a field made the rest of the file one record.
        assert_eq!(open_after(&["2,1700000000001,x\"y"]), (false, false));
        assert_eq!(open_after(&["a\",b"]), (false, false));
        assert_eq!(open_after(&["1,\"multi"]), (true, false));
        assert_eq!(open_after(&["1,\"multi", "line\",10"]), (false, false));
        assert_eq!(open_after(&["\"a \"\"q\"\" b\",3"]), (false, false));
        assert_eq!(open_after(&["\"a\"\"", "b\""]), (false, false));
        assert_eq!(open_after(&["x,\""]), (true, false));
        assert_eq!(
            open_after(&["x,\"\""]),
            (false, false),
            "an empty quoted field"
        );
    }

    #[test]
    fn an_improper_close_after_a_line_break_is_flagged() {
        // A stray opening quote runs into the next record and meets its quoted field.
        assert_eq!(
            open_after(&["1,2,\"7.25", "8,n8,\"a,8\",8.5"]),
            (false, true),
            "the opening quote of `\"a,8\"` closes the field, followed by `a`"
        );
        assert_eq!(open_after(&["\"a\"b,\"c"]), (true, false), "only on line 1");
    }

    #[test]
    fn fields_split_as_csv_core_reads_them() {
        assert_eq!(
            split_fields("a,\"b,c\",\"say \"\"hi\"\"\","),
            ["a", "b,c", "say \"hi\"", ""]
        );
        assert_eq!(split_fields("2,x\"y,z"), ["2", "x\"y", "z"]);
        assert_eq!(split_fields("\"na\"me 7\",1"), ["name 7\"", "1"]);
        assert_eq!(split_fields("\"é,ü\",ß"), ["é,ü", "ß"]);
        assert_eq!(split_fields("\"a\nb\",c"), ["a\nb", "c"]);
    }
}
