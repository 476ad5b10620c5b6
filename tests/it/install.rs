//! `deploy/install.sh` into a staging tree (DESTDIR), then the installed layout used as it would
//! be on a box: the installed config passes `check-config` with the API token the installer
//! generated, and the installed binary runs two simulated cameras with no OpenVINO variable in
//! its environment, finding the runtime the installer put beside it
//! (`../lib/storetrack/openvino`), and stores points. A second install replaces every file by
//! a rename, never in place, so a running service keeps the libraries it has mapped.

use crate::common;

use std::path::Path;
use std::process::Command;

fn install(stage: &Path) {
    let out = Command::new("bash")
        .arg(common::root().join("deploy/install.sh"))
        .env("DESTDIR", stage)
        .env("BIN", env!("CARGO_BIN_EXE_storetrack"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The token the installer wrote into the secrets file.
fn token(stage: &Path) -> String {
    let env = std::fs::read_to_string(stage.join("etc/storetrack/storetrack.env")).unwrap();
    env.lines()
        .find_map(|l| l.strip_prefix("STORETRACK_API_TOKEN="))
        .expect("no generated token")
        .to_string()
}

/// Files the installer writes that a running service may hold open or mapped.
const LIVE_FILES: &[&str] = &[
    "usr/local/bin/storetrack",
    "usr/local/lib/storetrack/openvino/libopenvino_c.so",
    "usr/local/lib/storetrack/openvino/libopenvino_intel_cpu_plugin.so",
    "usr/local/share/storetrack/models/ssdlite/ssdlite.bin",
];

/// `install.sh` copied the OpenVINO runtime over the installed one in place, while the service
/// may have it mapped (SIGBUS); and generated no token, so the API was open to every local
/// account.
#[test]
fn a_second_install_replaces_files_by_rename_and_keeps_the_token() {
    use std::os::unix::fs::MetadataExt;
    let stage = tempfile::tempdir().unwrap();
    install(stage.path());
    let first = token(stage.path());
    assert_eq!(first.len(), 64, "{first}");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
    let held: Vec<(std::fs::File, u64, Vec<u8>)> = LIVE_FILES
        .iter()
        .map(|f| {
            let path = stage.path().join(f);
            let bytes = std::fs::read(&path).unwrap();
            let file = std::fs::File::open(&path).unwrap();
            let ino = file.metadata().unwrap().ino();
            (file, ino, bytes)
        })
        .collect();
    install(stage.path());
    for ((file, ino, bytes), name) in held.into_iter().zip(LIVE_FILES) {
        let now = std::fs::metadata(stage.path().join(name)).unwrap().ino();
        assert_ne!(now, ino, "{name} was rewritten in place");
        let mut again = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut again).unwrap();
        assert!(
            again == bytes,
            "{name}: the open file changed under its reader"
        );
    }
    assert_eq!(token(stage.path()), first, "the token is kept");
    let config = std::fs::read_to_string(stage.path().join("etc/storetrack/config.toml")).unwrap();
    assert!(
        config.contains("\ntoken_env = \"STORETRACK_API_TOKEN\""),
        "{config}"
    );
    let lib = stage.path().join("usr/local/lib/storetrack");
    let names: Vec<String> = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "the link and one runtime folder: {names:?}");
}

#[test]
fn the_staged_install_checks_its_config_and_runs_without_an_environment_file() {
    let stage = tempfile::tempdir().unwrap();
    install(stage.path());
    let bin = stage.path().join("usr/local/bin/storetrack");
    assert!(bin.is_file());
    assert!(
        stage
            .path()
            .join("usr/local/lib/storetrack/openvino/libopenvino_c.so")
            .exists()
    );
    let env_file = stage.path().join("etc/storetrack/storetrack.env");
    let mode = std::os::unix::fs::PermissionsExt::mode(&env_file.metadata().unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "secrets file mode");

    // The installed config with its absolute paths moved into the staging tree and its
    // cameras pointed at the simulator.
    let sim = common::two_cameras();
    let installed =
        std::fs::read_to_string(stage.path().join("etc/storetrack/config.toml")).unwrap();
    let root = stage.path().display().to_string();
    let mut cfg = installed
        .replace("/usr/local/share", &format!("{root}/usr/local/share"))
        .replace("/var/lib/storetrack", &root)
        .replace("127.0.0.1:9464", "127.0.0.1:0");
    for cam in ["cam1", "cam2"] {
        cfg = cfg.replace(&format!("rtsp://127.0.0.1:8554/{cam}"), &sim.url(cam));
    }
    let cfg_path = stage.path().join("config.toml");
    std::fs::write(&cfg_path, cfg).unwrap();

    let token = token(stage.path());
    let clean_env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("STORETRACK_LOG", "warn")
            .env("STORETRACK_API_TOKEN", &token);
    };
    let mut check = Command::new(&bin);
    clean_env(&mut check);
    let out = check
        .args(["check-config", "-c", cfg_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "installed config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut run = Command::new(&bin);
    clean_env(&mut run);
    let out = run
        .args(["run", "-c", cfg_path.to_str().unwrap(), "--duration", "8s"])
        .args(["--progress", "0s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "installed binary: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let points: u64 = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("points stored"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no points line: {stdout}"));
    assert!(points > 0, "{stdout}");
}
