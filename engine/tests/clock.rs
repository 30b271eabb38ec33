//! FEEL's clock is the command's timestamp and the configured zone: the same
//! commands give the same state bytes whatever the host's wall clock and
//! `TZ`. Each run is a child process (this test binary again) with its own
//! `TZ`, started at a different wall-clock time.

mod common;
use ::engine::*;
use common::*;
use std::process::Command;

const CHILD: &str = "WAGGLE_CLOCK_TEST_CHILD";
/// 2024-02-29T23:30:00Z: a leap day, and already March 1st east of UTC.
const NOW_MS: i64 = 1_709_249_400_000;

fn temporal_process() -> String {
    let script = |id: &str, expr: &str, var: &str| {
        format!(
            r#"<bpmn:scriptTask id="{id}"><bpmn:extensionElements><zeebe:script expression="{expr}" resultVariable="{var}"/></bpmn:extensionElements></bpmn:scriptTask>"#
        )
    };
    bpmn(
        "clock",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}{}{}{}<bpmn:endEvent id="end"/>{}{}{}{}{}"#,
            script("now", "=string(now())", "now"),
            script("today", "=string(today())", "today"),
            script("later", "=string(date and time(&quot;2024-03-01T10:00:00&quot;) + duration(&quot;P1D&quot;))", "later"),
            service_task("task", "work", ""),
            flow("f1", "start", "now"),
            flow("f2", "now", "today"),
            flow("f3", "today", "later"),
            flow("f4", "later", "task"),
            flow("f5", "task", "end")
        ),
    )
}

/// Runs the scenario in `zone` and returns (variables, snapshot bytes).
fn scenario(zone: &str) -> (String, Vec<u8>) {
    let mut engine = Engine::new(1, 1);
    engine.set_time_zone(zone).unwrap();
    let mut h = Harness::with_engine(engine);
    h.now_ms = NOW_MS;
    h.deploy("clock.bpmn", &temporal_process()).unwrap();
    h.create("clock", "{}");
    let jobs = h.activate("work", 1);
    assert_eq!(jobs.len(), 1, "{:?}", h.incidents());
    (jobs[0].job.variables.clone(), h.engine.snapshot())
}

#[test]
fn child_scenario() {
    let Ok(zone) = std::env::var(CHILD) else {
        return; // only run as a child of the test below
    };
    let (vars, snapshot) = scenario(&zone);
    let hex: String = snapshot.iter().map(|b| format!("{b:02x}")).collect();
    println!("\nVARS {vars}");
    println!("STATE {hex}");
}

fn run_child(host_tz: &str, zone: &str) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_scenario",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, zone)
        .env("TZ", host_tz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let line = |tag: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(tag))
            .unwrap_or_else(|| panic!("no {tag} in {text}"))
            .to_string()
    };
    (line("VARS "), line("STATE "))
}

#[test]
fn state_bytes_do_not_depend_on_the_host_clock_or_time_zone() {
    let (utc_vars, utc_state) = run_child("UTC", "UTC");
    let vars: serde_json::Value = serde_json::from_str(&utc_vars).unwrap();
    assert!(
        vars["now"]
            .as_str()
            .unwrap()
            .starts_with("2024-02-29T23:30:00"),
        "{vars}"
    );
    assert_eq!(vars["today"], "2024-02-29", "{vars}");
    assert_eq!(vars["later"], "2024-03-02T10:00:00", "{vars}");
    for host_tz in ["Asia/Kolkata", "America/Los_Angeles", "Pacific/Kiritimati"] {
        // A different wall-clock time for each run as well.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (v, state) = run_child(host_tz, "UTC");
        assert_eq!(v, utc_vars, "TZ={host_tz}");
        assert!(state == utc_state, "TZ={host_tz}: the state bytes differ");
    }
    // The configured zone is what changes `now()` and `today()`.
    let (berlin, berlin_state) = run_child("UTC", "Europe/Berlin");
    let vars: serde_json::Value = serde_json::from_str(&berlin).unwrap();
    assert_eq!(vars["today"], "2024-03-01", "{vars}");
    assert!(
        vars["now"]
            .as_str()
            .unwrap()
            .starts_with("2024-03-01T00:30:00"),
        "{vars}"
    );
    assert_ne!(berlin_state, utc_state);
    let (again, again_state) = run_child("Asia/Tokyo", "Europe/Berlin");
    assert_eq!((again, again_state), (berlin, berlin_state));
}
