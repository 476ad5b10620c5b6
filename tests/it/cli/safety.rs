//! Input a user or another program controls, through the real binary: read commands with
//! only `[storage]` resolvable, times and bucket counts out of range, pictures too large,
//! output paths that are not pictures, read-only and newer databases, the remaining
//! `check-config` gaps, and secrets in config errors. Each case exits non-zero with a one-line
//! error (never a panic), or works where it used to fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use rusqlite::Connection;
use storetrack::store::Store;

use super::{common, error_lines, stderr, storetrack};

/// A database with one camera and one ended track, written by the real store.
fn db_in(dir: &Path) -> PathBuf {
    let path = dir.join("tracks.db");
    let store = Store::open(&path).unwrap();
    store
        .connection()
        .execute_batch(
            "INSERT INTO cameras VALUES ('cam1', 'c', 'rtsp://x', 0);
             INSERT INTO tracks(camera, first_ms, last_ms, points, ended)
               VALUES ('cam1', 1000, 2000, 0, 1);",
        )
        .unwrap();
    path
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `query`, `render` and `reload` validated the whole config and so needed every camera
/// password in the caller's environment.
#[test]
fn read_commands_need_only_the_storage_table() {
    let dir = tempfile::tempdir().unwrap();
    db_in(dir.path());
    let cfg = common::write_config(
        dir.path(),
        &["rtsp://viewer:${ST_SAFETY_UNSET_PW}@10.0.0.5/x".into()],
        "[api]\nlisten = \"0.0.0.0:9464\"\ntoken_env = \"ST_SAFETY_UNSET_TOKEN\"\n\
         [floor]\nwidth = 10\nheight = 5\n",
    );
    let c = cfg.to_str().unwrap();
    let out = ok(&storetrack(&[
        "query", "-c", c, "--format", "csv", "tracks",
    ]));
    assert!(out.lines().nth(1).unwrap().contains(",cam1,"), "{out}");
    let png = dir.path().join("floor.png");
    let args = [
        "render",
        "-c",
        c,
        "--from",
        "0",
        "--out",
        png.to_str().unwrap(),
    ];
    ok(&storetrack(&args));
    // reload checks all but the secrets' values, then looks for the service.
    let e = error_lines(&storetrack(&["reload", "-c", c]));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(!e[0].contains("ST_SAFETY_UNSET"), "{e:?}");
    assert!(e[0].contains("no storetrack service is running"), "{e:?}");
}

/// `--from 584000000000y` panicked (exit 101), `999999999y` wrapped around to no rows,
/// 253402300800000 panicked when printed, `visitors --from 0 --bucket 1s` aborted on a 4 GB
/// allocation.
#[test]
fn times_and_buckets_out_of_range_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path());
    let d = db.to_str().unwrap();
    for from in ["584000000000y", "999999999y", "253402300800000", "-5"] {
        let o = storetrack(&["query", "--db", d, "tracks", &format!("--from={from}")]);
        assert_eq!(o.status.code(), Some(1), "{from}: {}", stderr(&o));
        let e = error_lines(&o);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains(&format!("time {from:?}: out of range")),
            "{e:?}"
        );
    }
    let o = storetrack(&[
        "query", "--db", d, "visitors", "--from", "0", "--to", "1h", "--bucket", "1s",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = error_lines(&o);
    assert!(e[0].contains("buckets; at most 100000"), "{e:?}");
    // A corrupt time in a row prints as a number instead of panicking.
    Connection::open(&db)
        .unwrap()
        .execute("UPDATE tracks SET last_ms = 253402300800000", [])
        .unwrap();
    let out = ok(&storetrack(&[
        "query", "--db", d, "--format", "csv", "tracks",
    ]));
    assert!(out.contains("253402300800000"), "{out}");
    let o = storetrack(&["query", "--db", d, "tracks", "--limit", "-1"]);
    assert_eq!(o.status.code(), Some(2), "clap refuses it: {}", stderr(&o));
}

/// A 10000 x 10000 m floor passed check-config and made render ask for 300 GB; `scale =
/// 1e12` made it hang.
#[test]
fn pictures_too_large_are_refused_by_check_config_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path());
    for floor in [
        "width = 10000\nheight = 10000\n",
        "width = 10\nheight = 5\nscale = 1e12\n",
    ] {
        let cfg = common::write_config(
            dir.path(),
            &["rtsp://127.0.0.1:1/x".into()],
            &format!("[floor]\n{floor}"),
        );
        let c = cfg.to_str().unwrap();
        let e = error_lines(&storetrack(&["check-config", "-c", c]));
        assert!(e[0].contains("the drawn plan would be"), "{e:?}");
        assert!(e[0].contains("at most 8192 px a side"), "{e:?}");
        let out = dir.path().join("big.png");
        let o = storetrack(&[
            "render",
            "-c",
            c,
            "--db",
            db.to_str().unwrap(),
            "--from",
            "0",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            error_lines(&o)[0].contains("at most 8192 px a side"),
            "{}",
            stderr(&o)
        );
        assert!(!out.exists());
    }
}

