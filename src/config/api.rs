//! Checks of the `[api]` section: the listen address parses, and an address other machines can
//! reach comes with a bearer token (named by `token_env`, read from the environment).

use std::net::SocketAddr;

use super::ApiConfig;
use super::raw::RawApi;
use super::validate::Problems;

/// The validated `[api]` section, or None after recording its problems.
pub(super) fn validate(
    raw: &RawApi,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems<'_>,
) -> Option<ApiConfig> {
    let listen = match raw.listen.get_ref().trim().parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            p.at(
                &raw.listen,
                format!(
                    "api.listen = {:?}: expected ADDRESS:PORT such as \"127.0.0.1:9464\"",
                    raw.listen.get_ref()
                ),
            );
            None
        }
    };
    let mut token_ok = true;
    let token = match &raw.token_env {
        None => None,
        Some(name) => match env(name.get_ref()).filter(|t| !t.trim().is_empty()) {
            Some(t) => Some(t.trim().to_string()),
            None => {
                p.at(
                    name,
                    format!(
                        "api.token_env: environment variable {} is not set or empty",
                        name.get_ref()
                    ),
                );
                token_ok = false;
                None
            }
        },
    };
    let listen = listen?;
    if !listen.ip().is_loopback() && raw.token_env.is_none() {
        p.at(
            &raw.listen,
            format!(
                "api.listen = \"{listen}\" is reachable from other machines: set api.token_env to \
                 the name of an environment variable holding a bearer token"
            ),
        );
        return None;
    }
    token_ok.then(|| ApiConfig {
        listen,
        token,
        token_env: raw.token_env.as_ref().map(|n| n.get_ref().clone()),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    const CAM: &str = "[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/x\"\n\n";

    fn load(api: &str) -> Result<Config, Vec<String>> {
        let env = |n: &str| (n == "ST_TOKEN").then(|| "t0ken".to_string());
        Config::from_str_with_env(&format!("{CAM}{api}"), Path::new("c.toml"), &env).map_err(|e| {
            match e {
                ConfigError::Invalid { problems, .. } => problems
                    .into_iter()
                    .map(|p| format!("{}:{}: {}", p.line, p.col, p.message))
                    .collect(),
                other => vec![other.to_string()],
            }
        })
    }

    #[test]
    fn absent_section_means_no_api() {
        assert!(load("").unwrap().api.is_none());
    }

    #[test]
    fn loopback_needs_no_token() {
        let c = load("[api]\nlisten = \"127.0.0.1:9464\"\n").unwrap();
        let api = c.api.unwrap();
        assert_eq!(api.listen.port(), 9464);
        assert!(api.token.is_none());
    }

    #[test]
    fn non_loopback_without_token_is_refused_with_position() {
        let p = load("[api]\nlisten = \"0.0.0.0:9464\"\n").unwrap_err();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("6:10: api.listen = \"0.0.0.0:9464\" is reachable"),
            "{p:?}"
        );
    }

    #[test]
    fn non_loopback_with_token_reads_it_from_the_environment() {
        let c = load("[api]\nlisten = \"0.0.0.0:9464\"\ntoken_env = \"ST_TOKEN\"\n").unwrap();
        assert_eq!(c.api.as_ref().unwrap().token.as_deref(), Some("t0ken"));
        assert!(!format!("{:?}", c.api).contains("t0ken"));
        let p = load("[api]\nlisten = \"0.0.0.0:1\"\ntoken_env = \"NOT_SET\"\n").unwrap_err();
        assert!(
            p[0].starts_with("7:13: api.token_env: environment variable NOT_SET"),
            "{p:?}"
        );
    }

    #[test]
    fn malformed_address_is_reported() {
        let p = load("[api]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(
            p[0].starts_with("6:10: api.listen = \"localhost\""),
            "{p:?}"
        );
    }
}
