//! `--set key=value`: changes a job file's settings from the command line before parsing.
//!
//! Keys are dotted paths (`source.events`, `operators.2.window.size`); the value is read as a
//! TOML value when it parses as one (`1000`, `true`, `"x"`) and as a plain string otherwise.

use super::JobError;

/// Applies one `key=value` override to a parsed TOML document.
pub fn apply_override(document: &mut toml::Table, setting: &str) -> Result<(), JobError> {
    let error = |message: String| JobError::Override {
        setting: setting.to_string(),
        message,
    };
    let (key, raw) = setting
        .split_once('=')
        .ok_or_else(|| error("expected key=value".into()))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(error("empty key segment".into()));
    }
    let value = parse_value(raw.trim());
    let (first, rest) = path
        .split_first()
        .ok_or_else(|| error("empty key".into()))?;
    if rest.is_empty() {
        document.insert(first.to_string(), value);
        return Ok(());
    }
    let root = document
        .entry(first.to_string())
        .or_insert_with(|| toml::Value::Table(Default::default()));
    set(root, rest, value).map_err(error)
}

fn set(node: &mut toml::Value, path: &[&str], value: toml::Value) -> Result<(), String> {
    let Some((segment, rest)) = path.split_first() else {
        *node = value;
        return Ok(());
    };
    let child = match node {
        toml::Value::Table(t) => t
            .entry(segment.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default())),
        toml::Value::Array(a) => {
            let index: usize = segment
                .parse()
                .map_err(|_| format!("`{segment}` is not an array index"))?;
            let len = a.len();
            a.get_mut(index)
                .ok_or_else(|| format!("index {index} out of range (length {len})"))?
        }
        _ => return Err(format!("`{segment}` is inside a value that is not a table")),
    };
    set(child, rest, value)
}

fn parse_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> toml::Table {
        toml::from_str("[source]\nevents = 10\n[[operators]]\ntype = \"window\"\nwindow = { type = \"tumbling\", size = \"1s\" }\n")
            .expect("toml")
    }

    #[test]
    fn sets_nested_keys_and_array_entries_with_typed_values() {
        let mut d = doc();
        apply_override(&mut d, "source.events=2000").expect("set");
        apply_override(&mut d, "operators.0.window.size=5s").expect("set");
        apply_override(&mut d, "backend=cpu").expect("set");
        assert_eq!(d["source"]["events"].as_integer(), Some(2000));
        assert_eq!(d["operators"][0]["window"]["size"].as_str(), Some("5s"));
        assert_eq!(d["backend"].as_str(), Some("cpu"));
    }

    #[test]
    fn bad_overrides_say_what_is_wrong() {
        let mut d = doc();
        let err = apply_override(&mut d, "operators.3.type=filter").expect_err("range");
        assert_eq!(
            err.to_string(),
            "--set operators.3.type=filter: index 3 out of range (length 1)"
        );
        assert!(
            apply_override(&mut d, "novalue")
                .expect_err("no =")
                .to_string()
                .contains("expected key=value")
        );
    }
}
