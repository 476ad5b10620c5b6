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
    fn the_host_name_is_read_trimmed() {
        let name = super::name().expect("a Linux host has a name");
        assert_eq!(name, name.trim());
        assert!(!name.contains('\n'));
    }
}
