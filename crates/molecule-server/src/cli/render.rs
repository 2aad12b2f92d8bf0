//! Output: human tables by default, `--output json` (pretty) or `yaml` for
//! scripts. Tables show the columns a command names; a single object is
//! shown as `key: value` lines.

use serde_json::Value;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// `value` in `format`; `columns` pick a table's columns (empty: every key
/// of the first row).
pub fn render(value: &Value, format: Format, columns: &[&str]) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(value).unwrap_or_default(),
        Format::Yaml => {
            let mut out = String::new();
            yaml(value, 0, &mut out);
            out.trim_end().to_string()
        }
        Format::Table => match value {
            Value::Array(rows) => table(rows, columns),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| format!("{k}: {}", cell(v)))
                .collect::<Vec<_>>()
                .join("\n"),
            other => cell(other),
        },
    }
}

/// A value as one table cell.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.replace('\n', " "),
        other => other.to_string(),
    }
}

fn table(rows: &[Value], columns: &[&str]) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    let columns: Vec<String> = if columns.is_empty() {
        rows[0]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        columns.iter().map(|c| (*c).to_string()).collect()
    };
    if columns.is_empty() {
        return rows.iter().map(cell).collect::<Vec<_>>().join("\n");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell(&r[c.as_str()])).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
                .min(60)
        })
        .collect();
    let line = |values: Vec<String>| {
        values
            .iter()
            .zip(&widths)
            .map(|(v, w)| {
                let v: String = v.chars().take(*w).collect();
                format!("{v:<w$}", w = *w)
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(columns.iter().map(|c| c.to_uppercase()).collect())];
    out.extend(cells.into_iter().map(line));
    out.join("\n")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s)
            if s.is_empty()
                || s.contains([':', '#', '\n', '"', '\''])
                || s.starts_with([' ', '-', '[', '{', '&', '*', '!', '|', '>', '%', '@'])
                || matches!(s.as_str(), "true" | "false" | "null" | "~")
                || s.parse::<f64>().is_ok() =>
        {
            Value::String(s.clone()).to_string()
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                match v {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(v, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(v, indent, out);
                    }
                    other => out.push_str(&format!("{pad}{k}: {}\n", flat(other))),
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let mut inner = String::new();
                        yaml(item, indent + 2, &mut inner);
                        let inner = inner.replacen(&" ".repeat(indent + 2), "", 1);
                        out.push_str(&format!("{pad}- {inner}"));
                    }
                    other => out.push_str(&format!("{pad}- {}\n", flat(other))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", flat(other))),
    }
}

/// Scalars and empty collections on one line.
fn flat(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => scalar(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_the_named_columns() {
        let rows = json!([{"id": "a1", "name": "lead", "x": 1}, {"id": "b", "name": "worker two"}]);
        assert_eq!(
            render(&rows, Format::Table, &["id", "name"]),
            "ID  NAME\na1  lead\nb   worker two"
        );
        assert_eq!(render(&json!([]), Format::Table, &["id"]), "(none)");
        assert_eq!(render(&json!({"a": 1}), Format::Table, &[]), "a: 1");
    }

    #[test]
    fn yaml_is_readable_and_quotes_what_would_change_meaning() {
        let v = json!({"name": "lead", "n": 2, "tags": ["a", "true"], "card": {"url": "http://x"}, "empty": [], "rows": [{"id": 1, "k": "v"}]});
        assert_eq!(
            render(&v, Format::Yaml, &[]),
            "card:\n  url: \"http://x\"\nempty: []\nn: 2\nname: lead\nrows:\n- id: 1\n  k: v\ntags:\n- a\n- \"true\""
        );
    }
}
