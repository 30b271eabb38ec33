//! Smoke run of `waggle-perf`, a few seconds per part, against the `waggle`
//! binary of the same build: `scenario single` and `three-nodes` at a fixed
//! low rate, the relay against a direct round trip, and `etcd-compare` when
//! etcd is installed. Asserts that work completes without errors and that
//! the outputs carry their fields; timings only as ratios to a baseline
//! measured in the same run.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

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
        // The profile this test was built with, so the dependencies built
        // for it are reused (`test` writes to target/debug as well).
        cargo.args(["--profile", if release { "release" } else { "test" }]);
        let status = cargo.status().expect("run cargo build for waggle");
        assert!(status.success(), "building waggle failed");
    }
    assert!(beside.is_file(), "no waggle at {}", beside.display());
    beside
}

/// Runs `waggle-perf ARGS --waggle W --out OUT`, checks that it succeeded,
/// and returns what it printed on stdout.
fn run_perf(args: &[&str], out: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_waggle-perf"))
        .args(args)
        .arg("--waggle")
        .arg(waggle())
        .arg("--out")
        .arg(out)
        .output()
        .expect("run waggle-perf");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "waggle-perf {args:?} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

fn smoke(scenario: &str) {
    let out = tempfile::tempdir().expect("temp dir");
    let stdout = run_perf(
        &[
            "scenario",
            scenario,
            "--fixed",
            "--rate",
            "100",
            "--duration-s",
            "3",
            "--drain-s",
            "20",
            "--warmup-s",
            "0",
            "--workers",
            "2",
        ],
        out.path(),
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

/// The round trip of one datagram from `socket` to `to` and back.
fn round_trip(socket: &UdpSocket, to: std::net::SocketAddr) -> Option<Duration> {
    let mut buf = [0u8; 64];
    let started = std::time::Instant::now();
    socket.send_to(b"ping", to).ok()?;
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    (&buf[..len] == b"ping").then(|| started.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// `waggle-perf relay` between a client and a UDP echo server adds twice
/// its delay to the direct round trip measured in the same run.
fn relay_adds_its_delay() {
    const DELAY_MS: u64 = 20;
    const ROUND_TRIPS: usize = 20;
    let echo = UdpSocket::bind("127.0.0.1:0").expect("bind echo");
    echo.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let echo_addr = echo.local_addr().expect("echo address");
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        // Bounded: the direct and relayed round trips, and the probes.
        for _ in 0..4 * ROUND_TRIPS + 100 {
            let Ok((len, from)) = echo.recv_from(&mut buf) else {
                return;
            };
            let _ = echo.send_to(&buf[..len], from);
        }
    });
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut relay = Command::new(env!("CARGO_BIN_EXE_waggle-perf"))
        .args(["relay", "--listen", &listen, "--forward"])
        .arg(echo_addr.to_string())
        .args(["--delay-ms", &DELAY_MS.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start waggle-perf relay");
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind client");
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let relay_addr: std::net::SocketAddr = listen.parse().expect("address");
    // The relay is up once a probe comes back (at most 100 probes).
    let up = (0..100).any(|_| {
        round_trip(&client, relay_addr).is_some() || {
            std::thread::sleep(Duration::from_millis(50));
            false
        }
    });
    let direct: Vec<Duration> = (0..ROUND_TRIPS)
        .filter_map(|_| round_trip(&client, echo_addr))
        .collect();
    let relayed: Vec<Duration> = (0..ROUND_TRIPS)
        .filter_map(|_| round_trip(&client, relay_addr))
        .collect();
    let _ = relay.kill();
    let _ = relay.wait();
    drop(client);
    let _ = server.join();
    assert!(up, "the relay never answered");
    assert_eq!(direct.len(), ROUND_TRIPS, "direct round trips lost");
    assert_eq!(relayed.len(), ROUND_TRIPS, "relayed round trips lost");
    let (direct, relayed) = (median(direct), median(relayed));
    let configured = Duration::from_millis(2 * DELAY_MS);
    let added = relayed.saturating_sub(direct);
    let ratio = added.as_secs_f64() / configured.as_secs_f64();
    println!(
        "relay: direct round trip {direct:?}, relayed {relayed:?}; added / configured = {ratio:.2}"
    );
    // The delay line never releases a datagram early; far above the
    // configured delay (a loaded machine adds its scheduling delay) the
    // relay is broken.
    assert!(
        (0.95..4.0).contains(&ratio),
        "the relay added {added:?} to the direct {direct:?}, configured {configured:?}: ratio {ratio:.2}"
    );
}

/// The etcd binary on the PATH, if any.
fn etcd_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join("etcd").is_file())
}

/// `waggle-perf etcd-compare` for a few seconds at a low concurrency.
fn etcd_compare() {
    if !etcd_installed() {
        println!("skipping etcd-compare: etcd is not installed (apt-get install etcd-server)");
        return;
    }
    let out = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_waggle-perf"))
        .args(["etcd-compare", "--clients", "4", "--connections", "1"])
        .args([
            "--duration-s",
            "2",
            "--warmup-s",
            "0.5",
            "--value-bytes",
            "1024",
        ])
        .arg("--waggle")
        .arg(waggle())
        .arg("--out")
        .arg(out.path())
        .output()
        .expect("run waggle-perf etcd-compare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "waggle-perf etcd-compare failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("waggle / etcd"), "no ratios:\n{stdout}");
    let text = std::fs::read_to_string(out.path().join("etcd-compare.json")).expect("JSON written");
    let summary: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    for system in ["etcd", "waggle"] {
        let step = &summary[system]["steps"][0]["summary"];
        assert!(step["ok"].as_u64().expect("ok") > 0, "{system}: {step}");
        assert_eq!(step["errors"].as_u64(), Some(0), "{system}: {step}");
        assert_eq!(step["value_bytes"].as_u64(), Some(1024), "{system}: {step}");
        let l = &step["latency"];
        let (p50, p99, max) = (
            l["p50_us"].as_u64().expect("p50"),
            l["p99_us"].as_u64().expect("p99"),
            l["max_us"].as_u64().expect("max"),
        );
        assert!(0 < p50 && p50 <= p99 && p99 <= max, "{system}: {l}");
        let hgrm = std::fs::read_to_string(out.path().join(format!("etcd-compare-{system}.hgrm")))
            .expect("hgrm written");
        assert!(hgrm.contains("Total count"), "{system} hgrm:\n{hgrm}");
    }
    let ratios = &summary["ratios"];
    assert!(ratios["throughput"].as_f64().expect("throughput ratio") > 0.0);
    assert!(ratios["p99"].as_f64().expect("p99 ratio") > 0.0);
    for file in ["etcd-compare-latency.svg", "etcd-compare-steps.svg"] {
        let text = std::fs::read_to_string(out.path().join(file)).expect("plot written");
        assert!(text.contains("<svg"), "{file}");
    }
}

/// `waggle-perf restart` on a small log: the restarted broker answers
/// `/health` no later than `/ready`, serves afterwards, and the ratio to the
/// sequential read of its data is printed (no bound on it: timings only as
/// ratios, and a small log is dominated by fixed costs).
fn restart() {
    let out = tempfile::tempdir().expect("temp dir");
    let stdout = run_perf(
        &[
            "restart",
            "--data-gb",
            "0.02",
            "--instances",
            "300",
            "--no-drop-caches",
            "--in-flight",
            "8",
        ],
        out.path(),
    );
    assert!(stdout.contains("ready/read"), "no ratio printed:\n{stdout}");
    let text = std::fs::read_to_string(out.path().join("restart.json")).expect("JSON written");
    let runs: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let run = &runs[0];
    assert_eq!(run["instances"].as_u64(), Some(300), "{run}");
    assert!(
        run["data_bytes"].as_u64().expect("bytes") > 300 * 1000,
        "{run}"
    );
    let health = run["health_answer_s"].as_f64().expect("health");
    let ready = run["ready_s"].as_f64().expect("ready");
    let served = run["served_s"].as_f64().expect("served");
    assert!(health <= ready && ready <= served, "{run}");
    assert!(run["ratio"].as_f64().expect("ratio") > 0.0, "{run}");
}

/// `waggle-perf failover` with one kill: the killed leader's partitions serve
/// again (a gap is measured), every request is acknowledged, and the killed
/// node comes back (the round ends only when every partition has a leader
/// that every node agrees on).
fn failover() {
    let out = tempfile::tempdir().expect("temp dir");
    let stdout = run_perf(&["failover", "--kills", "1", "--rate", "50"], out.path());
    let text = std::fs::read_to_string(out.path().join("failover.json")).expect("JSON written");
    let run: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let round = &run["rounds"][0];
    assert!(round["gap_ms"].as_f64().expect("gap") > 0.0, "{run}");
    assert_eq!(round["failed"].as_u64(), Some(0), "{run}");
    assert_eq!(round["requests"].as_u64(), Some(250), "{run}");
    assert!(stdout.contains("| 1 |"), "no table printed:\n{stdout}");
}

/// One test, so the clusters never share the cores at the same time.
#[test]
fn scenarios_relay_and_etcd_compare() {
    relay_adds_its_delay();
    smoke("single");
    smoke("three-nodes");
    restart();
    failover();
    etcd_compare();
}
