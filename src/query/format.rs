//! Query results as text: an aligned table for people, RFC 4180 CSV, or JSON (times as RFC 3339
//! plus `<name>_ms`).
//!
//! Input: a [`Table`] (or one row of it). Output: the text, ending with a newline.

use serde_json::{Map, Value as Json};

use super::{Cell, Format, Table, format_time};

fn text(c: &Cell) -> String {
    match c {
        Cell::Null => String::new(),
        Cell::Int(i) => i.to_string(),
        Cell::Real(f) => f.to_string(),
        Cell::Text(t) => t.clone(),
        Cell::Time(ms) => format_time(*ms),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row as a JSON object (times as RFC 3339 plus `<name>_ms`).
pub fn json_row(columns: &[&str], row: &[Cell]) -> Json {
    let mut m = Map::new();
    for (name, c) in columns.iter().zip(row) {
        let v = match c {
            Cell::Null => Json::Null,
            Cell::Int(i) => Json::from(*i),
            Cell::Real(f) => Json::from(*f),
            Cell::Text(s) => Json::from(s.clone()),
            Cell::Time(ms) => Json::from(format_time(*ms)),
        };
        m.insert((*name).to_string(), v);
        if let Cell::Time(ms) = c {
            m.insert(format!("{name}_ms"), Json::from(*ms));
        }
    }
    Json::Object(m)
}

/// A table as a JSON array of objects.
fn json_rows(t: &Table) -> Json {
    Json::Array(t.rows.iter().map(|r| json_row(&t.columns, r)).collect())
}

/// Renders named tables as one document: titled tables; CSV blocks (each with its header)
/// separated by a blank line; or one JSON object with a key per table.
pub fn render_sections(sections: &[(&str, &Table)], format: Format) -> String {
    match format {
        Format::Json => {
            let obj: Map<String, Json> = sections
                .iter()
                .map(|(name, t)| ((*name).to_string(), json_rows(t)))
                .collect();
            serde_json::to_string_pretty(&Json::Object(obj)).unwrap_or_default() + "\n"
        }
        Format::Csv => sections
            .iter()
            .map(|(_, t)| render(t, format))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => sections
            .iter()
            .map(|(name, t)| format!("{name}\n{}", render(t, format)))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// Renders a table in `format` (ends with a newline unless empty JSON).
pub fn render(t: &Table, format: Format) -> String {
    match format {
        Format::Csv => {
            let mut out = t.columns.join(",") + "\n";
            for row in &t.rows {
                let line: Vec<String> = row.iter().map(|c| csv_field(&text(c))).collect();
                out += &(line.join(",") + "\n");
            }
            out
        }
        Format::Json => serde_json::to_string_pretty(&json_rows(t)).unwrap_or_default() + "\n",
        Format::Table => {
            let cells: Vec<Vec<String>> = t
                .rows
                .iter()
                .map(|r| r.iter().map(text).collect())
                .collect();
            let widths: Vec<usize> = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    cells
                        .iter()
                        .map(|r| r[i].len())
                        .chain([c.len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let numeric: Vec<bool> = (0..t.columns.len())
                .map(|i| {
                    t.rows
                        .iter()
                        .all(|r| matches!(r[i], Cell::Int(_) | Cell::Real(_) | Cell::Null))
                })
                .collect();
            let line = |vals: Vec<&str>| {
                vals.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        if numeric[i] {
                            format!("{v:>w$}", w = widths[i])
                        } else {
                            format!("{v:<w$}", w = widths[i])
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
                    + "\n"
            };
            let mut out = line(t.columns.clone());
            out += &line(
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(|s| s.as_str())
                    .collect(),
            );
            for r in &cells {
                out += &line(r.iter().map(|s| s.as_str()).collect());
            }
            out += &format!("({} rows)\n", t.rows.len());
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            columns: vec!["track", "camera", "first_seen", "score"],
            rows: vec![
                vec![
                    Cell::Int(1),
                    Cell::Text("cam,1".into()),
                    Cell::Time(0),
                    Cell::Real(0.5),
                ],
                vec![
                    Cell::Int(22),
                    Cell::Text("cam2".into()),
                    Cell::Time(1500),
                    Cell::Null,
                ],
            ],
        }
    }

    #[test]
    fn csv_quotes_and_formats_times() {
        let s = render(&sample(), Format::Csv);
        assert_eq!(
            s,
            "track,camera,first_seen,score\n1,\"cam,1\",1970-01-01T00:00:00.000Z,0.5\n22,cam2,1970-01-01T00:00:01.500Z,\n"
        );
    }

    #[test]
    fn json_keeps_types_and_raw_ms() {
        let v: serde_json::Value = serde_json::from_str(&render(&sample(), Format::Json)).unwrap();
        assert_eq!(v[1]["track"], 22);
        assert_eq!(v[1]["first_seen_ms"], 1500);
        assert!(v[1]["score"].is_null());
    }

    #[test]
    fn table_aligns_numbers_right() {
        let s = render(&sample(), Format::Table);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "track  camera  first_seen                score");
        assert!(lines[2].starts_with("    1  cam,1"));
        assert_eq!(lines[4], "(2 rows)");
    }

    #[test]
    fn sections_render_as_one_json_object_and_csv_blocks() {
        let t = sample();
        let sections = [("cameras", &t), ("runs", &t)];
        let v: serde_json::Value =
            serde_json::from_str(&render_sections(&sections, Format::Json)).unwrap();
        assert_eq!(v["runs"][1]["track"], 22);
        let csv = render_sections(&sections, Format::Csv);
        let blocks: Vec<&str> = csv.split("\n\n").collect();
        assert_eq!(blocks.len(), 2);
        assert!(blocks[1].starts_with("track,camera"));
        let table = render_sections(&sections, Format::Table);
        assert!(table.starts_with("cameras\ntrack"), "{table}");
        assert!(table.contains("\nruns\ntrack"), "{table}");
    }
}
