//! The data files of earlier releases open in this one. Each folder
//! `tests/fixtures/data-<version>/` holds the data directory a `waggle dev`
//! of that release left behind: segments and their frames, Raft metadata,
//! log entries and records, partition and engine snapshots, and secondary
//! storage. This build must read every one (through migration code once a
//! format has changed) and run the instances in them to their end.
//!
//! A release writes its fixture once, and it is never rewritten:
//! `FORMATS_FIXTURE_OUT=node/tests/fixtures/data-X.Y.Z cargo test -p node
//! --test formats -- --ignored`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{activate_all, connect, free_port, http_request, runtime, Broker};
use node::gateway::proto;
use serde::{Deserialize, Serialize};

/// start → task `work` (a 24 h boundary timer) → message `go` (keyed by the
/// `key` variable) → end.
const MODEL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="formats" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work"/>
    <bpmn:serviceTask id="work">
      <bpmn:extensionElements><zeebe:taskDefinition type="work" retries="1"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:boundaryEvent id="late" attachedToRef="work">
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT24H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="go"/>
    <bpmn:sequenceFlow id="f5" sourceRef="late" targetRef="end"/>
    <bpmn:intermediateCatchEvent id="go">
      <bpmn:messageEventDefinition messageRef="m"/>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="go" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
  <bpmn:message id="m" name="go">
    <bpmn:extensionElements><zeebe:subscription correlationKey="=key"/></bpmn:extensionElements>
  </bpmn:message>
</bpmn:definitions>"#;

