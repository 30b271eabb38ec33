//! The `waggle` binary as an operator sees it: configuration errors, systemd
//! notification, management HTTP, the gateway's answers, and SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{run_waggle, Broker, MAX_WAIT};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;

/// Collects sd-notify datagrams until `want` has been seen (bounded).
fn wait_notify(socket: &UnixDatagram, seen: &mut Vec<String>, want: &str) {
    let start = Instant::now();
    let mut buf = vec![0u8; 4096];
    while start.elapsed() < MAX_WAIT {
        if seen.iter().any(|m| m.lines().any(|l| l.starts_with(want))) {
            return;
        }
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    panic!("no {want} notification within {MAX_WAIT:?}; got {seen:?}");
}

#[test]
fn dev_broker_notifies_serves_and_stops_cleanly() {
    let notify_dir = tempfile::tempdir().expect("temp dir");
    let socket_path = notify_dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let broker = Broker::start_dev(&[
        ("NOTIFY_SOCKET", socket_path.display().to_string()),
        ("WATCHDOG_USEC", "400000".to_string()),
    ]);
    let mut seen = Vec::new();
    wait_notify(&socket, &mut seen, "READY=1");
    wait_notify(&socket, &mut seen, "STATUS=partition 1:");
    wait_notify(&socket, &mut seen, "WATCHDOG=1");

    let (code, _) = broker.http_get("/startup").expect("startup answers");
    assert_eq!(code, 200);
    let (code, _) = broker.http_get("/health").expect("health answers");
    assert_eq!(code, 200);
    let (code, metrics) = broker.http_get("/metrics").expect("metrics answer");
    assert_eq!(code, 200);
    for family in [
        "waggle_partition_role",
        "waggle_commit_latency_seconds",
        "waggle_job_activation_latency_seconds",
    ] {
        assert!(metrics.contains(family), "{family} missing in {metrics}");
    }
    let (code, _) = broker
        .http_get("/nothing-here")
        .expect("unknown path answers");
    assert_eq!(code, 404);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = GatewayClient::connect(broker.gateway_uri())
            .await
            .expect("connect");
        let topology = client
            .topology(proto::TopologyRequest {})
            .await
            .expect("topology")
            .into_inner();
        assert_eq!(topology.cluster_size, 1);
        assert_eq!(topology.partitions_count, 1);
        assert_eq!(topology.brokers.len(), 1);
        assert_eq!(topology.brokers[0].port, i32::from(broker.gateway_port));
        assert_eq!(topology.brokers[0].partitions[0].partition_id, 1);

        let bad = client
            .create_process_instance(proto::CreateProcessInstanceRequest {
                bpmn_process_id: "p".into(),
                version: -1,
                variables: "[1, 2]".into(),
                ..Default::default()
            })
            .await
            .expect_err("variables must be an object");
        assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
        assert!(bad.message().contains("variables"), "{bad:?}");

        let blank = client
            .activate_jobs(proto::ActivateJobsRequest {
                r#type: " ".into(),
                worker: "w".into(),
                timeout: 1000,
                max_jobs_to_activate: 1,
                ..Default::default()
            })
            .await
            .expect_err("blank type");
        assert_eq!(blank.code(), tonic::Code::InvalidArgument, "{blank:?}");

        let nothing = client
            .evaluate_decision(proto::EvaluateDecisionRequest::default())
            .await
            .expect_err("neither key nor id");
        assert_eq!(nothing.code(), tonic::Code::InvalidArgument, "{nothing:?}");
        assert!(nothing.message().contains("decision id"), "{nothing:?}");
        let unknown = client
            .evaluate_decision(proto::EvaluateDecisionRequest {
                decision_id: "no_such_decision".into(),
                ..Default::default()
            })
            .await
            .expect_err("no such decision");
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
        assert!(
            unknown.message().contains("'no_such_decision'"),
            "{unknown:?}"
        );

        let no_instance = client
            .modify_process_instance(proto::ModifyProcessInstanceRequest::default())
            .await
            .expect_err("key 0 is no instance");
        assert_eq!(no_instance.code(), tonic::Code::NotFound);
        assert!(
            no_instance.message().contains("processInstanceKey"),
            "{no_instance:?}"
        );

        let unknown_partition = client
            .complete_job(proto::CompleteJobRequest {
                job_key: (7i64 << 51) + 1,
                variables: String::new(),
                result: None,
            })
            .await
            .expect_err("no partition 7");
        assert_eq!(
            unknown_partition.code(),
            tonic::Code::NotFound,
            "{unknown_partition:?}"
        );
    });
    drop(runtime);

    let status = broker.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    wait_notify(&socket, &mut seen, "STOPPING=1");
}

