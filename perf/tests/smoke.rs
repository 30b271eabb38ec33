//! Smoke run of the load scenarios: a few seconds each of `waggle-perf
//! scenario single` and `three-nodes` at a fixed low rate, against the
//! `waggle` binary of the same build. Asserts that instances complete
//! without errors and that the outputs carry their fields; never a timing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `waggle` binary beside `waggle-perf` (built here when missing), or
/// `$WAGGLE_BIN`.
fn waggle() -> PathBuf {
    if let Some(path) = std::env::var_os("WAGGLE_BIN") {
        return PathBuf::from(path);
    }
    let perf = PathBuf::from(env!("CARGO_BIN_EXE_waggle-perf"));
    let beside = perf.with_file_name("waggle");
    if !beside.is_file() {
        let release = perf
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "release");
        let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cargo.args(["build", "-p", "node", "--bin", "waggle"]);
        if release {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("run cargo build for waggle");
        assert!(status.success(), "building waggle failed");
    }
    assert!(beside.is_file(), "no waggle at {}", beside.display());
    beside
}

fn smoke(scenario: &str) {
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_waggle-perf"))
        .args(["scenario", scenario, "--fixed"])
        .args(["--rate", "100", "--duration-s", "3", "--drain-s", "20"])
        .args(["--warmup-s", "0", "--workers", "2"])
        .arg("--waggle")
        .arg(waggle())
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run waggle-perf");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "waggle-perf scenario {scenario} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("end to end"),
        "no percentile table:\n{stdout}"
    );

    let path = out.path().join(format!("{scenario}-scenario.json"));
    let text = std::fs::read_to_string(&path).expect("scenario JSON written");
    let summary: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let step = &summary["steps"][0]["summary"];
    let created = step["created"].as_u64().expect("created");
    let completed = step["completed"].as_u64().expect("completed");
    assert!(completed > 0, "no instance completed: {step}");
    assert_eq!(
        completed, created,
        "every created instance completes: {step}"
    );
    assert_eq!(step["errors"].as_u64(), Some(0), "errors: {step}");
    assert_eq!(
        step["backpressure"].as_u64(),
        Some(0),
        "backpressure at 100/s: {step}"
    );
    for histogram in ["create", "activation", "end_to_end"] {
        let h = &step[histogram];
        assert!(h["count"].as_u64().expect("count") > 0, "{histogram}: {h}");
        let (p50, p99, max) = (
            h["p50_us"].as_u64().expect("p50"),
            h["p99_us"].as_u64().expect("p99"),
            h["max_us"].as_u64().expect("max"),
        );
        assert!(
            p50 <= p99 && p99 <= max,
            "{histogram} percentiles ordered: {h}"
        );
    }
    assert!(step["job_mode"].is_string(), "job mode: {step}");
    assert!(summary["slo_p99_ms"].as_f64().is_some());
    for file in [
        "create.hgrm",
        "activation.hgrm",
        "e2e.hgrm",
        "latency.svg",
        "throughput.svg",
    ] {
        let path = out.path().join(format!("{scenario}-{file}"));
        let text = std::fs::read_to_string(&path).expect("output written");
        assert!(!text.is_empty(), "{} is empty", path.display());
    }
}

/// One test, so the two clusters do not share the cores at the same time.
#[test]
fn single_node_and_three_nodes_complete_instances() {
    smoke("single");
    smoke("three-nodes");
}
