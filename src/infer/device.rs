//! Device string resolution against what OpenVINO reports as available.
//!
//! Input: the configured device (`CPU`, `GPU`, `AUTO`, `AUTO:GPU,CPU`, `MULTI:GPU,CPU`, …) and
//! `Core::available_devices()`. Output: the device string to compile for, with the physical
//! devices it uses, plus a note when a virtual device had to drop absent members — or an error
//! naming what was asked and what exists.

/// The device to compile for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedDevice {
    /// Device string for `compile_model`.
    pub name: String,
    /// Physical devices involved (properties such as the performance hint are set on each).
    pub physical: Vec<String>,
    /// Members of a MULTI/AUTO list that are not present on this machine (dropped).
    pub dropped: Vec<String>,
}

/// Why a device string cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A plain device that is not present.
    #[error(
        "inference.device {requested:?} is not available on this machine (available: {available})"
    )]
    NotAvailable {
        /// What the config asked for.
        requested: String,
        /// What OpenVINO reports, comma-separated.
        available: String,
    },
    /// A MULTI/AUTO list none of whose members is present.
    #[error(
        "inference.device {requested:?}: none of its devices is available (available: {available})"
    )]
    NoneAvailable {
        /// What the config asked for.
        requested: String,
        /// What OpenVINO reports, comma-separated.
        available: String,
    },
    /// Syntax error in the device string.
    #[error(
        "inference.device {0:?} is malformed: expected CPU, GPU, AUTO, AUTO:<list> or MULTI:<list>"
    )]
    Malformed(String),
}

/// `GPU` matches `GPU`, `GPU.0`, `GPU.1`…; `GPU.1` matches only itself.
fn present<'a>(want: &str, available: &'a [String]) -> Vec<&'a String> {
    available
        .iter()
        .filter(|a| {
            a.as_str() == want
                || (!want.contains('.') && a.split_once('.').is_some_and(|(base, _)| base == want))
        })
        .collect()
}

/// Resolves `requested` against `available` (see the module doc).
pub fn resolve(requested: &str, available: &[String]) -> Result<ResolvedDevice, DeviceError> {
    let req = requested.trim();
    let (virt, members) = match req.split_once(':') {
        Some((v, list)) => (Some(v.to_ascii_uppercase()), Some(list)),
        None if req.eq_ignore_ascii_case("AUTO") || req.eq_ignore_ascii_case("MULTI") => {
            (Some(req.to_ascii_uppercase()), None)
        }
        None => (None, None),
    };
    match (virt, members) {
        (None, _) => resolve_one(requested, available),
        (Some(v), list) if v == "AUTO" || v == "MULTI" => {
            resolve_virtual(requested, &v, list, available)
        }
        _ => Err(DeviceError::Malformed(requested.into())),
    }
}

/// One device by name (`CPU`, `GPU.1`): it must be present.
fn resolve_one(requested: &str, available: &[String]) -> Result<ResolvedDevice, DeviceError> {
    let req = requested.trim();
    if !valid_name(req) {
        return Err(DeviceError::Malformed(requested.into()));
    }
    let name = req.to_ascii_uppercase();
    if present(&name, available).is_empty() {
        return Err(DeviceError::NotAvailable {
            requested: requested.into(),
            available: available_list(available),
        });
    }
    Ok(ResolvedDevice {
        physical: vec![name.clone()],
        name,
        dropped: vec![],
    })
}

/// `AUTO` or `MULTI` (`virt`) over the devices in `list` (comma-separated; every available one
/// when there is no list): the absent ones dropped, at least one kept.
fn resolve_virtual(
    requested: &str,
    virt: &str,
    list: Option<&str>,
    available: &[String],
) -> Result<ResolvedDevice, DeviceError> {
    let wanted: Vec<String> = match list {
        Some(l) => l
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .collect(),
        None => available.to_vec(),
    };
    if wanted.iter().any(|w| !valid_name(w)) {
        return Err(DeviceError::Malformed(requested.into()));
    }
    let (kept, dropped): (Vec<String>, Vec<String>) = wanted
        .into_iter()
        .partition(|w| !present(w, available).is_empty());
    if kept.is_empty() {
        return Err(DeviceError::NoneAvailable {
            requested: requested.into(),
            available: available_list(available),
        });
    }
    // MULTI over a single device is that device with extra overhead.
    let name = if virt == "MULTI" && kept.len() == 1 {
        kept[0].clone()
    } else {
        format!("{virt}:{}", kept.join(","))
    };
    Ok(ResolvedDevice {
        name,
        physical: kept,
        dropped,
    })
}

/// A device name: letters, digits, `.` and `_`, not empty.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
}

/// The available devices for an error message (`none` when there are none).
fn available_list(available: &[String]) -> String {
    if available.is_empty() {
        "none".to_string()
    } else {
        available.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu_only() -> Vec<String> {
        vec!["CPU".to_string()]
    }

    #[test]
    fn plain_cpu_resolves_and_gpu_fails_clearly() {
        assert_eq!(resolve("cpu", &cpu_only()).unwrap().name, "CPU");
        let e = resolve("GPU", &cpu_only()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "inference.device \"GPU\" is not available on this machine (available: CPU)"
        );
    }

    #[test]
    fn multi_drops_absent_gpu_and_falls_back_to_cpu() {
        let r = resolve("MULTI:GPU,CPU", &cpu_only()).unwrap();
        assert_eq!(r.name, "CPU");
        assert_eq!(r.dropped, vec!["GPU"]);
        let r = resolve("AUTO:GPU,CPU", &cpu_only()).unwrap();
        assert_eq!(r.name, "AUTO:CPU");
        let r = resolve("AUTO", &cpu_only()).unwrap();
        assert_eq!(r.name, "AUTO:CPU");
        assert!(r.dropped.is_empty());
    }

    #[test]
    fn multi_keeps_indexed_gpus() {
        let avail = vec!["CPU".into(), "GPU.0".into(), "GPU.1".into()];
        let r = resolve("MULTI:GPU,CPU", &avail).unwrap();
        assert_eq!(r.name, "MULTI:GPU,CPU");
        assert!(resolve("GPU.1", &avail).is_ok());
        assert!(resolve("GPU.2", &avail).is_err());
    }

    #[test]
    fn none_available_and_malformed() {
        assert!(matches!(
            resolve("MULTI:GPU,NPU", &cpu_only()),
            Err(DeviceError::NoneAvailable { .. })
        ));
        assert!(matches!(
            resolve("HETERO:GPU,CPU", &cpu_only()),
            Err(DeviceError::Malformed(_))
        ));
        assert!(matches!(
            resolve("C P U", &cpu_only()),
            Err(DeviceError::Malformed(_))
        ));
    }
}