#[test]
fn cli_status_prints_the_topology() {
    let broker = Broker::start_dev(&[]);
    let (ok, stdout, stderr) = run_waggle(
        broker.dir.path(),
        &["status", "--address", &broker.gateway_uri()],
        &[],
    );
    assert!(ok, "{stderr}");
    let topology: serde_json::Value = serde_json::from_str(&stdout).expect("JSON topology");
    assert_eq!(topology["clusterSize"], 1);
    assert_eq!(topology["brokers"][0]["partitions"][0]["partitionId"], 1);
    let status = broker.terminate();
    assert!(status.success());
}

#[test]
fn a_second_broker_on_the_same_data_directory_is_refused() {
    let broker = Broker::start_dev(&[]);
    let (ok, _, stderr) = run_waggle(
        broker.dir.path(),
        &["dev"],
        &[
            (
                "WAGGLE_NETWORK_GATEWAY_PORT",
                common::free_port().to_string(),
            ),
            (
                "WAGGLE_NETWORK_MANAGEMENT_PORT",
                common::free_port().to_string(),
            ),
            ("WAGGLE_REST_PORT", common::free_port().to_string()),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("in use by another waggle process"),
        "{stderr}"
    );
    assert!(broker.terminate().success());
}

#[test]
fn configuration_errors_name_the_key_and_stop_start_up() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("waggle.toml");
    std::fs::write(&file, "[cluster]\nsize = 3\nnode_idd = 1\n").expect("write config");
    let path = file.display().to_string();
    let (ok, _, stderr) = run_waggle(dir.path(), &["broker", "--config", &path], &[]);
    assert!(!ok);
    assert!(stderr.contains("node_idd"), "{stderr}");

    std::fs::write(&file, "[cluster]\nsize = 3\n").expect("write config");
    let (ok, _, stderr) = run_waggle(
        dir.path(),
        &["broker", "--config", &path],
        &[("WAGGLE_CLUSTER_REPLICATION_FACTOR", "4".to_string())],
    );
    assert!(!ok);
    assert!(stderr.contains("cluster.replication_factor"), "{stderr}");

    let (ok, _, stderr) = run_waggle(
        dir.path(),
        &["dev"],
        &[("WAGGLE_DATA_DIRECTORYY", "x".to_string())],
    );
    assert!(!ok);
    assert!(stderr.contains("WAGGLE_DATA_DIRECTORYY"), "{stderr}");
}

#[test]
fn a_configuration_error_exits_with_ex_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("waggle.toml");
    std::fs::write(&file, "[log]\nlevel = \"loud\"\n").expect("write config");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_waggle"))
        .args(["broker", "--config", &file.display().to_string()])
        .current_dir(dir.path())
        .output()
        .expect("run waggle");
    // 78 is EX_CONFIG: the unit's RestartPreventExitStatus stops restarts.
    assert_eq!(output.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("log.level"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_event() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_waggle"))
        .arg("dev")
        .current_dir(dir.path())
        .env(
            "WAGGLE_NETWORK_GATEWAY_PORT",
            common::free_port().to_string(),
        )
        .env(
            "WAGGLE_NETWORK_MANAGEMENT_PORT",
            common::free_port().to_string(),
        )
        .env(
            "WAGGLE_NETWORK_INTERNAL_PORT",
            common::free_port().to_string(),
        )
        .env("WAGGLE_REST_PORT", common::free_port().to_string())
        .env("WAGGLE_RUNTIME_SHARDS", "1")
        .env("WAGGLE_RUNTIME_PIN_SHARDS", "false")
        .env("WAGGLE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start waggle dev");
    let start = Instant::now();
    let mut text = String::new();
    while start.elapsed() < MAX_WAIT && !text.contains("serving") {
        std::thread::sleep(Duration::from_millis(50));
        text = std::fs::read_to_string(&log).unwrap_or_default();
    }
    // SAFETY: kill with the PID of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("serving"), "{text}");
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(event["level"].is_string(), "{line}");
        assert!(event["fields"]["message"].is_string(), "{line}");
    }
}
