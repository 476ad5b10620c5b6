//! Positions of plain (unspanned) keys: settings a table checks itself (`[tracker]`,
//! `[analytics]`) or that are read as plain numbers (`ingest.detect_fps`) are looked up in the
//! document again, so their problems carry `line:col` like every other.

use toml::de::{DeTable, DeValue};

use super::validate::{Problems, line_col};

/// Byte offset of the value of `table.key` in `text` (None: not in the file, so a default, or a
/// document that does not parse).
pub(super) fn value_offset(text: &str, table: &str, key: &str) -> Option<usize> {
    let doc = DeTable::parse(text).ok()?;
    let (_, section) = doc.get_ref().iter().find(|(k, _)| k.get_ref() == table)?;
    let DeValue::Table(section) = section.get_ref() else {
        return None;
    };
    let (_, value) = section.iter().find(|(k, _)| k.get_ref() == key)?;
    Some(value.span().start)
}

impl Problems<'_> {
    /// Records `problem` of `[table]`, which starts with the key's name, at that key's value
    /// (no position when the key is not in the file: a default value).
    pub(super) fn in_table(&mut self, table: &str, problem: String) {
        let key = problem
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        let message = format!("{table}.{problem}");
        match value_offset(self.text, table, key) {
            Some(pos) => self.at_offset(pos, message),
            None => self.nowhere(message),
        }
    }

    /// Records a problem at byte offset `pos`.
    pub(super) fn at_offset(&mut self, pos: usize, message: String) {
        let (line, col) = line_col(self.text, pos);
        self.list.push((pos, super::Problem { line, col, message }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_analytics_and_detect_fps_problems_carry_their_position() {
        let text = "[ingest]\ndetect_fps = 500\n[tracker]\nconfirm_hits = 0\nhigh_score = 2.0\n";
        assert_eq!(value_offset(text, "ingest", "detect_fps"), Some(22));
        assert_eq!(value_offset(text, "tracker", "low_score"), None);
        assert_eq!(value_offset(text, "model", "ir"), None);
        let mut p = Problems {
            text,
            list: Vec::new(),
        };
        p.in_table("tracker", "high_score = 2: must be between 0 and 1".into());
        p.in_table("tracker", "confirm_hits must be at least 1".into());
        p.in_table("tracker", "low_score must not exceed high_score".into());
        let got: Vec<String> = p
            .finish()
            .unwrap_err()
            .iter()
            .map(|p| format!("{}:{}: {}", p.line, p.col, p.message))
            .collect();
        assert_eq!(
            got,
            [
                "4:16: tracker.confirm_hits must be at least 1",
                "5:14: tracker.high_score = 2: must be between 0 and 1",
                "0:0: tracker.low_score must not exceed high_score",
            ]
        );
    }
}
