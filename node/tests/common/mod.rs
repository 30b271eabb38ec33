//! Starting and stopping a real `waggle` process on loopback ports in a
//! temporary directory, for the integration tests.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// start → service task (job type `work`) → end, process id `one_task`.
pub const ONE_TASK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d" targetNamespace="t">
  <bpmn:process id="one_task" isExecutable="true">
    <bpmn:startEvent id="start"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="task"/>
    <bpmn:serviceTask id="task">
      <bpmn:extensionElements><zeebe:taskDefinition type="work" retries="3"/></bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="task" targetRef="end"/>
    <bpmn:endEvent id="end"/>
  </bpmn:process>
</bpmn:definitions>"#;

/// Longest wait for the broker to come up or go down.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// A free loopback TCP port (bound and released; a race is unlikely).
pub fn free_port() -> u16 {
    // The kernel may hand the same ephemeral port out again once the probe
    // closes: never give one out twice in this process (a broker with two
    // equal ports refuses its configuration).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().expect("port list");
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Starts of `waggle dev` before a test gives up (see [`Broker::start_dev_in`]).
const START_ATTEMPTS: u32 = 3;

/// A running `waggle` process.
pub struct Broker {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub gateway_port: u16,
    pub management_port: u16,
    pub rest_port: u16,
}

impl Broker {
    /// Starts `waggle dev` in a fresh temporary directory with free ports and
    /// the extra environment `env`.
    pub fn start_dev(env: &[(&str, String)]) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_dev_in(dir, env)
    }

    /// Starts `waggle dev` in `dir`. A port that was free when chosen may be
    /// taken by another process before the broker binds it (the broker then
    /// exits at once, naming the port): the start is tried again with other
    /// ports, up to [`START_ATTEMPTS`] times.
    pub fn start_dev_in(mut dir: tempfile::TempDir, env: &[(&str, String)]) -> Broker {
        for attempt in 1..=START_ATTEMPTS {
            let mut broker = Self::spawn_dev_in(dir, env);
            let start = Instant::now();
            while start.elapsed() < MAX_WAIT {
                if let Some((200, _)) = broker.http_get("/startup") {
                    return broker;
                }
                if let Some(status) = broker.child.try_wait().expect("try_wait") {
                    assert!(
                        attempt < START_ATTEMPTS,
                        "waggle dev exited with {status} {START_ATTEMPTS} times"
                    );
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if broker.child.try_wait().expect("try_wait").is_none() {
                panic!("/startup did not answer 200 within {MAX_WAIT:?}");
            }
            dir = std::mem::replace(&mut broker.dir, tempfile::tempdir().expect("temp dir"));
        }
        unreachable!("the loop returns or panics")
    }

    /// Starts `waggle dev` in `dir` without waiting for it.
    pub fn spawn_dev_in(dir: tempfile::TempDir, env: &[(&str, String)]) -> Broker {
        let gateway_port = free_port();
        let management_port = free_port();
        let internal_port = free_port();
        let rest_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_waggle"));
        command
            .arg("dev")
            .current_dir(dir.path())
            .env("WAGGLE_NETWORK_HOST", "127.0.0.1")
            .env("WAGGLE_NETWORK_GATEWAY_PORT", gateway_port.to_string())
            .env(
                "WAGGLE_NETWORK_MANAGEMENT_PORT",
                management_port.to_string(),
            )
            .env("WAGGLE_NETWORK_INTERNAL_PORT", internal_port.to_string())
            .env("WAGGLE_REST_PORT", rest_port.to_string())
            .env("WAGGLE_RUNTIME_SHARDS", "1")
            .env("WAGGLE_RUNTIME_PIN_SHARDS", "false")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start waggle dev");
        Broker {
            child,
            dir,
            gateway_port,
            management_port,
            rest_port,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn gateway_uri(&self) -> String {
        format!("http://127.0.0.1:{}", self.gateway_port)
    }

    /// GET `path` on the management port: (status code, body).
    pub fn http_get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.management_port, path)
    }

    /// Waits until `path` answers 200.
    pub fn wait_http_ok(&self, path: &str) {
        let start = Instant::now();
        while start.elapsed() < MAX_WAIT {
            if let Some((200, _)) = self.http_get(path) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{path} did not answer 200 within {MAX_WAIT:?}");
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: signalling a child process we started, by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        wait_exit(&mut self.child)
    }
}

impl Broker {
    /// Sends SIGTERM, waits for the exit, and hands back the directory (with
    /// the data) for a restart.
    pub fn terminate_keeping_dir(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        // SAFETY: signalling a child process we started, by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_exit(&mut self.child);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        (status, dir)
    }

    /// Kills the process with SIGKILL and hands back the directory.
    pub fn kill_keeping_dir(mut self) -> tempfile::TempDir {
        // SAFETY: signalling a child process we started, by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = wait_exit(&mut self.child);
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends SIGTERM to `child` and waits (bounded) for its exit status.
pub fn terminate_child(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: signalling a child process we started, by its pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    wait_exit(child)
}

/// Waits (bounded) for `child` to exit.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    while start.elapsed() < MAX_WAIT {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("the broker did not exit within {MAX_WAIT:?}");
}

/// A minimal HTTP/1.0 GET against 127.0.0.1:`port`.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    http_response(&text)
}

/// The status code and body of an HTTP response.
pub fn http_response(text: &str) -> Option<(u16, String)> {
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// `method path` with a JSON `body` on the management port: (status, body).
pub fn http_request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    http_request_with(port, method, path, "", body)
}

/// [`http_request`] with `headers` (each line ending in `\r\n`).
pub fn http_request_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         {headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (code, body.to_string())
}

/// Runs `waggle` with `args` to completion: (success, stdout, stderr).
pub fn run_waggle(dir: &Path, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_waggle"));
    command.args(args).current_dir(dir);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run waggle");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A current-thread tokio runtime for a test's client calls.
/// The `Authorization` header value of HTTP Basic credentials.
pub fn basic(name: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {encoded}")
}

/// Waits until `check` holds, for at most 30 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let max_wait = std::time::Duration::from_secs(30);
    let start = std::time::Instant::now();
    while start.elapsed() < max_wait {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what}: not within {max_wait:?}");
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A gateway client of `broker`.
pub async fn connect(
    broker: &Broker,
) -> node::gateway::proto::gateway_client::GatewayClient<tonic::transport::Channel> {
    node::gateway::proto::gateway_client::GatewayClient::connect(broker.gateway_uri())
        .await
        .expect("connect")
}

/// Deploys [`ONE_TASK`].
pub async fn deploy_one_task(
    client: &mut node::gateway::proto::gateway_client::GatewayClient<tonic::transport::Channel>,
) {
    use node::gateway::proto;
    client
        .deploy_resource(proto::DeployResourceRequest {
            resources: vec![proto::Resource {
                name: "one_task.bpmn".into(),
                content: ONE_TASK.as_bytes().to_vec(),
            }],
            tenant_id: String::new(),
        })
        .await
        .expect("deploy");
}

/// Creates an instance of the latest [`ONE_TASK`].
pub async fn create_one_task(
    client: &mut node::gateway::proto::gateway_client::GatewayClient<tonic::transport::Channel>,
) -> node::gateway::proto::CreateProcessInstanceResponse {
    client
        .create_process_instance(node::gateway::proto::CreateProcessInstanceRequest {
            bpmn_process_id: "one_task".into(),
            version: -1,
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner()
}

/// Activates every job of type `job_type` there is, for 10 minutes:
/// instance key → job key.
pub async fn activate_all(
    client: &mut node::gateway::proto::gateway_client::GatewayClient<tonic::transport::Channel>,
    job_type: &str,
) -> std::collections::BTreeMap<i64, i64> {
    let mut jobs = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let mut stream = client
            .activate_jobs(node::gateway::proto::ActivateJobsRequest {
                r#type: job_type.into(),
                worker: "test".into(),
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
            jobs.extend(batch.jobs.iter().map(|j| (j.process_instance_key, j.key)));
        }
        if got == 0 {
            break;
        }
    }
    jobs
}

/// Where [`tear_log_tail`] cut a partition log.
#[derive(Debug)]
pub struct TornTail {
    /// The segment file torn.
    pub segment: PathBuf,
    /// Start of the first damaged frame: where recovery must say the valid
    /// frames end.
    pub frame_offset: u64,
    /// Index of the last frame left whole.
    pub last_kept_index: u64,
    /// Whole frames that followed the damaged one (zeroed).
    pub zeroed_frames: u64,
}

/// Tears the tail of the partition log in `log_dir` as a crash on a disk
/// that lied about a sync would: from a byte inside the payload of the
/// frame holding the `cut_bytes`-th byte before the end of the valid data
/// (a byte that is not already zero), everything to the end of the last
/// segment holding frames becomes zeros.
pub fn tear_log_tail(log_dir: &Path, cut_bytes: u64) -> TornTail {
    let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(log_dir)
        .expect("log directory")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            match storage::parse_name(&name) {
                Some(storage::FileKind::Segment(seq)) => Some((seq, e.path())),
                _ => None,
            }
        })
        .collect();
    segments.sort();
    for (seq, path) in segments.into_iter().rev() {
        let mut bytes = std::fs::read(&path).expect("read segment");
        // (offset, index, payload range) of every valid frame.
        let mut frames = Vec::new();
        let mut pos = 0usize;
        while let storage::frame::Decoded::Valid { header, payload } =
            storage::frame::decode(&bytes[pos..], seq)
        {
            let start = pos + storage::frame::FRAME_HEADER_BYTES;
            frames.push((pos, header.index.get(), start..start + payload.len()));
            pos = start + payload.len();
        }
        let end = pos as u64;
        let from = frames
            .iter()
            .position(|(offset, _, payload)| {
                *offset as u64 + payload.len() as u64 >= end.saturating_sub(cut_bytes)
            })
            .unwrap_or(frames.len());
        for (i, (offset, index, payload)) in frames.iter().enumerate().skip(from) {
            let Some(at) = payload.clone().find(|&b| bytes[b] != 0) else {
                continue;
            };
            bytes[at..].fill(0);
            std::fs::write(&path, &bytes).expect("write the torn segment");
            return TornTail {
                segment: path,
                frame_offset: *offset as u64,
                last_kept_index: index - 1,
                zeroed_frames: (frames.len() - i - 1) as u64,
            };
        }
    }
    panic!(
        "no frame with a non-zero payload byte in {}",
        log_dir.display()
    );
}

/// Starts `waggle` with `args` in `dir`, its log (stderr) going to `log`.
pub fn spawn_waggle_logged(dir: &Path, args: &[&str], env: &[(&str, String)], log: &Path) -> Child {
    let file = std::fs::File::create(log).expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_waggle"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(file);
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("start waggle")
}

/// A deployment whose XML nests `levels` elements deep (35 KB of it once
/// overflowed a shard's stack on every replica).
pub fn deeply_nested_deployment(levels: usize) -> node::gateway::proto::DeployResourceRequest {
    use node::gateway::proto;
    let mut xml = String::with_capacity(levels * 8 + 256);
    xml.push_str(r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"><bpmn:process id="deep" isExecutable="true">"#);
    xml.push_str(&"<a>".repeat(levels));
    xml.push_str(&"</a>".repeat(levels));
    xml.push_str("</bpmn:process></bpmn:definitions>");
    proto::DeployResourceRequest {
        resources: vec![proto::Resource {
            name: "deep.bpmn".into(),
            content: xml.into_bytes(),
        }],
        tenant_id: String::new(),
    }
}

/// A process `nested` whose sub-processes nest `levels` deep around a
/// service task of type `work`.
pub fn nested_sub_processes(levels: usize) -> Vec<u8> {
    let mut body = String::from(r#"<bpmn:startEvent id="start"/>"#);
    for i in 0..levels {
        body.push_str(&format!(
            r#"<bpmn:subProcess id="s{i}"><bpmn:startEvent id="st{i}"/>"#
        ));
    }
    let last = levels - 1;
    body.push_str(&format!(
        r#"<bpmn:serviceTask id="task"><bpmn:extensionElements><zeebe:taskDefinition type="work"/></bpmn:extensionElements></bpmn:serviceTask><bpmn:sequenceFlow id="inner" sourceRef="st{last}" targetRef="task"/>"#
    ));
    for i in (0..levels).rev() {
        if i < last {
            let next = i + 1;
            body.push_str(&format!(
                r#"<bpmn:sequenceFlow id="in{i}" sourceRef="st{i}" targetRef="s{next}"/>"#
            ));
        }
        body.push_str("</bpmn:subProcess>");
    }
    format!(
        r#"<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d"><bpmn:process id="nested" isExecutable="true">{body}<bpmn:endEvent id="end"/><bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="s0"/><bpmn:sequenceFlow id="f2" sourceRef="s0" targetRef="end"/></bpmn:process></bpmn:definitions>"#
    )
    .into_bytes()
}

/// The sum of the samples of metric `name` (exposition text `metrics`) whose
/// labels contain `labels` (e.g. `kind="JOB_BATCH"`); 0 without any.
pub fn metric_sum(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{') && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
