//! The INT8 accuracy gate (`scripts/quantize.py gate`) must reject a model whose boxes are wrong:
//! a copy of the FP32 IR with every weight tensor scaled by N(1, 0.1) noise fails it, while the
//! FP32 IR itself (same frames, same run) passes with F1 = 1.

use crate::common;

use std::process::Command;

#[test]
fn quantize_gate_fails_on_a_perturbed_model() {
    common::video();
    let root = common::root();
    let python = root.join(".venv/bin/python");
    let script = root.join("scripts/quantize.py");
    let fp32 = root.join("models/ssdlite/ssdlite.xml");
    assert!(
        fp32.is_file(),
        "{} missing: run scripts/setup.sh",
        fp32.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.xml");

    let out = Command::new(&python)
        .arg(&script)
        .args(["perturb", "--ir"])
        .arg(&fp32)
        .arg("--output")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "perturb: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Twelve held-back frames keep the run short; the sample scene has several people in each.
    let out = Command::new(&python)
        .arg(&script)
        .args(["gate", "--frames", "12", "--candidate"])
        .arg(&fp32)
        .arg(&broken)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("gate:")).collect();
    assert_eq!(lines.len(), 2, "one gate line per candidate: {stdout}");
    assert!(lines[0].contains("F1 1.000") && lines[0].ends_with("-> PASS (F1 >= 0.95)"));
    assert!(lines[1].starts_with("gate: broken.xml") && lines[1].contains("-> FAIL"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failing candidate fails the gate"
    );
}
