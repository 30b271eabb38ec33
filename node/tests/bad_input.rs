//! Bad input against a real `waggle dev`: oversized requests, garbage bytes on
//! the gateway port, a full data disk. Each gets a clear answer, and the
//! broker keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{deeply_nested_deployment, deploy_one_task, nested_sub_processes, runtime, Broker};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use tonic::transport::Channel;

/// Bound on each wait in these tests.
const MAX_WAIT: Duration = Duration::from_secs(30);

async fn create(client: &mut GatewayClient<Channel>) -> Result<i64, tonic::Status> {
    client
        .create_process_instance(proto::CreateProcessInstanceRequest {
            bpmn_process_id: "one_task".into(),
            version: -1,
            variables: "{}".into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().process_instance_key)
}

#[test]
fn oversized_requests_and_garbage_bytes_are_refused_and_the_broker_serves_on() {
    let broker =
        Broker::start_dev(&[("WAGGLE_NETWORK_MAX_MESSAGE_SIZE_BYTES", "65536".to_string())]);
    // Garbage where an HTTP/2 client preface belongs: the connection closes.
    let mut socket = TcpStream::connect(("127.0.0.1", broker.gateway_port)).expect("connect");
    socket.set_read_timeout(Some(MAX_WAIT)).expect("timeout");
    socket
        .write_all(b"\x16\x03\x01 this is not HTTP/2 at all \xff\xfe\x00\x00garbage")
        .expect("write garbage");
    let mut buffer = [0u8; 4096];
    let start = Instant::now();
    loop {
        match socket.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => assert!(
                start.elapsed() < MAX_WAIT,
                "the connection stays open after garbage"
            ),
        }
    }
    let rt = runtime();
    rt.block_on(async {
        let mut client = GatewayClient::connect(broker.gateway_uri())
            .await
            .expect("connect");
        deploy_one_task(&mut client).await;
        let big = format!(r#"{{"blob": "{}"}}"#, "x".repeat(200_000));
        let error = client
            .create_process_instance(proto::CreateProcessInstanceRequest {
                bpmn_process_id: "one_task".into(),
                version: -1,
                variables: big,
                ..Default::default()
            })
            .await
            .expect_err("larger than network.max_message_size_bytes");
        assert!(
            matches!(
                error.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
            ),
            "{error:?}"
        );
        assert!(error.message().contains("too large"), "{error:?}");
        // Still serving, on a new connection as on the old one.
        create(&mut client)
            .await
            .expect("a normal request after the oversized one");
        let mut fresh = GatewayClient::connect(broker.gateway_uri())
            .await
            .expect("connect again");
        create(&mut fresh)
            .await
            .expect("a new connection after the garbage");
    });
    assert!(broker.terminate().success());
}

/// A small tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    path: std::path::PathBuf,
}

