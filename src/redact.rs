//! Keeps camera credentials out of logs, errors, API answers, metrics and the database.
//!
//! Input: a camera URL, or any text that may quote one (GStreamer error and debug strings include
//! the full RTSP URL). Output: the same with every credential replaced by `***`: the password of
//! `user:password@` (or a lone user name, which some cameras use as a key), and the value of any
//! query parameter whose name says it is a credential (`password=`, `pwd=`, `passwd=`, `token=`,
//! `key=`, `secret=`, `auth=`, `signature=` and names ending in those). [`Writer`] applies
//! [`scrub`] to every log line as a last line of defence.

use std::borrow::Cow;
use std::io;

const MASK: &str = "***";

/// Query parameter names (lower case, without `-`/`_`) that carry credentials; a name ending in
/// one of them counts too (`api_key`, `access_token`, `x-auth`).
const CREDENTIAL_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "key",
    "secret",
    "auth",
    "authorization",
    "signature",
    "sig",
    "credential",
    "credentials",
];

/// True if a query parameter called `name` carries a credential.
pub fn is_credential_key(name: &str) -> bool {
    let norm: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    !norm.is_empty() && CREDENTIAL_KEYS.iter().any(|k| norm.ends_with(k))
}

/// The URL as text with every credential masked.
pub fn url(u: &url::Url) -> String {
    let mut masked = u.clone();
    if u.password().is_some() {
        // Cannot fail: the URL has a host since it has a password.
        let _ = masked.set_password(Some(MASK));
    } else if !u.username().is_empty() {
        let _ = masked.set_username(MASK);
    }
    if u.query().is_some() && u.query_pairs().any(|(k, _)| is_credential_key(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_credential_key(&k) {
                    MASK.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        masked.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `***` in the query comes back percent-encoded from the serializer; keep it readable.
    masked.to_string().replace("%2A%2A%2A", MASK)
}

/// Every secret of `u`, as written in the URL and percent-decoded.
fn secrets(u: &url::Url) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    if let Some(pw) = u.password() {
        raw.push(pw.to_string());
    } else if !u.username().is_empty() {
        raw.push(u.username().to_string());
    }
    if let Some(q) = u.query() {
        for pair in q.split(['&', ';']) {
            if let Some((k, v)) = pair.split_once('=')
                && is_credential_key(&percent_decode(k))
            {
                raw.push(v.to_string());
            }
        }
    }
    let mut all = Vec::new();
    for s in raw {
        let decoded = percent_decode(&s.replace('+', " "));
        all.push(percent_decode(&s));
        all.push(decoded);
        all.push(s);
    }
    all.retain(|s| !s.is_empty() && s != MASK);
    // Longest first, so a secret that contains another is masked whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    all
}

/// Masks the secrets of `u` wherever they appear in `text` (raw or percent-decoded), then any
/// other credential that looks like one ([`scrub`]).
pub fn text<'a>(u: &url::Url, text: &'a str) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets(u) {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    match scrub(&out) {
        Cow::Borrowed(_) => out,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

/// Masks credentials in any text: the userinfo of `scheme://user:password@host` and the value
/// of credential-named `key=value` pairs.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let step1 = scrub_userinfo(text);
    match scrub_pairs(&step1) {
        Cow::Borrowed(_) => step1,
        Cow::Owned(s) => Cow::Owned(s),
    }
}

fn ends_authority(c: char) -> bool {
    c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`')
}

fn scrub_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail.find(ends_authority).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(atsign) => {
                let userinfo = &authority[..atsign];
                let masked = match userinfo.split_once(':') {
                    Some((user, pw)) if pw != MASK => format!("{user}:{MASK}"),
                    Some(_) => userinfo.to_string(),
                    None if userinfo != MASK => MASK.to_string(),
                    None => userinfo.to_string(),
                };
                changed |= masked != userinfo;
                out.push_str(&masked);
                out.push_str(&authority[atsign..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn ends_value(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '&' | ';' | '"' | '\'' | '<' | '>' | ')' | ',' | '#' | '`'
        )
}

fn scrub_pairs(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    for (eq, _) in text.match_indices('=') {
        if eq < copied {
            continue;
        }
        let before = &text[..eq];
        let key_start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_key_char(*c))
            .last()
            .map_or(eq, |(i, _)| i);
        if !is_credential_key(&text[key_start..eq]) {
            continue;
        }
        let after = &text[eq + 1..];
        let len = after.find(ends_value).unwrap_or(after.len());
        let value = &after[..len];
        if value.is_empty() || value == MASK {
            continue;
        }
        out.push_str(&text[copied..=eq]);
        out.push_str(MASK);
        copied = eq + 1 + len;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A log writer that scrubs credentials from each record before it reaches `W` (the fmt layer
/// writes one record per call, so a record is never split).
pub struct Writer<W>(pub W);

impl<W: io::Write> io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(s) => {
                self.0.write_all(scrub(s).as_bytes())?;
                Ok(buf.len())
            }
            Err(_) => self.0.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Makes a scrubbing stderr writer for `tracing_subscriber::fmt().with_writer(...)`.
pub fn stderr() -> Writer<io::Stderr> {
    Writer(io::stderr())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn url_masks_password_only() {
        assert_eq!(
            url(&u("rtsp://admin:s%40cret@10.0.0.5:554/live")),
            "rtsp://admin:***@10.0.0.5:554/live"
        );
        assert_eq!(url(&u("rtsp://10.0.0.5/live")), "rtsp://10.0.0.5/live");
    }

    #[test]
    fn url_masks_a_lone_user_name_and_credential_parameters() {
        assert_eq!(url(&u("rtsp://APIKEY123@cam/x")), "rtsp://***@cam/x");
        let every = "rtsp://cam/live?channel=1&password=p1&pwd=p2&passwd=p3&token=p4&key=p5\
                     &secret=p6&auth=p7&api_key=p8&access_token=p9&signature=p10&subtype=0";
        let masked = url(&u(every));
        for i in 1..=10 {
            assert!(!masked.contains(&format!("p{i}&")), "{masked}");
            assert!(!masked.ends_with(&format!("p{i}")), "{masked}");
        }
        assert!(masked.contains("channel=1"), "{masked}");
        assert!(masked.contains("subtype=0"), "{masked}");
        assert!(masked.contains("password=***"), "{masked}");
    }

    #[test]
    fn text_masks_raw_and_decoded_secrets() {
        let cam = u("rtsp://admin:s%40cret@cam/live?token=t%2Fk");
        let msg = "Could not open rtsp://admin:s%40cret@cam/live?token=t%2Fk (auth s@cret, t/k)";
        let out = text(&cam, msg);
        assert!(
            !out.contains("s%40cret") && !out.contains("s@cret"),
            "{out}"
        );
        assert!(!out.contains("t%2Fk") && !out.contains("t/k"), "{out}");
        assert!(
            out.starts_with("Could not open rtsp://admin:***@cam/live?token=***"),
            "{out}"
        );
    }

    #[test]
    fn scrub_masks_any_url_in_free_text() {
        let s = "error from rtspsrc0: rtsp://bob:hunter2@1.2.3.4/x?ch=1&Password=zz9 failed; \
                 retry rtsp://tok3n@cam/y and http://plain/z?a=1";
        let out = scrub(s);
        assert_eq!(
            out,
            "error from rtspsrc0: rtsp://bob:***@1.2.3.4/x?ch=1&Password=*** failed; \
             retry rtsp://***@cam/y and http://plain/z?a=1"
        );
        assert!(matches!(
            scrub("nothing secret here: a=1"),
            Cow::Borrowed(_)
        ));
        // Already masked text stays as it is.
        assert!(matches!(scrub(&out), Cow::Borrowed(_)));
    }

    #[test]
    fn credential_key_names() {
        for k in [
            "password",
            "PWD",
            "api-key",
            "X_Auth",
            "access_token",
            "Secret",
        ] {
            assert!(is_credential_key(k), "{k}");
        }
        for k in ["channel", "subtype", "user", "camera", ""] {
            assert!(!is_credential_key(k), "{k}");
        }
    }

    #[test]
    fn writer_scrubs_each_record() {
        use std::io::Write;
        let mut w = Writer(Vec::new());
        w.write_all(b"url=rtsp://a:b@c/d token=abc\n").unwrap();
        assert_eq!(
            String::from_utf8(w.0).unwrap(),
            "url=rtsp://a:***@c/d token=***\n"
        );
    }
}
