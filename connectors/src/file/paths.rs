//! Turns a source's `path` setting (a file, a glob or a directory) into a sorted list of files.

use std::path::{Path, PathBuf};

use sluice_engine::{Error, Result};

/// The files `path` names, relative paths resolved against `base_dir`:
/// - a pattern with `*`, `?` or `[` matches files by glob;
/// - a directory means every file directly in it whose extension is one of `extensions`;
/// - anything else is one file, which must exist.
///
/// The list is sorted, so partitions and their order do not depend on the file system.
pub fn resolve(base_dir: &Path, path: &str, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    if path.trim().is_empty() {
        return Err(Error::config("source.path", "must not be empty"));
    }
    let full = base_dir.join(path);
    let mut files = if path.contains(['*', '?', '[']) {
        glob_files(base_dir, path)?
    } else if full.is_dir() {
        directory_files(&full, extensions)?
    } else {
        std::fs::metadata(&full).map_err(Error::io(&full))?;
        vec![full]
    };
    files.sort();
    Ok(files)
}

fn glob_files(base_dir: &Path, path: &str) -> Result<Vec<PathBuf>> {
    // The base directory is literal text, so escape any pattern characters in it.
    let pattern = if Path::new(path).is_absolute() {
        path.to_string()
    } else {
        let base = glob::Pattern::escape(&base_dir.to_string_lossy());
        if base.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", base.trim_end_matches('/'))
        }
    };
    let matches = glob::glob(&pattern)
        .map_err(|e| Error::config("source.path", format!("`{path}` is not a valid glob: {e}")))?;
    let mut files = Vec::new();
    for entry in matches {
        let file = entry.map_err(|e| Error::io(e.path().to_path_buf())(e.into()))?;
        if file.is_file() {
            files.push(file);
        }
    }
    if files.is_empty() {
        return Err(Error::config(
            "source.path",
            format!("no file matches {path}"),
        ));
    }
    Ok(files)
}

fn directory_files(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let file = entry.map_err(Error::io(dir))?.path();
        let wanted = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)));
        if wanted && file.is_file() {
            files.push(file);
        }
    }
    if files.is_empty() {
        let kinds = extensions
            .iter()
            .map(|e| format!(".{e}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::config(
            "source.path",
            format!("directory {} holds no {kinds} files", dir.display()),
        ));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, names: &[&str]) {
        for name in names {
            std::fs::write(dir.join(name), "x\n").expect("write");
        }
    }

    fn names(files: &[PathBuf]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.file_name().expect("name").to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn globs_and_directories_list_sorted_files_of_the_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("data")).expect("mkdir");
        touch(
            &dir.path().join("data"),
            &["b.csv", "a.csv", "c.json", "notes.txt", "A2.CSV"],
        );
        let globbed = resolve(dir.path(), "data/*.csv", &["csv"]).expect("glob");
        assert_eq!(names(&globbed), ["a.csv", "b.csv"]);
        let listed = resolve(dir.path(), "data", &["csv"]).expect("dir");
        assert_eq!(names(&listed), ["A2.CSV", "a.csv", "b.csv"]);
        let one = resolve(dir.path(), "data/c.json", &["jsonl"]).expect("file");
        assert_eq!(one, vec![dir.path().join("data/c.json")]);
    }

    #[test]
    fn missing_inputs_name_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = resolve(dir.path(), "data/x*.csv", &["csv"]).expect_err("no match");
        assert_eq!(err.to_string(), "source.path: no file matches data/x*.csv");
        let err = resolve(dir.path(), "missing.csv", &["csv"]).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", dir.path().join("missing.csv").display())),
            "{err}"
        );
        let err = resolve(dir.path(), ".", &["parquet"]).expect_err("empty dir");
        assert!(err.to_string().contains("holds no .parquet files"), "{err}");
    }
}
