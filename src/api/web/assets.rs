//! The page's files, compiled into the binary (no file is read at run time, nothing is fetched
//! from the internet): the HTML shell, the scripts and the style sheet.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const LINES_JS: &str = include_str!("assets/lines.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// Only this origin's scripts, styles, pictures and connections; never framed by another site.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self' \
                   'unsafe-inline'; script-src 'self'; connect-src 'self'; \
                   frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Adds the security headers every page answer carries.
pub(super) fn harden(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

fn file(body: &'static str, content_type: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    harden(r.headers_mut());
    r
}

/// `GET /`.
pub(super) async fn index() -> Response {
    file(INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /ui/app.js`.
pub(super) async fn script() -> Response {
    file(APP_JS, "text/javascript; charset=utf-8")
}

/// `GET /ui/lines.js`.
pub(super) async fn lines_script() -> Response {
    file(LINES_JS, "text/javascript; charset=utf-8")
}

/// `GET /ui/app.css`.
pub(super) async fn style() -> Response {
    file(APP_CSS, "text/css; charset=utf-8")
}
