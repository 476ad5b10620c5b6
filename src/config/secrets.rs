//! `${NAME}` in config strings, replaced from the environment before the config is read, so
//! camera passwords and API tokens need not be written in the file.
//!
//! Input: the parsed TOML document (every value with its span) and a variable lookup. Output: the
//! same document with every string's `${NAME}` replaced, or one [`Problem`] per missing or
//! malformed reference, at the position of the string that holds it. `$${` writes a literal `${`.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Problem;
use super::validate::line_col;

/// Replaces `${NAME}` in every string of `doc` using `lookup`; collects every problem.
pub(super) fn substitute(
    doc: &mut Spanned<DeTable<'_>>,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (_, value) in doc.get_mut().iter_mut() {
        walk(value, text, lookup, &mut problems);
    }
    problems
}

fn walk(
    value: &mut Spanned<DeValue<'_>>,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) if s.contains('$') => match expand(s, lookup) {
            Ok(out) => *s = out.into(),
            Err(message) => {
                let (line, col) = line_col(text, span.start);
                problems.push(Problem { line, col, message });
            }
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                walk(item, text, lookup, problems);
            }
        }
        DeValue::Table(table) => {
            for (_, v) in table.iter_mut() {
                walk(v, text, lookup, problems);
            }
        }
        _ => {}
    }
}

/// `s` with every `${NAME}` replaced; the error names the first variable that is missing.
fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
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
                Some(v) => out.push_str(&v),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
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
            _ => None,
        }
    }

    #[test]
    fn names_are_replaced_and_dollar_dollar_escapes() {
        assert_eq!(
            expand("rtsp://${USER_1}:${CAM_PW}@cam/x", &env).unwrap(),
            "rtsp://viewer:s3cret_pw@cam/x"
        );
        assert_eq!(expand("cost $5 $${HOME}", &env).unwrap(), "cost $5 ${HOME}");
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
}
