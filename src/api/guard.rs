//! Who may ask: the `Host` a request is addressed to (an IP address, `localhost` or a name in
//! `api.hosts`; any other name is a page of some other site resolving to this box, i.e. DNS
//! rebinding), and the bearer token (or the web page's session cookie) when one is configured;
//! a client that sent too many wrong tokens is refused for a while ([`super::throttle`]).
//!
//! Input: request headers and the client's address. Output: the request passed on, or a JSON
//! error (421 for a foreign host, 401 for a missing or wrong token, 429 for a client refused).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::warn;

use super::{ApiCounters, ApiState, throttle};

/// Refuses a request addressed to a host name this service does not answer to.
pub(super) async fn host(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    if let Some(h) = host
        && !host_allowed(h, &state.hosts)
    {
        let shown: String = h.chars().take(64).collect();
        return (
            StatusCode::MISDIRECTED_REQUEST,
            axum::Json(json!({
                "error": format!(
                    "host {shown:?} is not one this service answers to (an IP address, \
                     localhost, or a name listed in api.hosts)"
                )
            })),
        )
            .into_response();
    }
    next.run(req).await
}

/// Whether `host` (a `Host` header: name or address, optional port) is an IP address,
/// `localhost` or one of `names`.
pub(super) fn host_allowed(host: &str, names: &[String]) -> bool {
    let host = host.trim();
    // [v6]:port, [v6], v4:port, name:port, v4, name.
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) if tail.is_empty() || port(tail.strip_prefix(':')) => {
                return v6.parse::<std::net::Ipv6Addr>().is_ok();
            }
            _ => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, p)) if port(Some(p)) => name,
            Some(_) => return false,
            None => host,
        }
    };
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    name.parse::<IpAddr>().is_ok() || name == "localhost" || names.contains(&name)
}

fn port(p: Option<&str>) -> bool {
    p.is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Rejects a request without the configured bearer token.
pub(super) async fn token(
    State(state): State<Arc<ApiState>>,
    req: Request,
    next: Next,
) -> Response {
    let peer = peer(req.extensions());
    if let Some(wait) = peer.and_then(|ip| state.throttle.blocked(ip, Instant::now())) {
        return throttled(&state, wait);
    }
    if let Some(token) = &state.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let bearer = constant_time_eq(given.trim().as_bytes(), token.as_bytes());
        if bearer && let Some(ip) = peer {
            state.throttle.succeeded(ip);
        } else if !given.is_empty() {
            wrong_token(&state, peer);
        }
        if !bearer && !super::web::auth::has_session(&state, req.headers()) {
            if is_page(req.uri().path()) {
                // A browser without a session: the login page, nothing else.
                return axum::response::Redirect::to("/login").into_response();
            }
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(json!({"error": "missing or wrong bearer token"})),
            )
                .into_response();
        }
    }
    next.run(req).await
}

/// The client's address, as the accept loop put it in the request.
pub(super) fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Counts a wrong token from `ip` (and the client refused when it is one too many).
pub(super) fn wrong_token(state: &ApiState, ip: Option<IpAddr>) {
    ApiCounters::inc(&state.counters.wrong_tokens);
    if let Some(ip) = ip
        && state.throttle.failed(ip, Instant::now())
    {
        warn!(client = %ip, wrong_tokens = throttle::MAX_FAILURES,
              refused_s = throttle::BLOCK.as_secs(),
              "HTTP API: too many wrong tokens from one client; refusing it for a while.");
    }
}

/// 429 for a client refused for `wait` more.
pub(super) fn throttled(state: &ApiState, wait: Duration) -> Response {
    ApiCounters::inc(&state.counters.throttled);
    let secs = wait.as_secs().max(1).to_string();
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, secs)],
        axum::Json(json!({"error": "too many wrong tokens from this address; try again later"})),
    )
        .into_response()
}

/// Whether `path` is the web page or its assets (answered with a redirect to the login page
/// rather than a JSON error).
fn is_page(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/app.") || path == "/ui/lines.js"
}

/// Compares without stopping at the first difference (the time taken does not tell how much
/// of a guess was right).
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn hosts_allowed_are_addresses_localhost_and_listed_names() {
        let names = vec!["box.store.lan".to_string()];
        for ok in [
            "127.0.0.1:9464",
            "10.1.2.3",
            "[::1]:9464",
            "[fe80::1]",
            "localhost:9464",
            "LOCALHOST",
            "box.store.lan:9464",
            "box.store.lan.",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for bad in [
            "evil.example:9464",
            "127.0.0.1.evil.example",
            "box.store.lan:x",
            "[::1",
            "[::1]x",
            "localhost:99999999",
            "",
        ] {
            assert!(!host_allowed(bad, &names), "{bad}");
        }
    }
}
