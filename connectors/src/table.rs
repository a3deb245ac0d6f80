//! Bounded tables read whole: the build side of a lookup join (a merchant list, card
//! profiles), from any source a job can read.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use sluice_engine::source::SourceContext;
use sluice_engine::{Error, Result};

use crate::SourceSpec;

/// Reads every row of `spec` (paths relative to `base_dir`) into one batch. A table must
/// parse completely: its first malformed record fails, naming the file, line and field;
/// `setting` names the job key.
pub fn load_table(spec: &SourceSpec, base_dir: &Path, setting: &str) -> Result<RecordBatch> {
    if let SourceSpec::Generator(g) = spec
        && g.events.is_none()
    {
        return Err(Error::config(
            format!("{setting}.events"),
            "a generated table needs a bounded number of events",
        ));
    }
    let source = spec.build(base_dir)?;
    let schema = source.schema();
    let mut batches = Vec::new();
    for mut partition in source.open(&SourceContext::default())? {
        while let Some(read) = partition.next_batch()? {
            if let Some(bad) = read.dead_letters.first() {
                return Err(Error::config(
                    setting,
                    format!(
                        "the table has a malformed record in {} at {}: {}",
                        bad.source, bad.location, bad.reason
                    ),
                ));
            }
            batches.push(read.batch);
        }
    }
    concat_batches(&schema, &batches).map_err(Error::arrow("reading a table"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_table_is_read_whole_and_a_bad_record_names_its_line() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("m.csv"), "merchant_id,risk\nm1,7\nm2,3\n").expect("csv");
        let spec: SourceSpec = toml::from_str("type = \"csv\"\npath = \"m.csv\"").expect("spec");
        let table = load_table(&spec, dir.path(), "operators[0].table").expect("table");
        assert_eq!(table.num_rows(), 2);
        std::fs::write(dir.path().join("m.csv"), "merchant_id,risk\nm1,7\nm2,x,y\n").expect("csv");
        let error = load_table(&spec, dir.path(), "operators[0].table").expect_err("bad");
        let text = error.to_string();
        assert!(
            text.starts_with("operators[0].table: the table has a malformed record in")
                && text.contains("line 3"),
            "{text}"
        );
    }
}
