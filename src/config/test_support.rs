//! Helpers shared by the config unit tests: a config's problems as the `line:col: message`
//! lines the tests compare, and the one camera most test configs start with.

use super::{Config, ConfigError};

/// A camera `c` (three lines): what a test config needs before the section it is about.
pub const CAMERA: &str = "[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/x\"\n";

/// A loaded config, or its problems as `line:col: message` lines. Panics on any other error: a
/// config from text is either valid or a list of problems.
pub fn problem_lines(loaded: Result<Config, ConfigError>) -> Result<Config, Vec<String>> {
    loaded.map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => problems
            .into_iter()
            .map(|p| format!("{}:{}: {}", p.line, p.col, p.message))
            .collect(),
        other => panic!("unexpected {other}"),
    })
}

/// The problems of `text` as the file `/etc/st/config.toml` (none when it loads).
pub fn problems(text: &str) -> Vec<String> {
    problem_lines(Config::from_str_at(
        text,
        std::path::Path::new("/etc/st/config.toml"),
    ))
    .err()
    .unwrap_or_default()
}
