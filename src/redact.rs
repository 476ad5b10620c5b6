//! Keeps camera passwords out of logs and messages.
//!
//! Input: a camera URL (which may carry `user:password@`), or any text that may quote it
//! (GStreamer error and debug strings include the full RTSP URL). Output: the same text with the
//! password replaced by `***`.

use std::borrow::Cow;

const MASK: &str = "***";

/// The URL as text with its password (if any) masked.
pub fn url(u: &url::Url) -> String {
    if u.password().is_none() {
        return u.to_string();
    }
    let mut masked = u.clone();
    // Cannot fail: the URL already has a host since it has a password.
    let _ = masked.set_password(Some(MASK));
    masked.to_string()
}

/// Masks the password of `u` wherever it appears in `text`, raw or percent-decoded.
pub fn text<'a>(u: &url::Url, text: &'a str) -> Cow<'a, str> {
    let Some(pw) = u.password().filter(|p| !p.is_empty()) else {
        return Cow::Borrowed(text);
    };
    let decoded = percent_decode(pw);
    let mut out = Cow::Borrowed(text);
    for secret in [pw, decoded.as_str()] {
        if !secret.is_empty() && out.contains(secret) {
            out = Cow::Owned(out.replace(secret, MASK));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_masks_password_only() {
        let u = url::Url::parse("rtsp://admin:s%40cret@10.0.0.5:554/live").unwrap();
        assert_eq!(url(&u), "rtsp://admin:***@10.0.0.5:554/live");
        let plain = url::Url::parse("rtsp://10.0.0.5/live").unwrap();
        assert_eq!(url(&plain), "rtsp://10.0.0.5/live");
    }

    #[test]
    fn text_masks_raw_and_decoded_password() {
        let u = url::Url::parse("rtsp://admin:s%40cret@cam/live").unwrap();
        let msg = "Could not open rtsp://admin:s%40cret@cam/live (auth s@cret)";
        assert_eq!(
            text(&u, msg),
            "Could not open rtsp://admin:***@cam/live (auth ***)"
        );
    }
}