impl Tmpfs {
    fn mount(path: &std::path::Path, size_mib: u32) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the test suite runs as root)"
        );
        Tmpfs {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_data_disk_refuses_writes_until_space_is_freed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Tmpfs::mount(&dir.path().join("data"), 48);
    let broker = Broker::start_dev_in(
        dir,
        &[
            (
                "WAGGLE_DATA_MIN_FREE_SPACE_BYTES",
                (16u64 << 20).to_string(),
            ),
            ("WAGGLE_DATA_SEGMENT_SIZE_BYTES", (1u64 << 20).to_string()),
        ],
    );
    let rt = runtime();
    rt.block_on(async {
        let mut client = GatewayClient::connect(broker.gateway_uri())
            .await
            .expect("connect");
        deploy_one_task(&mut client).await;
        let before = create(&mut client).await.expect("space to spare");

        // Fill the disk until less than the minimum is free.
        let filler = disk.path.join("filler");
        let free = node::shard::free_space_bytes(&disk.path).expect("statvfs");
        let fill = free.saturating_sub(8 << 20);
        std::fs::write(&filler, vec![0u8; fill as usize]).expect("fill the disk");
        let start = Instant::now();
        let refused = loop {
            match create(&mut client).await {
                Err(status) if status.code() == tonic::Code::ResourceExhausted => break status,
                _ => assert!(
                    start.elapsed() < MAX_WAIT,
                    "writes were never refused on a full disk"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            refused.message().contains("min_free_space_bytes"),
            "{refused:?}"
        );
        assert!(refused.message().contains("data"), "{refused:?}");

        std::fs::remove_file(&filler).expect("free the disk");
        let start = Instant::now();
        let after = loop {
            match create(&mut client).await {
                Ok(key) => break key,
                Err(status) => assert!(
                    start.elapsed() < MAX_WAIT,
                    "writes did not resume after space was freed: {status:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(after > before);
        // What was acknowledged before the disk filled is intact.
        let mut jobs = client
            .activate_jobs(proto::ActivateJobsRequest {
                r#type: "work".into(),
                worker: "w".into(),
                timeout: 60_000,
                max_jobs_to_activate: 10,
                request_timeout: 5_000,
                ..Default::default()
            })
            .await
            .expect("activate")
            .into_inner();
        let mut instances = Vec::new();
        while let Some(batch) = jobs.message().await.expect("stream") {
            instances.extend(batch.jobs.into_iter().map(|j| j.process_instance_key));
        }
        assert!(instances.contains(&before), "{instances:?} lacks {before}");
        assert!(instances.contains(&after), "{instances:?} lacks {after}");
    });
    let (status, dir) = broker.terminate_keeping_dir();
    assert!(status.success());
    drop(disk);
    drop(dir);
}

/// Creates a `one_task` instance and completes its job.
async fn run_one_instance(client: &mut GatewayClient<Channel>) {
    let key = create(client).await.expect("create an instance");
    let start = Instant::now();
    loop {
        let mut jobs = client
            .activate_jobs(proto::ActivateJobsRequest {
                r#type: "work".into(),
                worker: "w".into(),
                timeout: 60_000,
                max_jobs_to_activate: 10,
                request_timeout: 1_000,
                ..Default::default()
            })
            .await
            .expect("activate")
            .into_inner();
        while let Some(batch) = jobs.message().await.expect("stream") {
            for job in batch.jobs {
                client
                    .complete_job(proto::CompleteJobRequest {
                        job_key: job.key,
                        variables: String::new(),
                        result: None,
                    })
                    .await
                    .expect("complete");
                if job.process_instance_key == key {
                    return;
                }
            }
        }
        assert!(start.elapsed() < MAX_WAIT, "the job of {key} never came");
    }
}

#[test]
fn a_deeply_nested_deployment_is_rejected_and_the_broker_serves_on_after_a_restart() {
    let broker = Broker::start_dev(&[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = GatewayClient::connect(broker.gateway_uri())
            .await
            .expect("connect");
        let error = client
            .deploy_resource(deeply_nested_deployment(100_000))
            .await
            .expect_err("too deep");
        assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
        assert!(error.message().contains("deep.bpmn"), "{error:?}");
        assert!(error.message().contains("levels deep"), "{error:?}");
        // As deep as the limit allows (definitions, process and the task's
        // three levels around the sub-processes): parsed, deployed and run
        // on a shard's stack.
        let levels = dmn::xml_depth::MAX_XML_DEPTH - 5;
        client
            .deploy_resource(proto::DeployResourceRequest {
                resources: vec![proto::Resource {
                    name: "nested.bpmn".into(),
                    content: nested_sub_processes(levels),
                }],
                tenant_id: String::new(),
            })
            .await
            .expect("nesting within the limit deploys");
        client
            .create_process_instance(proto::CreateProcessInstanceRequest {
                bpmn_process_id: "nested".into(),
                version: -1,
                ..Default::default()
            })
            .await
            .expect("an instance of the nested process");
        deploy_one_task(&mut client).await;
        run_one_instance(&mut client).await;
    });
    let dir = broker.kill_keeping_dir();
    let broker = Broker::start_dev_in(dir, &[]);
    broker.wait_http_ok("/ready");
    rt.block_on(async {
        let mut client = GatewayClient::connect(broker.gateway_uri())
            .await
            .expect("connect after the restart");
        run_one_instance(&mut client).await;
    });
    assert!(broker.terminate().success());
}
