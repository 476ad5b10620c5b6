//! `[events]`: where live events go besides the database — an MQTT broker, webhooks — and how
//! their senders retry (see docs/events.md, "Delivery").
//!
//! Input: the raw section with spans (`${NAME}` already replaced from the environment).
//! Output: an [`EventsConfig`] with every URL parsed, every kind known and every number in
//! range, or problems at the offending values. No message shows a password or a secret:
//! URLs are quoted with their credentials masked ([`crate::redact::url`]).

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::validate::Problems;
use crate::events::KINDS;
use crate::redact;

/// Topic prefix when neither `site` nor the host name gives one.
pub const DEFAULT_SITE: &str = "store";
/// First wait after a failed delivery (doubled per consecutive failure).
pub const DEFAULT_RETRY_INITIAL_MS: u64 = 1_000;
/// Longest wait between two delivery attempts.
pub const DEFAULT_RETRY_MAX_MS: u64 = 60_000;
/// Longest one webhook request (or one MQTT connection attempt) may take.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MIN_RETRY_MS: u64 = 10;
const MAX_RETRY_MS: u64 = 3_600_000;
const MAX_TIMEOUT_MS: u64 = 600_000;

/// `[events]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEvents {
    site: Option<Spanned<String>>,
    mqtt: Option<Spanned<String>>,
    mqtt_user: Option<Spanned<String>>,
    mqtt_password: Option<Spanned<String>>,
    mqtt_ca: Option<Spanned<String>>,
    retry_initial_ms: Option<Spanned<u64>>,
    retry_max_ms: Option<Spanned<u64>>,
    timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    webhooks: Vec<Spanned<RawWebhook>>,
}

/// `[[events.webhooks]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    id: Option<Spanned<String>>,
    url: Spanned<String>,
    kinds: Option<Spanned<Vec<Spanned<String>>>>,
    secret: Option<Spanned<String>>,
}

/// The validated `[events]` section.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// Topic prefix part: `storetrack/<site>/…`.
    pub site: String,
    /// The MQTT broker, if any.
    pub mqtt: Option<MqttConfig>,
    /// Webhooks, in file order; ids are unique.
    pub webhooks: Vec<WebhookConfig>,
    /// First wait after a failed delivery, ms (doubled per failure, with jitter).
    pub retry_initial_ms: u64,
    /// Longest wait between attempts, ms.
    pub retry_max_ms: u64,
    /// Longest one request or connection attempt may take, ms.
    pub timeout_ms: u64,
}

impl EventsConfig {
    /// One line for `check-config`: site, broker (no password) and webhooks.
    pub fn describe(&self) -> String {
        let mqtt = self.mqtt.as_ref().map_or_else(
            || "no MQTT".to_string(),
            |m| match &m.user {
                Some(u) => format!("MQTT {} as {u}", m.url),
                None => format!("MQTT {}", m.url),
            },
        );
        let hooks: Vec<&str> = self.webhooks.iter().map(|w| w.id.as_str()).collect();
        format!(
            "site {}, {mqtt}, {} webhooks{}",
            self.site,
            hooks.len(),
            if hooks.is_empty() {
                String::new()
            } else {
                format!(" ({})", hooks.join(", "))
            }
        )
    }
}

/// An MQTT broker (`mqtt://host:1883`, `mqtts://host:8883`).
#[derive(Clone)]
pub struct MqttConfig {
    /// The URL without credentials (for messages).
    pub url: url::Url,
    /// TLS (`mqtts`).
    pub tls: bool,
    /// Broker host.
    pub host: String,
    /// Broker port (1883, or 8883 with TLS, when not given).
    pub port: u16,
    /// User name (`mqtt_user`, or the URL's).
    pub user: Option<String>,
    /// Password (`mqtt_password`, or the URL's).
    pub password: Option<String>,
    /// Extra CA certificates (PEM) trusted for `mqtts` besides the Mozilla roots.
    pub ca: Option<PathBuf>,
}

impl fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is a credential: never printed.
        f.debug_struct("MqttConfig")
            .field("url", &self.url.as_str())
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

