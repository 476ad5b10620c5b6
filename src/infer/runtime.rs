//! Finds and loads the OpenVINO C runtime (`libopenvino_c.so`) without a sourced environment
//! file, so a service manager can start the binary as it is.
//!
//! Input: the configured `inference.runtime` (a folder or the library file), the executable's
//! path and the working directory. Output: the library loaded (once per process) and its path,
//! or the list of places searched. Order: the configured path (only it, when given); the
//! variables the openvino crate reads (`OPENVINO_INSTALL_DIR`, `INTEL_OPENVINO_DIR`,
//! `LD_LIBRARY_PATH`, ...); beside the executable; `../lib/storetrack/openvino` from it (the
//! layout `deploy/install.sh` makes); `.venv/openvino-libs` in any folder above the executable
//! or in the working directory (what `scripts/setup.sh` makes).

use std::path::{Path, PathBuf};

/// The C API library the openvino crate loads.
pub const LIBRARY: &str = "libopenvino_c.so";
/// Where `deploy/install.sh` puts the runtime, relative to the binary's folder.
pub const INSTALLED_RUNTIME: &str = "../lib/storetrack/openvino";
/// Where `scripts/setup.sh` links the runtime, relative to the project folder.
pub const VENV_RUNTIME: &str = ".venv/openvino-libs";

/// Folders to search, in order, for the library (when nothing is configured).
pub fn search_folders(exe: Option<&Path>, cwd: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(dir) = exe.and_then(Path::parent) {
        out.push(dir.to_path_buf());
        out.push(dir.join(INSTALLED_RUNTIME));
        out.extend(dir.ancestors().map(|a| a.join(VENV_RUNTIME)));
    }
    if let Some(cwd) = cwd {
        out.push(cwd.join(VENV_RUNTIME));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// The library file in `dir` (`libopenvino_c.so`, or a versioned `libopenvino_c.so.N`).
fn library_in(dir: &Path) -> Option<PathBuf> {
    let exact = dir.join(LIBRARY);
    if exact.is_file() {
        return Some(exact);
    }
    let prefix = format!("{LIBRARY}.");
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    versioned.sort();
    versioned.pop()
}

/// Where the library is: the configured path, else the openvino crate's own search, else the
/// folders of [`search_folders`]. The error lists what was searched.
pub fn find(configured: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = configured {
        let found = if p.is_file() {
            Some(p.to_path_buf())
        } else {
            library_in(p)
        };
        return found.ok_or_else(|| format!("no {LIBRARY} in inference.runtime {}", p.display()));
    }
    if let Some(p) = openvino_sys::library::find() {
        return Ok(p);
    }
    let exe = std::env::current_exe().ok();
    let cwd = std::env::current_dir().ok();
    let folders = search_folders(exe.as_deref(), cwd.as_deref());
    folders.iter().find_map(|d| library_in(d)).ok_or_else(|| {
        let list: Vec<String> = folders.iter().map(|d| d.display().to_string()).collect();
        format!(
            "no {LIBRARY} via OPENVINO_INSTALL_DIR/LD_LIBRARY_PATH nor in {}",
            list.join(", ")
        )
    })
}

/// Finds and loads the library (a no-op once loaded).
pub fn load(configured: Option<&Path>) -> Result<PathBuf, String> {
    let path = find(configured)?;
    openvino_sys::library::load_from(path.clone())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::debug!(library = %path.display(), "OpenVINO runtime loaded.");
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_covers_beside_binary_install_layout_and_venvs() {
        let f = search_folders(
            Some(Path::new("/srv/app/target/release/storetrack")),
            Some(Path::new("/home/op")),
        );
        assert_eq!(f[0], Path::new("/srv/app/target/release"));
        assert_eq!(
            f[1],
            Path::new("/srv/app/target/release/../lib/storetrack/openvino")
        );
        assert!(f.contains(&PathBuf::from("/srv/app/.venv/openvino-libs")));
        assert_eq!(f.last().unwrap(), Path::new("/home/op/.venv/openvino-libs"));
        // A working directory inside the project adds nothing twice.
        let g = search_folders(
            Some(Path::new("/srv/app/target/release/storetrack")),
            Some(Path::new("/srv/app")),
        );
        assert_eq!(g.len(), f.len() - 1, "{g:?}");
    }

    #[test]
    fn versioned_library_is_found_and_configured_path_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            find(Some(dir.path()))
                .unwrap_err()
                .contains("inference.runtime")
        );
        std::fs::write(dir.path().join("libopenvino_c.so.2541"), b"").unwrap();
        assert_eq!(
            find(Some(dir.path())).unwrap(),
            dir.path().join("libopenvino_c.so.2541")
        );
    }
}
