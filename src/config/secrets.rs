//! `${NAME}` in config strings, replaced from the environment before the config is read, so
//! camera passwords and API tokens need not be written in the file.
//!
//! Input: the parsed TOML document (every value with its span) and a variable lookup. Output: the
//! same document with every string's `${NAME}` replaced, or one [`Problem`] per missing or
//! malformed reference, at the position of the string that holds it. `$${` writes a literal `${`.
//! The values put in are remembered ([`Substituted`]) so that no later message about the file
//! can echo one: a value is a secret as far as messages go.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Problem;
use super::validate::line_col;

/// What the environment put into the document.
#[derive(Debug, Default)]
pub(super) struct Substituted {
    /// Missing or malformed references.
    pub problems: Vec<Problem>,
    /// Each string that held a reference: its span in the file and the values put in it.
    values: Vec<(Range<usize>, Vec<String>)>,
}

/// Values at least this long are masked in every message; shorter ones only in messages about
/// the string they were put in (a value such as `1` would otherwise mask unrelated text).
const MASK_EVERYWHERE_LEN: usize = 4;

impl Substituted {
    /// `message` with every value from the environment that may appear in it replaced by
    /// `***`: all long values, and the short ones of the string at `pos` (byte offset).
    pub fn mask(&self, message: &str, pos: Option<usize>) -> String {
        let mut out = message.to_string();
        for (span, values) in &self.values {
            let here = pos.is_some_and(|p| span.contains(&p));
            for v in values {
                if !v.is_empty() && (here || v.len() >= MASK_EVERYWHERE_LEN) {
                    out = out.replace(v.as_str(), "***");
                }
            }
        }
        out
    }

    /// Masks a problem's message (its position finds the string it is about).
    pub fn mask_problem(&self, text: &str, p: &mut Problem) {
        let pos = (p.line > 0).then(|| offset(text, p.line, p.col));
        p.message = self.mask(&p.message, pos);
    }
}

/// Byte offset of 1-based `line`, `col` in `text`.
fn offset(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    start + col - 1
}

/// Replaces `${NAME}` in every string of `doc` using `lookup`; collects every problem. With
/// `only`, just the top-level tables and arrays named there are expanded (the read commands
/// need no camera secret).
pub(super) fn substitute(
    doc: &mut Spanned<DeTable<'_>>,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    only: Option<&[&str]>,
) -> Substituted {
    let mut out = Substituted::default();
    for (key, value) in doc.get_mut().iter_mut() {
        if only.is_none_or(|keys| keys.contains(&key.get_ref().as_ref())) {
            walk(value, text, lookup, &mut out);
        }
    }
    out
}

fn walk(
    value: &mut Spanned<DeValue<'_>>,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut Substituted,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => match expand(s, lookup) {
            Ok((expanded, values)) => {
                *s = expanded.into();
                out.values.push((span, values));
            }
            Err(message) => {
                let (line, col) = line_col(text, span.start);
                out.problems.push(Problem { line, col, message });
            }
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                walk(item, text, lookup, out);
            }
        }
        DeValue::Table(table) => {
            for (_, v) in table.iter_mut() {
                walk(v, text, lookup, out);
            }
        }
        _ => {}
    }
}

/// `s` with every `${NAME}` replaced, and the values put in; the error names the first
/// variable that is missing.
pub(super) fn expand(
    s: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    let mut values = Vec::new();
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("unterminated ${...} (write $${ for a literal ${)".into());
            };
            let name = &after[..end];
            if !is_name(name) {
                return Err(format!(
                    "${{{name}}}: variable names are letters, digits and '_' (not starting with a digit)"
                ));
            }
            match lookup(name) {
                Some(v) => {
                    out.push_str(&v);
                    values.push(v);
                }
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok((out, values))
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn env(name: &str) -> Option<String> {
        match name {
            "CAM_PW" => Some("s3cret_pw".into()),
            "USER_1" => Some("viewer".into()),
            "SHORT" => Some("zq".into()),
            _ => None,
        }
    }

    #[test]
    fn names_are_replaced_and_dollar_dollar_escapes() {
        assert_eq!(
            expand("rtsp://${USER_1}:${CAM_PW}@cam/x", &env).unwrap(),
            (
                "rtsp://viewer:s3cret_pw@cam/x".to_string(),
                vec!["viewer".to_string(), "s3cret_pw".to_string()]
            )
        );
        assert_eq!(
            expand("cost $5 $${HOME}", &env).unwrap().0,
            "cost $5 ${HOME}"
        );
    }

    #[test]
    fn missing_and_malformed_references_are_errors() {
        assert_eq!(
            expand("a${NOPE}b", &env).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(
            expand("${1X}", &env)
                .unwrap_err()
                .contains("variable names")
        );
        assert!(
            expand("${CAM_PW", &env)
                .unwrap_err()
                .contains("unterminated")
        );
    }

    #[test]
    fn every_string_in_the_document_is_expanded_with_positions() {
        let text = "[[cameras]]\nid = \"c\"\nurl = \"rtsp://u:${CAM_PW}@h/x\"\n\n[storage]\ndb = \"${MISSING}\"\n";
        let err = Config::from_str_with_env(text, Path::new("/c.toml"), &env).unwrap_err();
        let ConfigError::Invalid { problems, .. } = err else {
            panic!("{err}");
        };
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].line, problems[0].col), (6, 6));
        assert!(problems[0].message.contains("MISSING"));
        let ok = text.replace("${MISSING}", "t.db");
        let c = Config::from_str_with_env(&ok, Path::new("/c.toml"), &env).unwrap();
        assert_eq!(c.cameras[0].url.password(), Some("s3cret_pw"));
    }

    fn problems_of(text: &str) -> Vec<String> {
        match Config::from_str_with_env(text, Path::new("/c.toml"), &env) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| p.message).collect()
            }
            other => panic!("{other:?}"),
        }
    }

    /// A value from the environment in a key of the wrong type was echoed by the type error,
    /// and a password in the userinfo of a model-server endpoint by its check.
    #[test]
    fn values_from_the_environment_are_never_echoed() {
        let cam = "[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/x\"\n";
        let typed = format!("{cam}[ingest]\nlatency_ms = \"${{CAM_PW}}\"\n");
        let p = problems_of(&typed);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("invalid type"), "{p:?}");
        assert!(!p[0].contains("s3cret_pw"), "{p:?}");
        let short = format!("{cam}[ingest]\nprotocols = \"${{SHORT}}\"\n");
        let p = problems_of(&short);
        assert!(p[0].starts_with("ingest.protocols = \"***\""), "{p:?}");
        let endpoint = format!(
            "{cam}[inference]\nbackend = \"kserve\"\nmodel = \"m\"\n\
             endpoints = [\"grpc://u:${{CAM_PW}}@h:1\", \"grpc://u:literalpw@h:2\"]\n"
        );
        let p = problems_of(&endpoint);
        assert_eq!(p.len(), 2, "{p:?}");
        for m in &p {
            assert!(
                !m.contains("s3cret_pw") && !m.contains("literalpw"),
                "{p:?}"
            );
        }
    }
}
