//! The JSON-lines exporter through a real `waggle dev`: every record of every
//! acknowledged instance reaches the file, also across a SIGKILL; the lag is a
//! metric; a stalled exporter makes the partition refuse new work instead of
//! growing without bound, and catches up once it can write.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{connect, deploy_one_task, runtime, Broker};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use tonic::transport::Channel;

async fn create(client: &mut GatewayClient<Channel>) -> Result<i64, tonic::Status> {
    client
        .create_process_instance(proto::CreateProcessInstanceRequest {
            bpmn_process_id: "one_task".into(),
            version: -1,
            variables: r#"{"amount": 12}"#.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().process_instance_key)
}

/// Activates and completes jobs until `n` were completed (bounded in time).
async fn complete_jobs(client: &mut GatewayClient<Channel>, n: usize) {
    let mut done = 0;
    let start = Instant::now();
    while done < n && start.elapsed() < Duration::from_secs(60) {
        let mut stream = client
            .activate_jobs(proto::ActivateJobsRequest {
                r#type: "work".into(),
                worker: "w".into(),
                timeout: 30_000,
                max_jobs_to_activate: 100,
                request_timeout: 1_000,
                ..Default::default()
            })
            .await
            .expect("activate")
            .into_inner();
        while let Some(batch) = stream.message().await.expect("batch") {
            for job in batch.jobs {
                client
                    .complete_job(proto::CompleteJobRequest {
                        job_key: job.key,
                        variables: String::new(),
                        result: None,
                    })
                    .await
                    .expect("complete");
                done += 1;
            }
        }
    }
    assert_eq!(done, n, "every job completed");
}

/// Instances whose process completed, according to the exported records.
fn completed_in_export(broker: &Broker) -> BTreeSet<i64> {
    let path = broker.data_dir().join("exports/partition-1.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    // The writer may be in the middle of a line: read only complete ones.
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    let mut done = BTreeSet::new();
    for line in complete.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
        assert_eq!(v["partitionId"], 1, "{line}");
        let record = &v["record"];
        let value = &record["value"]["ProcessInstance"];
        if record["intent"] == "ElementCompleted" && value["bpmn_element_type"] == "Process" {
            done.insert(value["process_instance_key"].as_i64().expect("key"));
        }
    }
    done
}

fn wait_exported(broker: &Broker, want: &BTreeSet<i64>) -> BTreeSet<i64> {
    let start = Instant::now();
    loop {
        let have = completed_in_export(broker);
        if want.is_subset(&have) || start.elapsed() > Duration::from_secs(30) {
            return have;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn exporter_lag(broker: &Broker) -> Option<i64> {
    let (_, text) = broker.http_get("/metrics")?;
    text.lines()
        .find(|l| l.starts_with("waggle_exporter_lag_records{partition=\"1\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn every_acknowledged_instance_is_exported_across_a_kill() {
    let env = [("WAGGLE_EXPORTER_ENABLED", "true".to_string())];
    let broker = Broker::start_dev(&env);
    let rt = runtime();
    let first: BTreeSet<i64> = rt.block_on(async {
        let mut c = connect(&broker).await;
        deploy_one_task(&mut c).await;
        let mut keys = BTreeSet::new();
        for _ in 0..30 {
            keys.insert(create(&mut c).await.expect("create"));
        }
        complete_jobs(&mut c, 30).await;
        keys
    });
    let exported = wait_exported(&broker, &first);
    assert!(
        first.is_subset(&exported),
        "missing: {:?}",
        first.difference(&exported)
    );
    // The exported position reaches the log: the lag drains to zero.
    let start = Instant::now();
    while exporter_lag(&broker) != Some(0) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(exporter_lag(&broker), Some(0));

    // Instances acknowledged and completed right before a SIGKILL are
    // exported after the restart (at least once).
    let second: BTreeSet<i64> = rt.block_on(async {
        let mut c = connect(&broker).await;
        let mut keys = BTreeSet::new();
        for _ in 0..20 {
            keys.insert(create(&mut c).await.expect("create"));
        }
        complete_jobs(&mut c, 20).await;
        keys
    });
    let dir = broker.kill_keeping_dir();
    let broker = Broker::start_dev_in(dir, &env);
    let exported = wait_exported(&broker, &second);
    assert!(
        second.is_subset(&exported),
        "missing after restart: {:?}",
        second.difference(&exported)
    );
    assert!(broker.terminate().success());
}

#[test]
fn a_stalled_exporter_is_bounded_and_visible() {
    let dir = tempfile::tempdir().expect("dir");
    // The exporter cannot open its file: a directory stands in its place.
    let exports = dir.path().join("stalled");
    std::fs::create_dir_all(exports.join("partition-1.jsonl")).expect("blocker");
    let env = [
        ("WAGGLE_EXPORTER_ENABLED", "true".to_string()),
        ("WAGGLE_EXPORTER_DIRECTORY", exports.display().to_string()),
        ("WAGGLE_EXPORTER_MAX_LAG_RECORDS", "50".to_string()),
    ];
    let broker = Broker::start_dev(&env);
    let refused = runtime().block_on(async {
        let mut c = connect(&broker).await;
        deploy_one_task(&mut c).await;
        for _ in 0..200 {
            if let Err(status) = create(&mut c).await {
                return Some(status);
            }
        }
        None
    });
    let status = refused.expect("creation refused once the exporter lags");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("exporter.max_lag_records"),
        "{status:?}"
    );
    assert!(exporter_lag(&broker).expect("lag metric") > 50);

    // Once the file can be written, the held records go out and work resumes.
    std::fs::remove_dir(exports.join("partition-1.jsonl")).expect("unblock");
    let start = Instant::now();
    while exporter_lag(&broker) != Some(0) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(exporter_lag(&broker), Some(0), "the lag drained");
    runtime().block_on(async {
        let mut c = connect(&broker).await;
        create(&mut c).await.expect("accepted again");
    });
    let text = std::fs::read_to_string(exports.join("partition-1.jsonl")).expect("written");
    assert!(text.lines().count() > 50, "the held records were written");
    assert!(broker.terminate().success());
}

#[test]
fn sighup_reopens_the_export_file_after_a_rotation() {
    let env = [("WAGGLE_EXPORTER_ENABLED", "true".to_string())];
    let broker = Broker::start_dev(&env);
    let rt = runtime();
    let run = |n: usize| -> BTreeSet<i64> {
        rt.block_on(async {
            let mut c = connect(&broker).await;
            deploy_one_task(&mut c).await;
            let mut keys = BTreeSet::new();
            for _ in 0..n {
                keys.insert(create(&mut c).await.expect("create"));
            }
            complete_jobs(&mut c, n).await;
            keys
        })
    };
    let before = run(5);
    assert!(before.is_subset(&wait_exported(&broker, &before)));
    // logrotate's default: rename, then `systemctl reload waggle`.
    let file = broker.data_dir().join("exports/partition-1.jsonl");
    let rotated = broker.data_dir().join("exports/partition-1.jsonl.1");
    std::fs::rename(&file, &rotated).expect("rotate");
    // SAFETY: signals the broker this test started, by its PID.
    let rc = unsafe { libc::kill(broker.child.id() as i32, libc::SIGHUP) };
    assert_eq!(rc, 0);
    // The signal is handled asynchronously: work until the file is back.
    let start = Instant::now();
    while !file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no new export file"
        );
        let one = run(1);
        wait_exported(&broker, &one);
    }
    let after = run(5);
    let exported = wait_exported(&broker, &after);
    assert!(
        after.is_subset(&exported),
        "a new file holds the new instances"
    );
    let rotated_text = std::fs::read_to_string(&rotated).expect("rotated file");
    for key in &after {
        assert!(
            !rotated_text.contains(&format!("\"process_instance_key\":{key},")),
            "instance {key} went to the rotated file"
        );
    }
    assert!(
        broker.terminate().success(),
        "SIGHUP did not end the broker"
    );
}
