//! This machine's host name, read in one place: the run rows record it, MQTT client ids and
//! default topics carry it, and the jitter seeds of boxes sharing a server mix it in.

/// Where Linux keeps the host name.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// The host name, trimmed (None when it cannot be read or is empty).
pub fn name() -> Option<String> {
    let name = std::fs::read_to_string(HOSTNAME_FILE).ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_host_name_is_the_kernel_s() {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer outlives the call and its length is passed.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        assert_eq!(rc, 0);
        let end = buf.iter().position(|&b| b == 0).unwrap();
        let kernel = std::str::from_utf8(&buf[..end]).unwrap();
        assert_eq!(super::name().as_deref(), Some(kernel));
    }
}
