//! A single `waggle dev` broker whose partition log lost its tail (torn
//! after a clean stop, as a disk that lied about a sync leaves it): it
//! refuses to start, naming what was lost and the override; with
//! `data.accept_data_loss` it starts, logging the loss.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    connect, deploy_one_task, free_port, http_get, runtime, spawn_waggle_logged, tear_log_tail,
    terminate_child, wait_exit, Broker, MAX_WAIT,
};
use node::gateway::proto;

/// Acknowledged instances created before the tail is torn.
const INSTANCES: usize = 20;
/// Bytes cut from the end of the log's valid data.
const CUT_BYTES: u64 = 600;
const SEGMENT_SIZE: (&str, &str) = ("WAGGLE_DATA_SEGMENT_SIZE_BYTES", "1048576");

/// `waggle dev` on free loopback ports: (environment, management port).
fn dev_env(extra: &[(&'static str, &str)]) -> (Vec<(&'static str, String)>, u16) {
    let management_port = free_port();
    let mut env = vec![
        ("WAGGLE_NETWORK_HOST", "127.0.0.1".to_string()),
        ("WAGGLE_NETWORK_GATEWAY_PORT", free_port().to_string()),
        (
            "WAGGLE_NETWORK_MANAGEMENT_PORT",
            management_port.to_string(),
        ),
        ("WAGGLE_NETWORK_INTERNAL_PORT", free_port().to_string()),
        ("WAGGLE_REST_PORT", free_port().to_string()),
        ("WAGGLE_RUNTIME_SHARDS", "1".to_string()),
        ("WAGGLE_RUNTIME_PIN_SHARDS", "false".to_string()),
        (SEGMENT_SIZE.0, SEGMENT_SIZE.1.to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    (env, management_port)
}

fn wait_ready(management_port: u16, log: &Path) {
    let start = Instant::now();
    while start.elapsed() < MAX_WAIT {
        if let Some((200, _)) = http_get(management_port, "/ready") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    panic!("the broker was not ready within {MAX_WAIT:?}:\n{text}");
}

/// The number after `before` in `text`.
fn number_after(text: &str, before: &str) -> Option<u64> {
    let rest = &text[text.find(before)? + before.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn a_single_replica_that_lost_committed_entries_refuses_to_start_unless_told_to_accept() {
    let broker = Broker::start_dev(&[(SEGMENT_SIZE.0, SEGMENT_SIZE.1.to_string())]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(&broker).await;
        deploy_one_task(&mut client).await;
        for i in 0..INSTANCES {
            client
                .create_process_instance(proto::CreateProcessInstanceRequest {
                    bpmn_process_id: "one_task".into(),
                    version: -1,
                    variables: format!(r#"{{"i": {i}}}"#),
                    ..Default::default()
                })
                .await
                .expect("create instance");
        }
    });
    let (status, dir) = broker.terminate_keeping_dir();
    assert!(status.success(), "clean stop: {status:?}");
    let log_dir = dir.path().join("data/partitions/1/log");
    let torn = tear_log_tail(&log_dir, CUT_BYTES);

    // Without the override: a non-zero exit naming the partition, the
    // directory, both indexes and the way out.
    let refused_log = dir.path().join("refused.log");
    let (env, _) = dev_env(&[]);
    let mut child = spawn_waggle_logged(dir.path(), &["dev"], &env, &refused_log);
    let status = wait_exit(&mut child);
    let text = std::fs::read_to_string(&refused_log).expect("log");
    assert!(!status.success(), "started despite the loss:\n{text}");
    let last = torn.last_kept_index;
    for needed in [
        "partition 1".to_string(),
        log_dir.display().to_string(),
        format!("ends at index {last}"),
        "data.accept_data_loss = true".to_string(),
        "WAGGLE_DATA_ACCEPT_DATA_LOSS=true".to_string(),
    ] {
        assert!(text.contains(&needed), "`{needed}` missing from:\n{text}");
    }
    let commit = number_after(&text, "persisted commit index is ").expect("commit index named");
    assert!(commit > last, "commit {commit}, last {last}:\n{text}");
    // The torn tail itself was reported, with the file and offset.
    let tail_warning = text
        .lines()
        .find(|l| l.contains("torn or damaged log tail"))
        .unwrap_or_else(|| panic!("no tail warning in:\n{text}"));
    assert!(tail_warning.contains("WARN"), "{tail_warning}");
    assert!(
        tail_warning.contains(&torn.segment.display().to_string())
            && tail_warning.contains(&format!("offset {}", torn.frame_offset)),
        "{tail_warning}\n{torn:?}"
    );

    // With the override: it starts, says at ERROR what was lost, counts
    // the dropped frames, and serves.
    let accepted_log = dir.path().join("accepted.log");
    let (env, management_port) = dev_env(&[("WAGGLE_DATA_ACCEPT_DATA_LOSS", "true")]);
    let mut child = spawn_waggle_logged(dir.path(), &["dev"], &env, &accepted_log);
    wait_ready(management_port, &accepted_log);
    let text = std::fs::read_to_string(&accepted_log).expect("log");
    let error = text
        .lines()
        .find(|l| l.contains("committed entries are lost; starting without them"))
        .unwrap_or_else(|| panic!("no loss reported in:\n{text}"));
    assert!(error.contains("ERROR"), "{error}");
    assert!(error.contains(&format!("ends at index {last}")), "{error}");
    let (_, metrics) = http_get(management_port, "/metrics").expect("metrics");
    let dropped = number_after(
        &metrics,
        "waggle_log_tail_frames_dropped_total{partition=\"1\"} ",
    );
    assert!(dropped.is_some_and(|n| n >= 1), "{metrics}");
    assert!(terminate_child(&mut child).success());

    // The loss was accepted once: the next start needs no override.
    let again_log = dir.path().join("again.log");
    let (env, management_port) = dev_env(&[]);
    let mut child = spawn_waggle_logged(dir.path(), &["dev"], &env, &again_log);
    wait_ready(management_port, &again_log);
    assert!(terminate_child(&mut child).success());
}

#[test]
fn a_clean_restart_reports_no_loss() {
    let broker = Broker::start_dev(&[(SEGMENT_SIZE.0, SEGMENT_SIZE.1.to_string())]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(&broker).await;
        deploy_one_task(&mut client).await;
    });
    let (status, dir) = broker.terminate_keeping_dir();
    assert!(status.success());
    let log = dir.path().join("restart.log");
    let (env, management_port) = dev_env(&[]);
    let mut child = spawn_waggle_logged(dir.path(), &["dev"], &env, &log);
    wait_ready(management_port, &log);
    let (_, metrics) = http_get(management_port, "/metrics").expect("metrics");
    assert!(
        metrics.contains("waggle_log_tail_frames_dropped_total{partition=\"1\"} 0"),
        "{metrics}"
    );
    assert!(terminate_child(&mut child).success());
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("torn or damaged"), "{text}");
    assert!(!text.contains("committed entries are lost"), "{text}");
}
