//! `deploy/install.sh` into a staging tree (DESTDIR), then the installed layout used as it would
//! be on a box: the installed config passes `check-config`, and the installed binary runs two
//! simulated cameras with no OpenVINO variable in its environment, finding the runtime the
//! installer put beside it (`../lib/storetrack/openvino`), and stores points.

mod common;

use std::process::Command;

use storetrack::simcam::SimCam;

#[test]
fn the_staged_install_checks_its_config_and_runs_without_an_environment_file() {
    let video = common::video();
    let stage = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(common::root().join("deploy/install.sh"))
        .env("DESTDIR", stage.path())
        .env("BIN", env!("CARGO_BIN_EXE_storetrack"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "install.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let sim = SimCam::start(
        "127.0.0.1",
        0,
        &[("cam1".into(), video.clone()), ("cam2".into(), video)],
    )
    .unwrap();
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

    let clean_env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("STORETRACK_LOG", "warn");
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