/// One webhook.
#[derive(Clone)]
pub struct WebhookConfig {
    /// Its id (cursor `webhook:<id>`, metrics label); default: the URL's host.
    pub id: String,
    /// Where events are POSTed.
    pub url: url::Url,
    /// Kinds sent (empty: all).
    pub kinds: Vec<String>,
    /// HMAC-SHA256 key of the signature header (None: unsigned).
    pub secret: Option<String>,
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret and any credential in the URL are never printed.
        f.debug_struct("WebhookConfig")
            .field("id", &self.id)
            .field("url", &redact::url(&self.url))
            .field("kinds", &self.kinds)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The validated `[events]` section, or None after recording its problems.
pub(super) fn validate(
    raw: &RawEvents,
    resolve: &dyn Fn(&str) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<EventsConfig> {
    let before = p.len();
    let site = site(raw.site.as_ref(), p);
    let mqtt = raw.mqtt.as_ref().and_then(|u| mqtt(raw, u, resolve, p));
    let mut ids = HashSet::new();
    let webhooks: Vec<_> = raw
        .webhooks
        .iter()
        .filter_map(|w| webhook(w, &mut ids, p))
        .collect();
    let (retry_initial_ms, retry_max_ms, timeout_ms) = times(raw, p);
    (p.len() == before).then_some(EventsConfig {
        site,
        mqtt,
        webhooks,
        retry_initial_ms,
        retry_max_ms,
        timeout_ms,
    })
}

/// `retry_initial_ms`, `retry_max_ms` (not below the first) and `timeout_ms`, each in range.
fn times(raw: &RawEvents, p: &mut Problems<'_>) -> (u64, u64, u64) {
    let ms = |v: &Option<Spanned<u64>>, key: &str, default, max, p: &mut Problems<'_>| {
        let Some(v) = v else { return default };
        let n = *v.get_ref();
        if !(MIN_RETRY_MS..=max).contains(&n) {
            p.at(
                v,
                format!("events.{key} = {n}: expected {MIN_RETRY_MS} to {max}"),
            );
        }
        n
    };
    let initial = ms(
        &raw.retry_initial_ms,
        "retry_initial_ms",
        DEFAULT_RETRY_INITIAL_MS,
        MAX_RETRY_MS,
        p,
    );
    let max = ms(
        &raw.retry_max_ms,
        "retry_max_ms",
        DEFAULT_RETRY_MAX_MS.max(initial),
        MAX_RETRY_MS,
        p,
    );
    if let Some(v) = &raw.retry_max_ms
        && (MIN_RETRY_MS..initial).contains(&max)
    {
        p.at(
            v,
            "events.retry_max_ms is below events.retry_initial_ms".into(),
        );
    }
    let timeout = ms(
        &raw.timeout_ms,
        "timeout_ms",
        DEFAULT_TIMEOUT_MS,
        MAX_TIMEOUT_MS,
        p,
    );
    (initial, max, timeout)
}

/// `site`, or this host's name, or [`DEFAULT_SITE`]: one MQTT topic level.
fn site(raw: Option<&Spanned<String>>, p: &mut Problems<'_>) -> String {
    let Some(s) = raw else {
        return crate::host::name()
            .filter(|h| topic_level_ok(h))
            .unwrap_or_else(|| DEFAULT_SITE.to_string());
    };
    let v = s.get_ref().trim();
    if !topic_level_ok(v) {
        p.at(
            s,
            format!("events.site = {v:?}: expected one topic level (no '/', '+', '#', not empty)"),
        );
    }
    v.to_string()
}

fn topic_level_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains(['/', '+', '#', '\0']) && s.len() <= 128
}