/// `render --out` followed symlinks and overwrote any file, not atomically, with mode 0644.
#[test]
fn render_output_replaces_only_png_files_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path());
    let cfg = common::write_config(
        dir.path(),
        &["rtsp://127.0.0.1:1/x".into()],
        "[floor]\nwidth = 10\nheight = 5\n",
    );
    let render = |out: &Path| {
        storetrack(&[
            "render",
            "-c",
            cfg.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--from",
            "0",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "keep me\n").unwrap();
    let e = error_lines(&render(&notes));
    assert!(
        e[0].ends_with("notes.txt: exists and is not a PNG file; nothing written"),
        "{e:?}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me\n");
    let link = dir.path().join("link.png");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    let e = error_lines(&render(&link));
    assert!(
        e[0].ends_with("link.png: is a symbolic link; nothing written"),
        "{e:?}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me\n");
    let png = dir.path().join("floor.png");
    ok(&render(&png));
    ok(&render(&png));
    let mode = std::fs::metadata(&png).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "a picture of where people walked is the owner's"
    );
    image::open(&png).unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A reader of a database in a folder it cannot write failed (SQLite cannot create the
/// `-shm` file of a WAL database); now it reads the file immutable. Needs a user other than
/// root (root writes anywhere): run through `setpriv` as `nobody` when root.
#[test]
fn a_database_in_a_read_only_folder_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let bin = env!("CARGO_BIN_EXE_storetrack");
    let args = [
        "query",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "csv",
        "tracks",
    ];
    let o = if unsafe { libc::geteuid() } == 0 {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", bin])
            .args(args)
            .env("STORETRACK_LOG", "warn")
            .output()
            .unwrap()
    } else {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        Command::new(bin).args(args).output().unwrap()
    };
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = ok(&o);
    assert!(out.lines().nth(1).unwrap().contains(",cam1,"), "{out}");
    assert!(!dir.path().join("tracks.db-shm").exists());
}

/// Readers accepted a file of a newer schema silently.
#[test]
fn a_newer_schema_is_refused_by_readers() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_in(dir.path());
    Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let e = error_lines(&storetrack(&[
        "query",
        "--db",
        db.to_str().unwrap(),
        "summary",
    ]));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("database schema version 99 is newer than this storetrack reads"),
        "{e:?}"
    );
}

/// check-config accepted an all-zero homography, `stall_timeout_ms = 2^64 - 1`, a missing
/// model file and control characters in names.
#[test]
fn check_config_refuses_the_remaining_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(dir.path(), &["rtsp://127.0.0.1:1/x".into()], "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replacen(
            "url =",
            "name = \"Door\\u001b]0;pwned\\u0007\"\nhomography = [0, 0, 0, 0, 0, 0, 0, 0, 0]\nurl =",
            1,
        )
        .replace("retry_interval_ms = 500", "retry_interval_ms = 500\nstall_timeout_ms = 18446744073709551615")
        .replace("models/ssdlite.toml", "models/none.toml");
    std::fs::write(&cfg, text).unwrap();
    let o = storetrack(&["check-config", "-c", cfg.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    for want in [
        "camera \"cam1\": name contains the control character U+001B",
        "camera \"cam1\": homography is singular",
        "ingest.stall_timeout_ms must be from 1000 to 3600000",
        "model.description: ",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(
        !err.contains('\u{1b}'),
        "the escape reached the terminal: {err:?}"
    );
}

/// Two config errors echoed secrets: an endpoint URL with userinfo, and a `${NAME}` value in
/// a key of another type.
#[test]
fn config_errors_never_echo_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(
        dir.path(),
        &["rtsp://127.0.0.1:1/x".into()],
        "[inference]\nbackend = \"kserve\"\nmodel = \"m\"\nendpoints = [\"grpc://admin:literal-pw-42@h:1\"]\n",
    );
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "retry_interval_ms = 500",
        "retry_interval_ms = 500\nlatency_ms = \"${ST_SAFETY_PW}\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_storetrack"))
        .args(["check-config", "-c", cfg.to_str().unwrap()])
        .env("ST_SAFETY_PW", "env-secret-77")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.contains("invalid type"), "{err}");
    assert!(!err.contains("env-secret-77"), "{err}");
    // Fixed the type: now the endpoint is checked.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("latency_ms = \"${ST_SAFETY_PW}\"", "latency_ms = 100");
    std::fs::write(&cfg, text).unwrap();
    let err = stderr(&storetrack(&["check-config", "-c", cfg.to_str().unwrap()]));
    assert!(
        err.contains("credentials in the endpoint are not supported"),
        "{err}"
    );
    assert!(!err.contains("literal-pw-42"), "{err}");
}
