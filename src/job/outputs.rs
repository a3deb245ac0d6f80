//! Checks that a job's outputs (`[sink]`, `[late]`, `[dead_letter]`) each write a path of their own.
//!
//! Two outputs on one path would clobber each other's file (or, with checkpoints, each other's
//! part files), silently. Paths are compared as the sinks will open them: relative to the job
//! file's folder, `.` and `..` resolved, symbolic links in the part that exists followed.

use std::path::{Component, Path, PathBuf};

use sluice_connectors::SinkSpec;
use sluice_engine::Error;

/// Where an output writes, comparable with another's.
#[derive(Debug, PartialEq, Eq)]
enum Place {
    Local(PathBuf),
    /// An object-store prefix (`s3://...`), compared as written, without a trailing `/`.
    Url(String),
}

/// Fails, naming both settings, if two of `outputs` (setting, sink) write the same path.
pub(super) fn check_distinct(outputs: &[(&str, &SinkSpec)], base_dir: &Path) -> Result<(), Error> {
    let places: Vec<(&str, &str, Place)> = outputs
        .iter()
        .filter_map(|&(setting, sink)| {
            let path = written_path(sink)?;
            Some((setting, path, place(base_dir, path)))
        })
        .collect();
    for (i, (setting, path, place)) in places.iter().enumerate() {
        if let Some((first, first_path, _)) = places[..i].iter().find(|(_, _, p)| p == place) {
            return Err(Error::config(
                format!("{setting}.path"),
                format!(
                    "`{path}` is the path of `{first}.path` (`{first_path}`) too; the two \
                     outputs would overwrite each other: give each its own path"
                ),
            ));
        }
    }
    Ok(())
}

/// The path a sink writes, if it writes one.
fn written_path(sink: &SinkSpec) -> Option<&str> {
    match sink {
        SinkSpec::Csv { path, .. } | SinkSpec::Jsonl { path } | SinkSpec::Parquet { path, .. } => {
            Some(path)
        }
        // Topics are appended to, never overwritten.
        SinkSpec::Stdout { .. } | SinkSpec::Discard | SinkSpec::Kafka(_) => None,
    }
}

fn place(base_dir: &Path, path: &str) -> Place {
    if let Some(local) = path.strip_prefix("file://") {
        return Place::Local(resolve(Path::new(local)));
    }
    if path.contains("://") {
        return Place::Url(path.trim_end_matches('/').to_string());
    }
    Place::Local(resolve(&base_dir.join(path)))
}

/// `path` with `.` and `..` resolved, and its longest existing ancestor canonicalised.
fn resolve(path: &Path) -> PathBuf {
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                clean.pop();
            }
            other => clean.push(other),
        }
    }
    let mut existing = clean.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return clean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(path: &str) -> SinkSpec {
        SinkSpec::Jsonl { path: path.into() }
    }

    #[test]
    fn outputs_on_one_path_are_refused_naming_both_settings() {
        // Issue 12: `[sink]` and `[dead_letter]` on one file clobbered it, exit 0.
        let dir = tempfile::tempdir().expect("tempdir");
        let csv = SinkSpec::Csv {
            path: "out/rows.csv".into(),
            header: true,
        };
        let dead = jsonl("./out/../out/rows.csv");
        let err = check_distinct(&[("sink", &csv), ("dead_letter", &dead)], dir.path())
            .expect_err("same file");
        assert_eq!(
            err.to_string(),
            "dead_letter.path: `./out/../out/rows.csv` is the path of `sink.path` \
             (`out/rows.csv`) too; the two outputs would overwrite each other: give each its \
             own path"
        );
        let late = jsonl("s3://b/x/");
        let also = jsonl("s3://b/x");
        let err = check_distinct(
            &[("sink", &csv), ("late", &late), ("dead_letter", &also)],
            dir.path(),
        )
        .expect_err("same prefix");
        assert!(err.to_string().starts_with("dead_letter.path: "), "{err}");
        assert!(err.to_string().contains("`late.path`"), "{err}");
        let absolute = format!("file://{}", dir.path().join("out/rows.csv").display());
        let err = check_distinct(&[("sink", &csv), ("late", &jsonl(&absolute))], dir.path())
            .expect_err("a file URL of the same file");
        assert!(err.to_string().starts_with("late.path: "), "{err}");
    }

    #[test]
    fn outputs_on_their_own_paths_or_stdout_pass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stdout = SinkSpec::Stdout {
            format: Default::default(),
        };
        let outputs = [
            ("sink", &stdout),
            ("late", &stdout),
            ("dead_letter", &SinkSpec::Discard),
        ];
        check_distinct(&outputs, dir.path()).expect("no files");
        let (a, b) = (jsonl("out/a.jsonl"), jsonl("out/b.jsonl"));
        check_distinct(&[("sink", &a), ("dead_letter", &b)], dir.path()).expect("two files");
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_to_the_same_folder_is_the_same_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("out")).expect("mkdir");
        std::os::unix::fs::symlink(dir.path().join("out"), dir.path().join("link"))
            .expect("symlink");
        let (a, b) = (jsonl("out/x.jsonl"), jsonl("link/x.jsonl"));
        let err = check_distinct(&[("sink", &a), ("dead_letter", &b)], dir.path())
            .expect_err("one file through a link");
        assert!(err.to_string().starts_with("dead_letter.path: "), "{err}");
    }
}
