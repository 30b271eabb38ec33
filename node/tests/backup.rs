//! Hot backup and restore of a running broker: instances acknowledged
//! before the backup are there after a restore into an empty data
//! directory, those created after it are not; the API answers as Zeebe's.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{
    connect, create_one_task, deploy_one_task, http_request, run_waggle, runtime, Broker,
};
use node::gateway::proto;

fn state_of(broker: &Broker, id: u64) -> String {
    let (_, body) = http_request(
        broker.management_port,
        "GET",
        &format!("/actuator/backupRuntime/{id}"),
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    v["state"].as_str().unwrap_or_default().to_string()
}

/// Creates `count` instances of the one-task model; their keys.
async fn create_instances(broker: &Broker, count: usize) -> BTreeSet<i64> {
    let mut client = connect(broker).await;
    let mut keys = BTreeSet::new();
    for _ in 0..count {
        keys.insert(create_one_task(&mut client).await.process_instance_key);
    }
    keys
}

/// The process instances of the jobs of type `work` that can be activated.
async fn instances_with_jobs(broker: &Broker) -> BTreeSet<i64> {
    let mut client = connect(broker).await;
    let mut out = BTreeSet::new();
    for _ in 0..20 {
        let mut stream = client
            .activate_jobs(proto::ActivateJobsRequest {
                r#type: "work".into(),
                worker: "restore-test".into(),
                timeout: 600_000,
                max_jobs_to_activate: 1000,
                request_timeout: 1_000,
                ..Default::default()
            })
            .await
            .expect("activate")
            .into_inner();
        let mut got = 0;
        while let Some(batch) = stream.message().await.expect("stream") {
            got += batch.jobs.len();
            out.extend(batch.jobs.iter().map(|j| j.process_instance_key));
        }
        if got == 0 {
            break;
        }
    }
    out
}

#[test]
fn a_backup_taken_under_load_restores_what_was_acknowledged_before_it() {
    let store = tempfile::tempdir().expect("backup dir");
    let env = [(
        "WAGGLE_BACKUP_DIRECTORY",
        store.path().display().to_string(),
    )];
    let broker = Broker::start_dev(&env);
    let rt = runtime();
    let port = broker.management_port;
    rt.block_on(async { deploy_one_task(&mut connect(&broker).await).await });
    let before = rt.block_on(create_instances(&broker, 30));
    // Load while the backup is taken: creations race with the checkpoint.
    let uri = broker.gateway_uri();
    let load = std::thread::spawn(move || {
        let rt = runtime();
        rt.block_on(async {
            let mut client = proto::gateway_client::GatewayClient::connect(uri)
                .await
                .expect("connect");
            for _ in 0..40 {
                let _ = client
                    .create_process_instance(proto::CreateProcessInstanceRequest {
                        bpmn_process_id: "one_task".into(),
                        version: -1,
                        ..Default::default()
                    })
                    .await;
            }
        })
    });
    let (code, body) = http_request(
        port,
        "POST",
        "/actuator/backupRuntime",
        r#"{"backupId": 7}"#,
    );
    assert_eq!(code, 202, "{body}");
    load.join().expect("load thread");
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(&broker, 7) != "COMPLETED" {
        assert!(Instant::now() < deadline, "backup 7 did not complete");
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = rt.block_on(create_instances(&broker, 10));

    // The API as Zeebe's: a second POST of the same id conflicts, the old
    // path lists it, bad ids are named, unknown ones are 404.
    let (code, _) = http_request(port, "POST", "/actuator/backups", r#"{"backupId": 7}"#);
    assert_eq!(code, 409);
    let (code, body) = http_request(port, "GET", "/actuator/backups", "");
    assert_eq!(code, 200);
    assert!(
        body.contains(r#""backupId":7"#) && body.contains("COMPLETED"),
        "{body}"
    );
    let (code, body) = http_request(
        port,
        "POST",
        "/actuator/backupRuntime",
        r#"{"backupId": -1}"#,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("backupId"), "{body}");
    let (code, body) = http_request(port, "GET", "/actuator/backupRuntime/8", "");
    assert_eq!(code, 404);
    assert!(body.contains("DOES_NOT_EXIST"), "{body}");
    let (code, _) = http_request(
        port,
        "POST",
        "/actuator/backupRuntime",
        r#"{"backupId": 9}"#,
    );
    assert_eq!(code, 202);

    let (_, dir) = broker.terminate_keeping_dir();
    let (ok, _, err) = run_waggle(dir.path(), &["restore", "--dev", "--backup-id", "7"], &env);
    assert!(!ok, "restore over existing partitions must be refused");
    assert!(
        err.contains("restore only into empty data directories"),
        "{err}"
    );
    std::fs::remove_dir_all(dir.path().join("data/partitions")).expect("destroy the data");
    let (ok, _, err) = run_waggle(dir.path(), &["restore", "--dev", "--backup-id", "5"], &env);
    assert!(!ok && err.contains("backup 5 does not exist"), "{err}");
    let (ok, out, err) = run_waggle(dir.path(), &["restore", "--dev", "--backup-id", "7"], &env);
    assert!(ok, "restore: {out}{err}");
    assert!(out.contains("restored backup 7"), "{out}");

    let broker = Broker::start_dev_in(dir, &env);
    broker.wait_http_ok("/ready");
    let restored = rt.block_on(instances_with_jobs(&broker));
    let missing: Vec<_> = before.difference(&restored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, lost: {missing:?}"
    );
    let newer: Vec<_> = after.intersection(&restored).collect();
    assert!(
        newer.is_empty(),
        "created after the backup, restored: {newer:?}"
    );
    // It runs on: new instances are created and their jobs handed out.
    let more = rt.block_on(async {
        let mut client = connect(&broker).await;
        create_one_task(&mut client).await.process_instance_key
    });
    assert!(rt.block_on(instances_with_jobs(&broker)).contains(&more));
    let (code, _) = http_request(
        broker.management_port,
        "DELETE",
        "/actuator/backupRuntime/7",
        "",
    );
    assert_eq!(code, 204);
    let (code, _) = http_request(
        broker.management_port,
        "GET",
        "/actuator/backupRuntime/7",
        "",
    );
    assert_eq!(code, 404);
    broker.terminate();
}
