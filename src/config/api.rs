//! Checks of the `[api]` section: the listen address parses, an address other machines can
//! reach comes with a bearer token (named by `token_env`, read from the environment), the host
//! names requests may use are names, and HTTPS gets a certificate and a key that load.

use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Spanned;

use super::raw::RawApi;
use super::validate::Problems;
use super::{ApiConfig, TlsFiles};

/// The validated `[api]` section, or None after recording its problems.
pub(super) fn validate(
    raw: &RawApi,
    env: &dyn Fn(&str) -> Option<String>,
    resolve: &dyn Fn(&str) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<ApiConfig> {
    let before = p.len();
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
    let token = raw.token_env.as_ref().and_then(|name| token(name, env, p));
    if let Some(listen) = listen
        && !listen.ip().is_loopback()
        && raw.token_env.is_none()
    {
        p.at(
            &raw.listen,
            format!(
                "api.listen = \"{listen}\" is reachable from other machines: set api.token_env to \
                 the name of an environment variable holding a bearer token"
            ),
        );
    }
    let hosts = raw.hosts.as_ref().map_or_else(Vec::new, |h| hosts(h, p));
    let tls = tls(raw, resolve, p);
    let listen = listen?;
    (p.len() == before).then(|| ApiConfig {
        listen,
        token,
        token_env: raw.token_env.as_ref().map(|n| n.get_ref().clone()),
        hosts,
        tls,
    })
}

/// The token from the variable `name` names (trimmed, not empty).
fn token(
    name: &Spanned<String>,
    env: &dyn Fn(&str) -> Option<String>,
    p: &mut Problems<'_>,
) -> Option<String> {
    let t = env(name.get_ref()).filter(|t| !t.trim().is_empty());
    if t.is_none() {
        p.at(
            name,
            format!(
                "api.token_env: environment variable {} is not set or empty",
                name.get_ref()
            ),
        );
    }
    t.map(|t| t.trim().to_string())
}

/// Host names (lower case) from `api.hosts`.
fn hosts(list: &Spanned<Vec<Spanned<String>>>, p: &mut Problems<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for h in list.get_ref() {
        let name = h.get_ref().trim().to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if valid {
            out.push(name);
        } else {
            p.at(
                h,
                format!(
                    "api.hosts: {:?} is not a host name (letters, digits, '-' and '.')",
                    h.get_ref()
                ),
            );
        }
    }
    out
}

/// `tls_cert` and `tls_key`: both or neither, each a file.
fn tls(raw: &RawApi, resolve: &dyn Fn(&str) -> PathBuf, p: &mut Problems<'_>) -> Option<TlsFiles> {
    match (&raw.tls_cert, &raw.tls_key) {
        (None, None) => None,
        (Some(c), None) | (None, Some(c)) => {
            p.at(c, "api.tls_cert and api.tls_key go together".into());
            None
        }
        (Some(cert), Some(key)) => {
            let files = TlsFiles {
                cert: resolve(cert.get_ref()),
                key: resolve(key.get_ref()),
            };
            let mut found = true;
            for (at, name, path) in [
                (cert, "tls_cert", &files.cert),
                (key, "tls_key", &files.key),
            ] {
                if !path.is_file() {
                    p.at(at, format!("api.{name}: {} is not a file", path.display()));
                    found = false;
                }
            }
            if found && let Err(e) = crate::api::tls::Tls::load(&files) {
                p.at(cert, format!("api.tls_cert: {e}"));
            }
            Some(files)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::test_support::{CAMERA, problem_lines};
    use std::path::Path;

    fn load(api: &str) -> Result<Config, Vec<String>> {
        let env = |n: &str| (n == "ST_TOKEN").then(|| "t0ken".to_string());
        let text = format!("{CAMERA}\n{api}");
        problem_lines(Config::from_str_with_env(&text, Path::new("c.toml"), &env))
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
