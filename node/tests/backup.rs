//! Hot backup and restore of a running broker: instances acknowledged
//! before the backup are there after a restore into an empty data
//! directory, those created after it are not; the API answers as Zeebe's.
//! The store is a directory, or a bucket of an S3-compatible server
//! (s3s-fs, which `scripts/test.sh` installs) that the test starts.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    let jobs = common::activate_all(&mut connect(broker).await, "work").await;
    jobs.into_keys().collect()
}

/// `POST /actuator/backupRuntime {"backupId": id}`.
fn post_backup(port: u16, id: i64) -> (u16, String) {
    let body = format!(r#"{{"backupId": {id}}}"#);
    http_request(port, "POST", "/actuator/backupRuntime", &body)
}

fn wait_completed(broker: &Broker, id: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while state_of(broker, id) != "COMPLETED" {
        assert!(Instant::now() < deadline, "backup {id} did not complete");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Destroys the partitions in `dir`, restores backup `id` there and starts
/// the broker on it; the broker and the instances whose jobs it hands out.
fn restore_and_start(
    dir: tempfile::TempDir,
    env: &[(&str, String)],
    id: u64,
) -> (Broker, BTreeSet<i64>) {
    std::fs::remove_dir_all(dir.path().join("data/partitions")).expect("destroy the data");
    let id = id.to_string();
    let (ok, out, err) = run_waggle(dir.path(), &["restore", "--dev", "--backup-id", &id], env);
    assert!(ok, "restore: {out}{err}");
    assert!(out.contains(&format!("restored backup {id}")), "{out}");
    let broker = Broker::start_dev_in(dir, env);
    broker.wait_http_ok("/ready");
    let restored = runtime().block_on(instances_with_jobs(&broker));
    (broker, restored)
}

/// Every instance of `before` is in `restored`, none of `after` is.
fn assert_restored(before: &BTreeSet<i64>, after: &BTreeSet<i64>, restored: &BTreeSet<i64>) {
    let missing: Vec<_> = before.difference(restored).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, lost: {missing:?}"
    );
    let newer: Vec<_> = after.intersection(restored).collect();
    assert!(
        newer.is_empty(),
        "created after the backup, restored: {newer:?}"
    );
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
    let (code, body) = post_backup(port, 7);
    assert_eq!(code, 202, "{body}");
    load.join().expect("load thread");
    wait_completed(&broker, 7);
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
    let (code, body) = post_backup(port, -1);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("backupId"), "{body}");
    let (code, body) = http_request(port, "GET", "/actuator/backupRuntime/8", "");
    assert_eq!(code, 404);
    assert!(body.contains("DOES_NOT_EXIST"), "{body}");
    let (code, _) = post_backup(port, 9);
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
    std::fs::create_dir_all(dir.path().join("data/partitions")).expect("recreate");
    let (broker, restored) = restore_and_start(dir, &env, 7);
    assert_restored(&before, &after, &restored);
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

/// s3s-fs, an S3-compatible server keeping objects as files under `root`:
/// `S3S_FS`, else the one `scripts/test.sh` installs, else the `PATH`'s.
struct S3Server {
    child: Option<Child>,
    root: PathBuf,
    port: u16,
}

const S3_KEY: &str = "waggle-test";
const S3_SECRET: &str = "waggle-test-secret";

fn s3s_fs_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return path.into();
    }
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/s3s-fs/bin/s3s-fs");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("s3s-fs")
}

impl S3Server {
    fn start(root: &Path, port: u16) -> S3Server {
        let binary = s3s_fs_binary();
        let child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_KEY, "--secret-key", S3_SECRET])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the S3-compatible server {} ({e}): scripts/test.sh installs \
                     it (cargo install s3s-fs --features binary --root .cache/s3s-fs)",
                    binary.display()
                )
            });
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        S3Server {
            child: Some(child),
            root: root.to_path_buf(),
            port,
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        let root = self.root.clone();
        *self = S3Server::start(&root, self.port);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_backup_in_an_s3_bucket_restores_and_an_unreachable_store_is_named() {
    let root = tempfile::tempdir().expect("s3 root");
    std::fs::create_dir(root.path().join("backups")).expect("the bucket");
    let port = common::free_port();
    let mut s3 = S3Server::start(root.path(), port);
    let env = [
        ("WAGGLE_BACKUP_STORE", "s3".to_string()),
        ("WAGGLE_BACKUP_S3_BUCKET", "backups".to_string()),
        (
            "WAGGLE_BACKUP_S3_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        ),
        ("WAGGLE_BACKUP_S3_REGION", "us-east-1".to_string()),
        ("WAGGLE_BACKUP_S3_BASE_PATH", "cluster-a".to_string()),
        ("WAGGLE_BACKUP_S3_ACCESS_KEY", S3_KEY.to_string()),
        ("WAGGLE_BACKUP_S3_SECRET_KEY", S3_SECRET.to_string()),
    ];
    let broker = Broker::start_dev(&env);
    let rt = runtime();
    let mport = broker.management_port;
    rt.block_on(async { deploy_one_task(&mut connect(&broker).await).await });
    let before = rt.block_on(create_instances(&broker, 20));
    let (code, body) = post_backup(mport, 3);
    assert_eq!(code, 202, "{body}");
    wait_completed(&broker, 3);
    let after = rt.block_on(create_instances(&broker, 5));
    // The parts are objects in the bucket, under the base path.
    let folder = root.path().join("backups/cluster-a/3");
    for name in ["backup.json", "partition-1.state", "partition-1.json"] {
        assert!(folder.join(name).is_file(), "no {name} in the bucket");
    }
    let (code, body) = http_request(mport, "GET", "/actuator/backupRuntime", "");
    assert_eq!(code, 200);
    assert!(body.contains(r#""backupId":3"#), "{body}");

    // The store vanishes: the API says which store failed, and the broker
    // serves on; once the store is back, so are the answers.
    s3.stop();
    let (code, body) = http_request(mport, "GET", "/actuator/backupRuntime/3", "");
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("s3://backups/cluster-a"), "{body}");
    let (code, body) = post_backup(mport, 4);
    assert_eq!(code, 500, "{body}");
    rt.block_on(create_instances(&broker, 1));
    s3.restart();
    assert_eq!(state_of(&broker, 3), "COMPLETED");

    let (_, dir) = broker.terminate_keeping_dir();
    // A wrong secret is refused by the server, and the restore says where.
    let mut wrong = env.clone();
    wrong[6].1 = "not-the-secret".into();
    std::fs::remove_dir_all(dir.path().join("data/partitions")).expect("destroy the data");
    let (ok, _, err) = run_waggle(
        dir.path(),
        &["restore", "--dev", "--backup-id", "3"],
        &wrong,
    );
    assert!(!ok && err.contains("s3://backups/cluster-a"), "{err}");
    std::fs::create_dir_all(dir.path().join("data/partitions")).expect("recreate");
    let (broker, restored) = restore_and_start(dir, &env, 3);
    assert_restored(&before, &after, &restored);

    let (code, _) = http_request(
        broker.management_port,
        "DELETE",
        "/actuator/backupRuntime/3",
        "",
    );
    assert_eq!(code, 204);
    assert!(
        !folder.join("backup.json").exists(),
        "deleted from the bucket"
    );
    broker.terminate();
}