/// `mqtt` (+ `mqtt_user`, `mqtt_password`, `mqtt_ca`).
fn mqtt(
    raw: &RawEvents,
    at: &Spanned<String>,
    resolve: &dyn Fn(&str) -> PathBuf,
    p: &mut Problems<'_>,
) -> Option<MqttConfig> {
    let text = at.get_ref().trim();
    let parsed = url::Url::parse(text).ok();
    let shown = parsed
        .as_ref()
        .map_or_else(|| "(not a URL)".to_string(), redact::url);
    let Some(mut url) = parsed.filter(|u| matches!(u.scheme(), "mqtt" | "mqtts")) else {
        p.at(
            at,
            format!("events.mqtt = {shown:?}: expected mqtt://HOST:PORT or mqtts://HOST:PORT"),
        );
        return None;
    };
    let Some(host) = url.host_str().filter(|h| !h.is_empty()).map(str::to_string) else {
        p.at(at, format!("events.mqtt = {shown:?}: no host"));
        return None;
    };
    let tls = url.scheme() == "mqtts";
    let (user, password) = credentials(raw, &mut url);
    let ca = raw.mqtt_ca.as_ref().map(|c| {
        let path = resolve(c.get_ref());
        if !path.is_file() {
            p.at(
                c,
                format!("events.mqtt_ca: {} is not a file", path.display()),
            );
        }
        path
    });
    Some(MqttConfig {
        port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
        url,
        tls,
        host,
        user,
        password,
        ca,
    })
}

/// User and password: the keys, else the URL's (percent-decoded); the URL keeps neither.
fn credentials(raw: &RawEvents, url: &mut url::Url) -> (Option<String>, Option<String>) {
    let key = |k: &Option<Spanned<String>>| k.as_ref().map(|v| v.get_ref().clone());
    let user = key(&raw.mqtt_user)
        .or_else(|| (!url.username().is_empty()).then(|| percent_decode(url.username())));
    let password = key(&raw.mqtt_password).or_else(|| url.password().map(percent_decode));
    let _ = url.set_password(None);
    let _ = url.set_username("");
    (user, password)
}

/// `%XX` escapes of a URL's user or password decoded (invalid ones kept as written).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One `[[events.webhooks]]`; its id must be new.
fn webhook(
    w: &Spanned<RawWebhook>,
    ids: &mut HashSet<String>,
    p: &mut Problems<'_>,
) -> Option<WebhookConfig> {
    let raw = w.get_ref();
    let parsed = url::Url::parse(raw.url.get_ref().trim()).ok();
    let shown = parsed
        .as_ref()
        .map_or_else(|| "(not a URL)".to_string(), redact::url);
    let Some(url) = parsed.filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
    else {
        p.at(
            &raw.url,
            format!("events.webhooks.url = {shown:?}: expected http://… or https://…"),
        );
        return None;
    };
    let id = raw.id.as_ref().map_or_else(
        || url.host_str().unwrap_or_default().to_string(),
        |i| i.get_ref().trim().to_string(),
    );
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let id_at = raw.id.as_ref().unwrap_or(&raw.url);
    if !id_ok {
        p.at(
            id_at,
            format!("events.webhooks.id = {id:?}: letters, digits, '-', '_' and '.' only"),
        );
    } else if !ids.insert(id.clone()) {
        p.at(
            id_at,
            format!("events.webhooks: id {id:?} is used twice (give each webhook its own id)"),
        );
    }
    let kinds = kinds(raw.kinds.as_ref(), p);
    let secret = raw.secret.as_ref().map(|s| s.get_ref().clone());
    if let Some(s) = &raw.secret
        && s.get_ref().is_empty()
    {
        p.at(s, "events.webhooks.secret is empty".into());
    }
    Some(WebhookConfig {
        id,
        url,
        kinds,
        secret,
    })
}

/// `kinds`: each a known kind.
fn kinds(list: Option<&Spanned<Vec<Spanned<String>>>>, p: &mut Problems<'_>) -> Vec<String> {
    let mut kinds = Vec::new();
    for k in list.into_iter().flat_map(|k| k.get_ref()) {
        if KINDS.contains(&k.get_ref().as_str()) {
            kinds.push(k.get_ref().clone());
        } else {
            p.at(
                k,
                format!(
                    "events.webhooks.kinds: {:?} is not a kind (one of {})",
                    k.get_ref(),
                    KINDS.join(", ")
                ),
            );
        }
    }
    kinds
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
