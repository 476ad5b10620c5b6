//! Sessions for the web page: where a token is configured, `/login` takes it once and sets an
//! `HttpOnly`, `SameSite=Strict` cookie naming a server-side session (the token itself never
//! reaches the page again); the API's token check accepts that cookie as it accepts the bearer
//! token. Every write needs the header `X-CSRF-Token` holding the session's CSRF token (without a
//! configured token: one per service run), which only the page can read (`/ui/api/session`).
//!
//! Input: the login form, cookies and headers. Output: sessions, redirects, 401/403 answers.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Extensions, HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::json;

use super::super::{ApiCounters, ApiState, guard};

/// The session cookie's name.
pub const COOKIE: &str = "storetrack_session";
/// The header every write carries.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; the oldest goes when a new one would exceed this.
const MAX_SESSIONS: usize = 64;

const LOGIN_HTML: &str = include_str!("assets/login.html");

/// The open sessions (session id → CSRF token, expiry) and the run's CSRF token for pages
/// opened without a token.
#[derive(Debug)]
pub struct Sessions {
    open: Mutex<HashMap<String, (String, Instant)>>,
    anonymous_csrf: String,
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            open: Mutex::default(),
            anonymous_csrf: random_token(),
        }
    }
}

impl Sessions {
    fn create(&self) -> (String, String) {
        let (id, csrf) = (random_token(), random_token());
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        open.retain(|_, (_, exp)| *exp > now);
        if open.len() >= MAX_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, (_, e))| *e)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id.clone(), (csrf.clone(), now + SESSION_TTL));
        (id, csrf)
    }

    /// The CSRF token of live session `id`.
    fn csrf_of(&self, id: &str) -> Option<String> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(id)
            .filter(|(_, exp)| *exp > Instant::now())
            .map(|(c, _)| c.clone())
    }

    fn end(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// 32 random bytes from the kernel, hex.
fn random_token() -> String {
    let mut b = [0u8; 32];
    // /dev/urandom never blocks once the kernel's pool is seeded (at boot).
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        panic!("cannot read /dev/urandom for a session token: {e}");
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The session id in the request's cookie, if any.
pub(in crate::api) fn cookie_session(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Whether the request names a live session.
pub(in crate::api) fn has_session(state: &ApiState, headers: &HeaderMap) -> bool {
    cookie_session(headers).is_some_and(|id| state.web.sessions.csrf_of(id).is_some())
}

/// The CSRF token this request's page must send back.
fn csrf_for(state: &ApiState, headers: &HeaderMap) -> Option<String> {
    match &state.token {
        None => Some(state.web.sessions.anonymous_csrf.clone()),
        Some(_) => cookie_session(headers).and_then(|id| state.web.sessions.csrf_of(id)),
    }
}

/// `GET /login`.
pub(super) async fn login_page() -> Response {
    page(StatusCode::OK, "")
}

fn page(code: StatusCode, message: &str) -> Response {
    let body = LOGIN_HTML.replace("{message}", message);
    let mut r = (code, Html(body)).into_response();
    super::assets::harden(r.headers_mut());
    r
}

/// `POST /login` with `token=...` (form): a session cookie and a redirect to the page. A
/// client that sent too many wrong tokens is refused for a while (429), as on the API.
pub(super) async fn login(
    State(state): State<Arc<ApiState>>,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    let Some(expected) = &state.token else {
        return Redirect::to("/").into_response();
    };
    let peer = guard::peer(&extensions);
    if let Some(wait) = peer.and_then(|ip| state.throttle.blocked(ip, Instant::now())) {
        return refused(&state, wait);
    }
    let given = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !guard::constant_time_eq(given.trim().as_bytes(), expected.as_bytes()) {
        guard::wrong_token(&state, peer);
        return page(StatusCode::UNAUTHORIZED, "Wrong token.");
    }
    if let Some(ip) = peer {
        state.throttle.succeeded(ip);
    }
    let (id, _) = state.web.sessions.create();
    let secure = if state.web.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = cookie.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The login page saying the client is refused for `wait` more (429, `Retry-After`).
fn refused(state: &ApiState, wait: Duration) -> Response {
    ApiCounters::inc(&state.counters.throttled);
    let secs = wait.as_secs().max(1);
    let message = format!(
        "Too many wrong tokens from this address: try again in {} min.",
        secs.div_ceil(60)
    );
    let mut r = page(StatusCode::TOO_MANY_REQUESTS, &message);
    r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    r
}

/// `POST /logout`: ends the session and clears the cookie.
pub(super) async fn logout(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie_session(&headers) {
        state.web.sessions.end(id);
    }
    let mut r = Redirect::to("/login").into_response();
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(v) = clear.parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `GET /ui/api/session`: the CSRF token for writes and what the page may do.
pub(super) async fn session(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let csrf = csrf_for(&state, &headers);
    axum::Json(json!({
        "csrf": csrf,
        "login": state.token.is_some(),
        "setup": state.web.allow_setup,
    }))
    .into_response()
}

/// Refuses a write (any method but GET and HEAD) without the session's CSRF token.
pub(super) async fn csrf(State(state): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ok = csrf_for(&state, req.headers())
        .is_some_and(|want| guard::constant_time_eq(given.as_bytes(), want.as_bytes()));
    if !ok {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({"error": "missing or wrong X-CSRF-Token (reload the page)"})),
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; storetrack_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_session(&h), Some("abc"));
        let s = Sessions::default();
        let (id, csrf) = s.create();
        assert_eq!(s.csrf_of(&id), Some(csrf));
        assert_eq!(s.csrf_of("abc"), None);
        s.end(&id);
        assert_eq!(s.csrf_of(&id), None);
        assert_eq!(random_token().len(), 64);
    }
}