/// What a fixture holds, by process instance key.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// The release that wrote it.
    broker_version: String,
    /// Waiting for their job.
    at_task: Vec<i64>,
    /// Job completed, waiting for their message.
    at_message: Vec<i64>,
    /// Their job failed without retries: an open incident.
    with_incident: Vec<i64>,
    /// Ended.
    completed: Vec<i64>,
    /// Each instance's correlation key (its `key` variable).
    keys: BTreeMap<i64, String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn broker_env(rest_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("WAGGLE_DATA_SEGMENT_SIZE_BYTES", (1u64 << 20).to_string()),
        ("WAGGLE_DATA_SNAPSHOT_PERIOD_MS", "1000".into()),
        ("WAGGLE_REST_PORT", rest_port.to_string()),
    ]
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Whether the 24 h boundary timer of `instances` (at the task) is due: the
/// earliest of them started more than a day ago. Within two minutes of it,
/// waits until it is due.
fn late_timer_due(rest: u16, instances: &[i64]) -> bool {
    let started = instances
        .iter()
        .map(|&key| {
            let (code, body) =
                http_request(rest, "GET", &format!("/v2/process-instances/{key}"), "");
            assert_eq!(code, 200, "instance {key}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let date = v["startDate"].as_str().expect("startDate").to_string();
            chrono::DateTime::parse_from_rfc3339(&date)
                .unwrap_or_else(|e| panic!("startDate {date}: {e}"))
                .timestamp_millis()
        })
        .min()
        .expect("instances at the task");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    let until_due = started + 24 * 3_600_000 - now;
    if (0..120_000).contains(&until_due) {
        std::thread::sleep(Duration::from_millis(until_due as u64 + 1_000));
        return true;
    }
    until_due < 0
}

/// `GET /v2/process-instances/{key}`'s state, once secondary storage has it.
fn instance_state(rest: u16, key: i64) -> Option<String> {
    let (code, body) = http_request(rest, "GET", &format!("/v2/process-instances/{key}"), "");
    if code != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["state"].as_str().map(str::to_string)
}

fn wait_state(rest: u16, keys: &[i64], state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for &key in keys {
        while instance_state(rest, key).as_deref() != Some(state) {
            assert!(
                Instant::now() < deadline,
                "instance {key} is {:?}, not {state}",
                instance_state(rest, key)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

type Client = proto::gateway_client::GatewayClient<tonic::transport::Channel>;

async fn create(client: &mut Client, key: &str) -> i64 {
    client
        .create_process_instance(proto::CreateProcessInstanceRequest {
            bpmn_process_id: "formats".into(),
            version: -1,
            variables: format!(r#"{{"key": "{key}"}}"#),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
        .process_instance_key
}

async fn complete(client: &mut Client, job: i64) {
    client
        .complete_job(proto::CompleteJobRequest {
            job_key: job,
            variables: "{}".into(),
            ..Default::default()
        })
        .await
        .expect("complete");
}

async fn publish(client: &mut Client, key: &str) {
    client
        .publish_message(proto::PublishMessageRequest {
            name: "go".into(),
            correlation_key: key.into(),
            // Buffered, so that it correlates once the subscription opens.
            time_to_live: 60_000,
            variables: "{}".into(),
            ..Default::default()
        })
        .await
        .expect("publish");
}

#[test]
fn the_data_of_earlier_releases_opens_and_its_instances_run_to_their_end() {
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("tests/fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("data-"))
        })
        .collect();
    fixtures.sort();
    assert!(!fixtures.is_empty(), "no tests/fixtures/data-*");
    for fixture in fixtures {
        let name = fixture
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let manifest: Manifest = serde_json::from_slice(
            &std::fs::read(fixture.join("manifest.json")).expect("manifest.json"),
        )
        .expect("a manifest");
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(&fixture.join("data"), &dir.path().join("data"));
        let rest = free_port();
        let broker = Broker::start_dev_in(dir, &broker_env(rest));
        broker.wait_http_ok("/ready");

        // Secondary storage of the old release reads as it was written.
        wait_state(rest, &manifest.completed, "COMPLETED");
        let at_task: Vec<i64> = [&manifest.at_task, &manifest.with_incident]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        // A fixture older than a day: the old release's timers run on, and
        // every instance still at the task ends by its boundary timer.
        let timed_out = late_timer_due(rest, &at_task);
        if timed_out {
            wait_state(rest, &at_task, "COMPLETED");
        }
        let open: Vec<i64> = if timed_out {
            manifest.at_message.clone()
        } else {
            at_task
                .iter()
                .chain(&manifest.at_message)
                .copied()
                .collect()
        };
        wait_state(rest, &open, "ACTIVE");
        for &instance in manifest.with_incident.iter().filter(|_| !timed_out) {
            let filter = format!(r#"{{"filter": {{"processInstanceKey": "{instance}"}}}}"#);
            let (code, body) = http_request(rest, "POST", "/v2/incidents/search", &filter);
            assert_eq!(code, 200, "{name}: {body}");
            let found: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            let incident = &found["items"][0];
            assert_eq!(incident["state"], "ACTIVE", "{name}: {body}");
            let job = incident["jobKey"].as_str().expect("jobKey");
            let (code, body) = http_request(
                rest,
                "PATCH",
                &format!("/v2/jobs/{job}"),
                r#"{"changeset": {"retries": 1}}"#,
            );
            assert_eq!(code, 204, "{name}: {body}");
            let key = incident["incidentKey"].as_str().expect("incidentKey");
            let (code, body) =
                http_request(rest, "POST", &format!("/v2/incidents/{key}/resolution"), "");
            assert_eq!(code, 204, "{name}: {body}");
        }

        // The engine's state of the old release runs on: exactly the
        // instances at the task (and those whose incident was resolved)
        // have a job; every open instance then ends on its message.
        runtime().block_on(async {
            let mut client = connect(&broker).await;
            let jobs = activate_all(&mut client, "work").await;
            let expected: BTreeSet<i64> = if timed_out {
                BTreeSet::new()
            } else {
                at_task.iter().copied().collect()
            };
            assert_eq!(
                jobs.keys().copied().collect::<BTreeSet<_>>(),
                expected,
                "{name}: the instances with a job"
            );
            for &job in jobs.values() {
                complete(&mut client, job).await;
            }
            for instance in &open {
                publish(&mut client, &manifest.keys[instance]).await;
            }
            let new = create(&mut client, "new").await;
            let jobs = activate_all(&mut client, "work").await;
            assert_eq!(jobs.keys().copied().collect::<Vec<_>>(), [new], "{name}");
            complete(&mut client, jobs[&new]).await;
            publish(&mut client, "new").await;
        });
        wait_state(rest, &open, "COMPLETED");
        broker.terminate();
    }
}

/// Writes this build's fixture into `FORMATS_FIXTURE_OUT` (see the module
/// docs); run once per release.
#[test]
#[ignore = "writes a fixture: run once per release"]
fn write_fixture() {
    let out = PathBuf::from(std::env::var("FORMATS_FIXTURE_OUT").expect("FORMATS_FIXTURE_OUT"));
    assert!(
        !out.exists(),
        "{} exists: fixtures are never rewritten",
        out.display()
    );
    let rest = free_port();
    let broker = Broker::start_dev(&broker_env(rest));
    broker.wait_http_ok("/ready");
    let mut manifest = Manifest {
        broker_version: env!("CARGO_PKG_VERSION").into(),
        at_task: Vec::new(),
        at_message: Vec::new(),
        with_incident: Vec::new(),
        completed: Vec::new(),
        keys: BTreeMap::new(),
    };
    runtime().block_on(async {
        let mut client = connect(&broker).await;
        client
            .deploy_resource(proto::DeployResourceRequest {
                resources: vec![proto::Resource {
                    name: "formats.bpmn".into(),
                    content: MODEL.as_bytes().to_vec(),
                }],
                tenant_id: String::new(),
            })
            .await
            .expect("deploy");
        let mut first = Vec::new();
        for i in 0..5 {
            let key = format!("k{i}");
            let instance = create(&mut client, &key).await;
            manifest.keys.insert(instance, key);
            first.push(instance);
        }
        let jobs = activate_all(&mut client, "work").await;
        assert_eq!(jobs.len(), 5);
        for &instance in &first[..3] {
            complete(&mut client, jobs[&instance]).await;
            manifest.at_message.push(instance);
        }
        client
            .fail_job(proto::FailJobRequest {
                job_key: jobs[&first[3]],
                retries: 0,
                error_message: "fixture: no retries left".into(),
                ..Default::default()
            })
            .await
            .expect("fail");
        manifest.with_incident.push(first[3]);
        complete(&mut client, jobs[&first[4]]).await;
        publish(&mut client, &manifest.keys[&first[4]]).await;
        manifest.completed.push(first[4]);
        // A snapshot of all that (one per second), then instances only in
        // the log after it: the broker is killed before its next snapshot.
        wait_state(rest, &manifest.completed, "COMPLETED");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        for i in 5..8 {
            let key = format!("k{i}");
            let instance = create(&mut client, &key).await;
            manifest.keys.insert(instance, key);
            manifest.at_task.push(instance);
        }
    });
    let dir = broker.kill_keeping_dir();
    copy_dir(&dir.path().join("data"), &out.join("data"));
    let text = serde_json::to_string_pretty(&manifest).expect("JSON");
    std::fs::write(out.join("manifest.json"), text + "\n").expect("manifest");
}
