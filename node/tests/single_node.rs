//! End to end through a real `waggle dev` process: deploy, create instances,
//! activate and complete jobs, await results, restart and find everything
//! acknowledged still there.

mod common;

use common::ONE_TASK;

use std::time::{Duration, Instant};

use common::{runtime, Broker};
use node::gateway::proto;
use node::gateway::proto::gateway_client::GatewayClient;
use tonic::transport::Channel;

async fn connect(broker: &Broker) -> GatewayClient<Channel> {
    GatewayClient::connect(broker.gateway_uri())
        .await
        .expect("connect")
}

async fn deploy(
    client: &mut GatewayClient<Channel>,
    name: &str,
    xml: &str,
) -> Result<proto::DeployResourceResponse, tonic::Status> {
    client
        .deploy_resource(proto::DeployResourceRequest {
            resources: vec![proto::Resource {
                name: name.into(),
                content: xml.as_bytes().to_vec(),
            }],
            tenant_id: String::new(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn create(client: &mut GatewayClient<Channel>, variables: &str) -> i64 {
    client
        .create_process_instance(proto::CreateProcessInstanceRequest {
            bpmn_process_id: "one_task".into(),
            version: -1,
            variables: variables.into(),
            ..Default::default()
        })
        .await
        .expect("create instance")
        .into_inner()
        .process_instance_key
}

async fn activate(
    client: &mut GatewayClient<Channel>,
    max: i32,
    request_timeout: i64,
) -> Vec<proto::ActivatedJob> {
    activate_type(client, "work", max, request_timeout).await
}

async fn activate_type(
    client: &mut GatewayClient<Channel>,
    job_type: &str,
    max: i32,
    request_timeout: i64,
) -> Vec<proto::ActivatedJob> {
    let mut stream = client
        .activate_jobs(proto::ActivateJobsRequest {
            r#type: job_type.into(),
            worker: "test".into(),
            timeout: 60_000,
            max_jobs_to_activate: max,
            request_timeout,
            ..Default::default()
        })
        .await
        .expect("activate")
        .into_inner();
    let mut jobs = Vec::new();
    while let Some(batch) = stream.message().await.expect("activation stream") {
        jobs.extend(batch.jobs);
    }
    jobs
}

#[test]
fn instances_run_to_completion_and_survive_a_restart() {
    let broker = Broker::start_dev(&[]);
    let rt = runtime();
    let kept = rt.block_on(async {
        let mut client = connect(&broker).await;
        let deployed = deploy(&mut client, "one_task.bpmn", ONE_TASK)
            .await
            .expect("deploy");
        assert_eq!(deployed.deployments.len(), 1);

        // A worker completes the job; the instance with result sees its variables.
        let mut waiting = client.clone();
        let with_result = tokio::spawn(async move {
            waiting
                .create_process_instance_with_result(
                    proto::CreateProcessInstanceWithResultRequest {
                        request: Some(proto::CreateProcessInstanceRequest {
                            bpmn_process_id: "one_task".into(),
                            version: -1,
                            variables: r#"{"order": 42}"#.into(),
                            ..Default::default()
                        }),
                        request_timeout: 30_000,
                        fetch_variables: vec![],
                    },
                )
                .await
        });
        let mut completed = 0;
        let start = Instant::now();
        while completed == 0 && start.elapsed() < Duration::from_secs(30) {
            for job in activate(&mut client, 10, 1_000).await {
                assert!(job.variables.contains("42"), "{job:?}");
                client
                    .complete_job(proto::CompleteJobRequest {
                        job_key: job.key,
                        variables: r#"{"done": true}"#.into(),
                        result: None,
                    })
                    .await
                    .expect("complete");
                completed += 1;
            }
        }
        assert_eq!(completed, 1);
        let result = with_result
            .await
            .expect("join")
            .expect("with result")
            .into_inner();
        let variables: serde_json::Value = serde_json::from_str(&result.variables).expect("json");
        assert_eq!(variables["order"], 42);
        assert_eq!(variables["done"], true);

        // Completing the same job again is refused as Zeebe does.
        let again = client
            .complete_job(proto::CompleteJobRequest {
                job_key: (1i64 << 51) + 999_999,
                variables: String::new(),
                result: None,
            })
            .await
            .expect_err("no such job");
        assert_eq!(again.code(), tonic::Code::NotFound, "{again:?}");

        // Instances acknowledged before the restart.
        let mut kept = Vec::new();
        for i in 0..20 {
            kept.push(create(&mut client, &format!(r#"{{"i": {i}}}"#)).await);
        }
        kept
    });
    // SIGKILL: nothing is flushed at exit, only what was acknowledged counts.
    let dir = broker.kill_keeping_dir();
    let broker = Broker::start_dev_in(dir, &[]);
    rt.block_on(async {
        let mut client = connect(&broker).await;
        let mut seen = std::collections::BTreeSet::new();
        let start = Instant::now();
        while seen.len() < kept.len() && start.elapsed() < Duration::from_secs(30) {
            for job in activate(&mut client, 50, 1_000).await {
                assert!(
                    seen.insert(job.process_instance_key),
                    "job handed out twice: {job:?}"
                );
                client
                    .complete_job(proto::CompleteJobRequest {
                        job_key: job.key,
                        variables: String::new(),
                        result: None,
                    })
                    .await
                    .expect("complete after restart");
            }
        }
        let kept: std::collections::BTreeSet<i64> = kept.into_iter().collect();
        assert_eq!(
            seen, kept,
            "every instance acknowledged before the restart has its job"
        );
        // The deployment survived too: new instances start.
        create(&mut client, "{}").await;
    });
    let status = broker.terminate();
    assert!(status.success());
}

#[test]
fn malformed_bpmn_is_refused_naming_the_element() {
    let broker = Broker::start_dev(&[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(&broker).await;
        let no_type = ONE_TASK.replace(r#"<zeebe:taskDefinition type="work" retries="3"/>"#, "");
        let error = deploy(&mut client, "broken.bpmn", &no_type)
            .await
            .expect_err("no job type");
        assert_eq!(error.code(), tonic::Code::InvalidArgument, "{error:?}");
        assert!(error.message().contains("task"), "{error:?}");
        let garbage = deploy(&mut client, "garbage.bpmn", "<definitions")
            .await
            .expect_err("not XML");
        assert_eq!(garbage.code(), tonic::Code::InvalidArgument, "{garbage:?}");
        assert!(garbage.message().contains("garbage.bpmn"), "{garbage:?}");
        // Still serving.
        deploy(&mut client, "one_task.bpmn", ONE_TASK)
            .await
            .expect("valid deployment");
    });
    assert!(broker.terminate().success());
}

#[test]
fn the_cli_deploys_creates_activates_and_completes() {
    let broker = Broker::start_dev(&[]);
    let dir = broker.dir.path().to_path_buf();
    std::fs::write(dir.join("one_task.bpmn"), ONE_TASK).expect("write bpmn");
    let env = [("WAGGLE_ADDRESS", broker.gateway_uri())];
    let run = |args: &[&str]| -> serde_json::Value {
        let (ok, out, err) = common::run_waggle(&dir, args, &env);
        assert!(ok, "waggle {args:?} failed: {err}");
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("waggle {args:?} printed no JSON ({e}): {out}"))
    };
    let deployed = run(&["deploy", "one_task.bpmn"]);
    assert_eq!(
        deployed["deployments"][0]["process"]["bpmnProcessId"],
        "one_task"
    );
    let created = run(&["create-instance", "one_task", "--variables", r#"{"x": 1}"#]);
    let instance = created["processInstanceKey"]
        .as_i64()
        .expect("instance key");
    let activated = run(&["activate-jobs", "work", "--request-timeout-ms", "5000"]);
    let job = &activated["jobs"][0];
    assert_eq!(
        job["processInstanceKey"].as_i64(),
        Some(instance),
        "{activated}"
    );
    assert_eq!(job["variables"]["x"], 1);
    let key = job["key"].as_i64().expect("job key").to_string();
    run(&["complete-job", &key]);
    // Completed: completing again is refused with NOT_FOUND, named in the error.
    let (ok, _, err) = common::run_waggle(&dir, &["complete-job", &key], &env);
    assert!(!ok);
    assert!(err.contains("NotFound"), "{err}");
    // The shards feed the metrics: commands appended and answered.
    let (code, metrics) = broker.http_get("/metrics").expect("metrics");
    assert_eq!(code, 200);
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"))
    };
    assert!(value(r#"waggle_appended_records_total{partition="1"}"#) >= 4.0);
    assert!(value(r#"waggle_commit_latency_seconds_count{partition="1"}"#) >= 4.0);
    // One job was activated: its creation-to-activation time is counted.
    assert_eq!(value("waggle_job_activation_latency_seconds_count"), 1.0);
    assert!(broker.terminate().success());
}

/// Samples of `name` with `labels` in the broker's metrics.
fn metric(broker: &Broker, name: &str, labels: &str) -> f64 {
    let (code, text) = broker.http_get("/metrics").expect("metrics");
    assert_eq!(code, 200);
    common::metric_sum(&text, name, labels)
}

/// Waits (bounded) until `name` with `labels` is `value`.
async fn wait_metric(broker: &Broker, name: &str, labels: &str, value: f64) {
    let start = Instant::now();
    while metric(broker, name, labels) != value {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{name}{{{labels}}} never became {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn jobs_are_pushed_to_a_stream() {
    let broker = Broker::start_dev(&[]);
    let rt = runtime();
    rt.block_on(async {
        let mut client = connect(&broker).await;
        deploy(&mut client, "one_task.bpmn", ONE_TASK)
            .await
            .expect("deploy");
        let mut stream = client
            .stream_activated_jobs(proto::StreamActivatedJobsRequest {
                r#type: "work".into(),
                worker: "pushed".into(),
                timeout: 60_000,
                ..Default::default()
            })
            .await
            .expect("open stream")
            .into_inner();
        // The stream is registered in the partition's replicated state, and
        // a job is activated for it in the step that creates it: no
        // activation command (JOB_BATCH) is ever processed.
        wait_metric(&broker, "waggle_job_streams", r#"partition="1""#, 1.0).await;
        let mut created = std::collections::BTreeSet::new();
        for i in 0..5 {
            created.insert(create(&mut client, &format!(r#"{{"i": {i}}}"#)).await);
        }
        let mut pushed = std::collections::BTreeSet::new();
        while pushed.len() < created.len() {
            let job = tokio::time::timeout(Duration::from_secs(30), stream.message())
                .await
                .expect("a job arrives")
                .expect("stream open")
                .expect("a job");
            assert_eq!(job.worker, "pushed");
            assert!(
                pushed.insert(job.process_instance_key),
                "pushed twice: {job:?}"
            );
            client
                .complete_job(proto::CompleteJobRequest {
                    job_key: job.key,
                    variables: String::new(),
                    result: None,
                })
                .await
                .expect("complete a pushed job");
        }
        assert_eq!(pushed, created);
        assert_eq!(
            metric(
                &broker,
                "waggle_commands_processed_total",
                r#"kind="JOB_BATCH""#
            ),
            0.0,
            "jobs pushed without an activation command"
        );
        // A closed stream is removed, and the jobs wait for the next worker.
        drop(stream);
        wait_metric(&broker, "waggle_job_streams", r#"partition="1""#, 0.0).await;
        let waiting = create(&mut client, "{}").await;
        let jobs = activate(&mut client, 1, 10_000).await;
        assert_eq!(jobs.len(), 1, "the job is activatable");
        assert_eq!(jobs[0].process_instance_key, waiting);
    });
    assert!(broker.terminate().success());
}

#[test]
fn deleting_a_definition_terminates_its_instances_and_falls_back_a_version() {
    let broker = Broker::start_dev(&[]);
    runtime().block_on(async {
        let mut client = connect(&broker).await;
        let v1 = deploy(&mut client, "one_task.bpmn", ONE_TASK)
            .await
            .expect("v1");
        let v2_xml = ONE_TASK.replace(r#"type="work""#, r#"type="work-v2""#);
        let v2 = deploy(&mut client, "one_task.bpmn", &v2_xml)
            .await
            .expect("v2");
        let key_of = |d: &proto::DeployResourceResponse| match &d.deployments[0].metadata {
            Some(proto::deployment::Metadata::Process(p)) => (p.process_definition_key, p.version),
            other => panic!("not a process: {other:?}"),
        };
        let ((v1_key, 1), (v2_key, 2)) = (key_of(&v1), key_of(&v2)) else {
            panic!("versions 1 and 2 expected: {v1:?} {v2:?}");
        };
        create(&mut client, "{}").await;
        client
            .delete_resource(proto::DeleteResourceRequest {
                resource_key: v2_key,
                ..Default::default()
            })
            .await
            .expect("delete v2");
        // Its instance is gone with its job; the latest version is v1 again.
        assert!(activate_type(&mut client, "work-v2", 10, 500)
            .await
            .is_empty());
        create(&mut client, "{}").await;
        let jobs = activate_type(&mut client, "work", 10, 500).await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(jobs[0].process_definition_key, v1_key);
        let again = client
            .delete_resource(proto::DeleteResourceRequest {
                resource_key: v2_key,
                ..Default::default()
            })
            .await
            .expect_err("already deleted");
        assert_eq!(again.code(), tonic::Code::NotFound, "{again:?}");
        assert!(again.message().contains(&v2_key.to_string()), "{again:?}");
    });
    assert!(broker.terminate().success());
}

#[test]
fn the_cluster_configuration_is_kept_in_the_data_directory_and_shown_by_the_cluster_api() {
    let env = [("WAGGLE_CLUSTER_PARTITIONS", "2".to_string())];
    let topology = |broker: &Broker| -> serde_json::Value {
        let (status, body) = broker.http_get("/actuator/cluster").expect("an answer");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("JSON")
    };
    let broker = Broker::start_dev(&env);
    let first = topology(&broker);
    assert_eq!(first["version"], 1, "{first}");
    assert_eq!(
        first["brokers"].as_array().map(Vec::len),
        Some(1),
        "{first}"
    );
    assert_eq!(first["brokers"][0]["id"], 0);
    assert_eq!(first["brokers"][0]["state"], "ACTIVE");
    assert_eq!(
        first["brokers"][0]["partitions"],
        serde_json::json!([
            { "id": 1, "state": "ACTIVE", "priority": 1 },
            { "id": 2, "state": "ACTIVE", "priority": 1 },
        ])
    );
    assert_eq!(first["routing"]["requestHandling"]["partitionCount"], 2);
    let file = broker.data_dir().join("cluster-configuration.json");
    assert!(file.exists(), "written on the first start");
    // The CLI shows the same.
    let address = format!("http://127.0.0.1:{}", broker.management_port);
    let (ok, out, err) = common::run_waggle(
        broker.dir.path(),
        &["cluster", "--management-address", &address, "show"],
        &[],
    );
    assert!(ok, "waggle cluster show: {err}");
    let shown: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(shown, first);
    let (ok, out, err) = common::run_waggle(
        broker.dir.path(),
        &[
            "cluster",
            "--management-address",
            &address,
            "add",
            "1",
            "--dry-run",
        ],
        &[],
    );
    assert!(ok, "waggle cluster add --dry-run: {err}");
    let planned: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        planned["plannedChanges"][0]["operation"], "BROKER_ADD",
        "{out}"
    );
    let (ok, _, err) = common::run_waggle(
        broker.dir.path(),
        &["cluster", "--management-address", &address, "scale"],
        &[],
    );
    assert!(
        !ok && err.contains("--brokers, --partitions or --replication-factor"),
        "{err}"
    );
    let (ok, out, err) = common::run_waggle(
        broker.dir.path(),
        &[
            "cluster",
            "--management-address",
            &address,
            "scale",
            "--partitions",
            "3",
            "--dry-run",
        ],
        &[],
    );
    assert!(ok, "waggle cluster scale --partitions 3 --dry-run: {err}");
    let planned: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        planned["plannedChanges"],
        serde_json::json!([
            {"operation": "PARTITION_BOOTSTRAP", "brokerId": 0, "partitionId": 3, "priority": 1},
            {"operation": "START_PARTITION_SCALE_UP", "brokerId": 0, "desiredPartitionCount": 3},
            {"operation": "AWAIT_REDISTRIBUTION_COMPLETION", "brokerId": 0, "desiredPartitionCount": 3},
        ]),
        "{out}"
    );
    // A change is planned as Zeebe plans it; a bad one is refused with why.
    let port = broker.management_port;
    let patch = |path: &str, body: &str| common::http_request(port, "PATCH", path, body);
    let (status, body) = patch(
        "/actuator/cluster?dryRun=true",
        r#"{"brokers":{"add":[1]}}"#,
    );
    assert_eq!(status, 200, "{body}");
    let planned: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        planned["plannedChanges"],
        serde_json::json!([
            {"operation": "BROKER_ADD", "brokerId": 1},
            {"operation": "PARTITION_JOIN", "brokerId": 1, "partitionId": 2, "priority": 1},
            {"operation": "PARTITION_LEAVE", "brokerId": 0, "partitionId": 2},
        ])
    );
    assert_eq!(planned["currentTopology"], first["brokers"]);
    assert_eq!(
        planned["expectedTopology"].as_array().map(Vec::len),
        Some(2)
    );
    let (status, body) = patch(
        "/actuator/cluster?dryRun=true",
        r#"{"partitions":{"replicationFactor":2}}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("replication factor 2"), "{body}");
    assert_eq!(topology(&broker), first, "a dry run changes nothing");
    let (status, body) = patch("/actuator/cluster", r#"{"brokers":{"add":[1]}}"#);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("broker 1 has no address") && body.contains("contact_points"),
        "{body}"
    );
    assert_eq!(topology(&broker), first, "a refused change changes nothing");

    // Read back after a restart, not made again.
    let (_, dir) = broker.terminate_keeping_dir();
    let broker = Broker::start_dev_in(dir, &env);
    assert_eq!(topology(&broker), first);

    // [cluster] describing another shape is refused, naming the file.
    let (_, dir) = broker.terminate_keeping_dir();
    let mut refused = std::process::Command::new(env!("CARGO_BIN_EXE_waggle"))
        .arg("dev")
        .current_dir(dir.path())
        .env("WAGGLE_CLUSTER_PARTITIONS", "3")
        .env("WAGGLE_RUNTIME_SHARDS", "1")
        .env("WAGGLE_NETWORK_HOST", "127.0.0.1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start waggle dev");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = refused.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            common::terminate_child(&mut refused);
            panic!(
                "a broker whose [cluster] differs from its data directory's configuration started"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(refused.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("cluster-configuration.json") && err.contains("partitions 3"),
        "{err}"
    );
}
