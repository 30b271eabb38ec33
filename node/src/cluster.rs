//! The broker's side of node-to-node traffic over `transport` (QUIC with
//! mutual TLS): Raft envelopes between shards of different nodes, client
//! commands forwarded by a gateway to the partition's leader, and commands
//! one partition sends another (deployment distribution).
//!
//! Threads: the transport runs its own network thread; the inbound router
//! runs on the tokio edge threads and hands frames to shards over their
//! request channels; shards send with the transport's non-blocking
//! `try_send` (a full queue drops the frame: Raft retransmits, a forwarded
//! command times out and the gateway retries).
//!
//! Frames of the `Command` traffic class:
//!
//! ```text
//! u8  kind   1 = request, 2 = response, 3 = internal command,
//!            4 = jobs available
//! u64 id     request id chosen by the sender (0 for internal commands)
//! ..  body   request: JSON PartitionCommand; response: see `encode_answer`;
//!            internal: engine::Record::encode;
//!            jobs available: job types, each u16 length + UTF-8
//! ```
//!
//! A Raft envelope is split per group on receipt, since the shards of two
//! nodes need not hold the same partitions.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use tokio::sync::oneshot;
use transport::{Inbound, TlsMaterial, TrafficClass, Transport, TransportConfig, TransportHandle};

use crate::command::{CommandError, CommandReply, PartitionCommand};
use crate::config::Config;
use crate::gateway::proto;
use crate::placement::PartitionId;

/// Forwarded requests waiting for their answer, per node.
pub const MAX_FORWARDED_IN_FLIGHT: usize = 1 << 16;

const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;
const KIND_INTERNAL: u8 = 3;
const KIND_JOBS_AVAILABLE: u8 = 4;
/// A forwarded command in postcard (the binary serde encoding the log's
/// records use) instead of JSON: a fraction of the bytes and of the CPU.
const KIND_REQUEST_BINARY: u8 = 5;
/// A job pushed to a stream of the receiving node: partition (u32 LE),
/// stream id (u64 LE), the protobuf `ActivatedJob`.
const KIND_PUSHED_JOB: u8 = 6;

/// How a forwarded command is encoded: in binary for nodes that read it
/// (version [`BINARY_COMMANDS_SINCE`] and later, as gossiped), else in JSON,
/// which every version reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandEncoding {
    /// JSON (releases before 0.2.0 read only this).
    Json,
    /// postcard.
    Binary,
}

/// The first version that reads binary forwarded commands.
pub const BINARY_COMMANDS_SINCE: (u64, u64) = (0, 2);

impl CommandEncoding {
    /// The encoding a node of `version` reads; JSON when unknown.
    pub fn for_version(version: Option<&str>) -> Self {
        let parsed = version.and_then(|v| {
            let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
            Some((parts.next()??, parts.next()??))
        });
        match parsed {
            Some(v) if v >= BINARY_COMMANDS_SINCE => CommandEncoding::Binary,
            _ => CommandEncoding::Json,
        }
    }

    fn encode(self, command: &PartitionCommand) -> (u8, Vec<u8>) {
        match self {
            CommandEncoding::Json => (
                KIND_REQUEST,
                serde_json::to_vec(command).expect("commands serialise"),
            ),
            CommandEncoding::Binary => (
                KIND_REQUEST_BINARY,
                postcard::to_allocvec(command).expect("commands serialise"),
            ),
        }
    }
}

/// Decodes a forwarded command of frame kind `kind`.
fn decode_command(kind: u8, body: &[u8]) -> Result<PartitionCommand, String> {
    if kind == KIND_REQUEST_BINARY {
        postcard::from_bytes(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
}

/// The node-to-node TLS files named by `[tls]`.
pub fn tls_material(config: &Config) -> Result<TlsMaterial> {
    let mut cas: Vec<&std::path::Path> = vec![&config.tls.ca_file];
    if !config.tls.extra_ca_file.as_os_str().is_empty() {
        cas.push(&config.tls.extra_ca_file);
    }
    TlsMaterial::from_files(&cas, &config.tls.cert_file, &config.tls.key_file)
        .context("cannot load the TLS files named by tls.ca_file, tls.cert_file and tls.key_file")
}

/// Starts the transport when the cluster has more than one node.
pub fn start_transport(config: &Config) -> Result<Option<(TransportHandle, Inbound)>> {
    let c = &config.cluster;
    if c.size <= 1 {
        return Ok(None);
    }
    let tls = tls_material(config)?;
    let listen = SocketAddr::new(
        config
            .network
            .host
            .parse()
            .expect("network.host is validated as an IP address"),
        config.network.internal_port,
    );
    let mut transport = TransportConfig::new(c.node_id, listen, c.name.clone(), tls);
    transport.timing.idle_timeout_ms = c.peer_timeout_ms;
    transport.timing.keep_alive_interval_ms = (c.peer_timeout_ms / 4).max(1);
    for (node, point) in c.contact_points.iter().enumerate() {
        if node as u32 == c.node_id {
            continue;
        }
        let addr = point
            .to_socket_addrs()
            .with_context(|| format!("cluster.contact_points[{node}]: cannot resolve `{point}`"))?
            .next()
            .with_context(|| {
                format!("cluster.contact_points[{node}]: `{point}` resolves to no address")
            })?;
        transport.peers.insert(node as u32, addr);
    }
    let (handle, inbound) = Transport::start(transport).with_context(|| {
        format!("cannot start node-to-node QUIC on {listen} (network.internal_port)")
    })?;
    Ok(Some((handle, inbound)))
}

/// Splits `envelope` into envelopes of at most `max_bytes` encoded, so that
/// none exceeds the transport's frame limit.
pub fn encode_envelope(envelope: raft::Envelope, max_bytes: usize) -> Vec<Bytes> {
    let whole = raft::encode(&envelope);
    if whole.len() <= max_bytes || envelope.messages.len() <= 1 {
        return vec![whole];
    }
    let (from, to) = (envelope.from, envelope.to);
    envelope
        .messages
        .into_iter()
        .map(|m| {
            raft::encode(&raft::Envelope {
                from,
                to,
                messages: vec![m],
            })
        })
        .collect()
}

/// Encodes the answer to a forwarded request.
pub fn encode_answer(answer: &Result<CommandReply, CommandError>) -> Vec<u8> {
    let mut out = Vec::new();
    match answer {
        Err(e) => {
            out.push(0);
            out.extend_from_slice(&serde_json::to_vec(e).expect("errors serialise"));
        }
        Ok(CommandReply::Deployed(r)) => {
            out.push(1);
            r.encode(&mut out).expect("a Vec grows");
        }
        Ok(CommandReply::Created(r)) => {
            out.push(2);
            r.encode(&mut out).expect("a Vec grows");
        }
        Ok(CommandReply::Completed(r)) => {
            out.push(3);
            r.encode(&mut out).expect("a Vec grows");
        }
        Ok(CommandReply::Jobs(jobs)) => {
            out.push(4);
            proto::ActivateJobsResponse { jobs: jobs.clone() }
                .encode(&mut out)
                .expect("a Vec grows");
        }
        Ok(CommandReply::Key(key)) => {
            out.push(5);
            out.extend_from_slice(&key.to_le_bytes());
        }
        Ok(CommandReply::Done) => out.push(6),
        Ok(CommandReply::Evaluated(r)) => {
            out.push(7);
            r.encode(&mut out).expect("a Vec grows");
        }
    }
    out
}

/// Decodes what [`encode_answer`] wrote.
pub fn decode_answer(bytes: &[u8]) -> Result<CommandReply, CommandError> {
    let bad = |what: String| {
        CommandError::Internal(format!("a forwarded answer does not decode: {what}"))
    };
    let (&tag, body) = bytes.split_first().ok_or_else(|| bad("empty".into()))?;
    let reply = match tag {
        0 => return Err(serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?),
        1 => CommandReply::Deployed(Message::decode(body).map_err(|e| bad(e.to_string()))?),
        2 => CommandReply::Created(Message::decode(body).map_err(|e| bad(e.to_string()))?),
        3 => CommandReply::Completed(Message::decode(body).map_err(|e| bad(e.to_string()))?),
        4 => {
            let r: proto::ActivateJobsResponse =
                Message::decode(body).map_err(|e| bad(e.to_string()))?;
            CommandReply::Jobs(r.jobs)
        }
        5 => CommandReply::Key(i64::from_le_bytes(
            body.try_into()
                .map_err(|_| bad(format!("key of {} bytes", body.len())))?,
        )),
        6 => CommandReply::Done,
        7 => CommandReply::Evaluated(Message::decode(body).map_err(|e| bad(e.to_string()))?),
        other => return Err(bad(format!("unknown tag {other}"))),
    };
    Ok(reply)
}

fn frame(kind: u8, id: u64, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(9 + body.len());
    out.put_u8(kind);
    out.put_u64_le(id);
    out.put_slice(body);
    out.freeze()
}

/// A forwarded command waiting for its answer.
#[derive(Debug)]
struct Waiting {
    node: u32,
    partition: PartitionId,
    answer: oneshot::Sender<Result<CommandReply, CommandError>>,
}

/// Sends commands to other nodes and matches their answers. Shared by the
/// gateway and the inbound router; lives as long as the broker.
///
/// A command waits for its answer until the request's deadline, unless the
/// connection to the node ends (the node died or is cut off: noticed within
/// `cluster.peer_timeout_ms`) or another node is known to lead the
/// partition: then it fails at once with `Unavailable`, which the
/// dispatcher retries on the new leader. Its outcome on the old leader is
/// unknown, as for any command whose leader is lost: it may have been
/// applied there.
#[derive(Debug)]
pub struct Forwarder {
    handle: TransportHandle,
    next_id: AtomicU64,
    waiting: Mutex<HashMap<u64, Waiting>>,
}

impl Forwarder {
    /// A forwarder over `handle`.
    pub fn new(handle: TransportHandle) -> Arc<Self> {
        Arc::new(Forwarder {
            handle,
            next_id: AtomicU64::new(1),
            waiting: Mutex::new(HashMap::new()),
        })
    }

    /// The transport.
    pub fn handle(&self) -> &TransportHandle {
        &self.handle
    }

    /// Sends `command` for `partition` to `node` and waits up to `timeout`.
    pub async fn forward(
        &self,
        node: u32,
        partition: PartitionId,
        command: &PartitionCommand,
        timeout: Duration,
        encoding: CommandEncoding,
    ) -> Result<CommandReply, CommandError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        // Watched from before the send: a connection ending after it may
        // have taken the command with it.
        let ends = self.handle.connection_ends(node);
        {
            let mut waiting = self.waiting.lock().expect("never poisoned");
            if waiting.len() >= MAX_FORWARDED_IN_FLIGHT {
                return Err(CommandError::ResourceExhausted(format!(
                    "{}: {MAX_FORWARDED_IN_FLIGHT} forwarded commands are in flight on this node",
                    command.name()
                )));
            }
            let waiter = Waiting {
                node,
                partition,
                answer: tx,
            };
            waiting.insert(id, waiter);
        }
        let (kind, body) = encoding.encode(command);
        let sent = self.handle.try_send(
            node,
            TrafficClass::Command,
            partition,
            frame(kind, id, &body),
        );
        if let Err(e) = sent {
            self.waiting.lock().expect("never poisoned").remove(&id);
            return Err(CommandError::Unavailable(format!(
                "{}: cannot forward to node {node}, the leader of partition {partition}: {e}",
                command.name()
            )));
        }
        let connection_ended = async move {
            match ends {
                // An error means the transport stopped: no answer comes either.
                Some(mut ends) => drop(ends.changed().await),
                None => std::future::pending().await,
            }
        };
        let answer = tokio::select! {
            answer = tokio::time::timeout(timeout, rx) => answer,
            () = connection_ended => {
                self.waiting.lock().expect("never poisoned").remove(&id);
                return Err(CommandError::Unavailable(format!(
                    "{}: the connection to node {node}, the leader of partition {partition}, \
                     ended with the command in flight",
                    command.name()
                )));
            }
        };
        self.waiting.lock().expect("never poisoned").remove(&id);
        match answer {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CommandError::Aborted(format!(
                "{}: the forwarded command to node {node} was dropped",
                command.name()
            ))),
            Err(_) => Err(CommandError::Timeout(format!(
                "{}: node {node} did not answer for partition {partition} within {} ms",
                command.name(),
                timeout.as_millis()
            ))),
        }
    }

    /// `leader` now leads `partition`: commands forwarded to another node
    /// for it stop waiting (`Unavailable`, retried on the new leader).
    pub fn leader_changed(&self, partition: PartitionId, leader: u32) {
        let mut waiting = self.waiting.lock().expect("never poisoned");
        let stale: Vec<u64> = waiting
            .iter()
            .filter(|(_, w)| w.partition == partition && w.node != leader)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            let w = waiting.remove(&id).expect("listed");
            let _ = w.answer.send(Err(CommandError::Unavailable(format!(
                "node {} no longer leads partition {partition} (node {leader} does)",
                w.node
            ))));
        }
    }

    /// Sends an engine command to `partition` on `node` (no answer).
    pub fn send_internal(&self, node: u32, partition: PartitionId, record: &engine::Record) {
        let mut body = Vec::new();
        record.encode(&mut body);
        if let Err(e) = self.handle.try_send(
            node,
            TrafficClass::Command,
            partition,
            frame(KIND_INTERNAL, 0, &body),
        ) {
            tracing::warn!(node, partition, "cannot send a distributed command: {e}");
        }
    }

    /// Tells `node` that `partition`, led here, has new activatable jobs of
    /// `types` (a hint for its waiting activations; dropped when the queue is
    /// full).
    pub fn send_jobs_available(&self, node: u32, partition: PartitionId, types: &[Arc<str>]) {
        let _ = self.handle.try_send(
            node,
            TrafficClass::Command,
            partition,
            frame(KIND_JOBS_AVAILABLE, 0, &encode_job_types(types)),
        );
    }

    /// Sends a job pushed to stream `stream_id` to its owner `node`; false
    /// when it could not be queued.
    pub fn send_pushed_job(
        &self,
        node: u32,
        partition: PartitionId,
        stream_id: u64,
        job: &proto::ActivatedJob,
    ) -> bool {
        let mut body = Vec::with_capacity(12 + job.encoded_len());
        body.extend_from_slice(&partition.to_le_bytes());
        body.extend_from_slice(&stream_id.to_le_bytes());
        job.encode(&mut body).expect("a Vec grows");
        self.handle
            .try_send(
                node,
                TrafficClass::Command,
                partition,
                frame(KIND_PUSHED_JOB, 0, &body),
            )
            .is_ok()
    }

    fn answered(&self, id: u64, answer: Result<CommandReply, CommandError>) {
        if let Some(w) = self.waiting.lock().expect("never poisoned").remove(&id) {
            let _ = w.answer.send(answer);
        }
    }
}

/// What the inbound router needs from the rest of the broker.
pub trait Local: Send + Sync + 'static {
    /// Hands a Raft message for a local partition to its shard.
    fn raft(&self, envelope: raft::Envelope);
    /// Runs a command on a local partition (this node must lead it).
    fn execute(
        &self,
        partition: PartitionId,
        command: PartitionCommand,
    ) -> impl std::future::Future<Output = Result<CommandReply, CommandError>> + Send;
    /// Hands an engine command from another partition to a local partition.
    fn internal(&self, partition: PartitionId, record: engine::Record);
    /// `partition` (led by another node) has new activatable jobs of `types`.
    fn jobs_available(&self, partition: PartitionId, types: Vec<String>);
    /// Another node's state (see [`crate::gossip`]).
    fn topology(&self, from: u32, payload: &[u8]);
    /// A job `partition`'s leader pushed to stream `stream_id` of this node.
    fn pushed_job(&self, partition: PartitionId, stream_id: u64, job: proto::ActivatedJob);
}

/// Decodes the body of a pushed-job frame.
fn decode_pushed_job(body: &[u8]) -> Result<(PartitionId, u64, proto::ActivatedJob), String> {
    if body.len() < 12 {
        return Err(format!(
            "{} bytes is shorter than its 12-byte header",
            body.len()
        ));
    }
    let partition = u32::from_le_bytes(body[0..4].try_into().expect("4 bytes"));
    let stream_id = u64::from_le_bytes(body[4..12].try_into().expect("8 bytes"));
    let job = proto::ActivatedJob::decode(&body[12..]).map_err(|e| e.to_string())?;
    Ok((partition, stream_id, job))
}

/// Encodes job types for a jobs-available frame; types longer than
/// `u16::MAX` bytes are left out (the waiters fall back to polling).
fn encode_job_types(types: &[Arc<str>]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in types {
        if let Ok(len) = u16::try_from(t.len()) {
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(t.as_bytes());
        }
    }
    out
}

/// Decodes the body of a jobs-available frame.
fn decode_job_types(mut body: &[u8]) -> Result<Vec<String>, String> {
    let mut types = Vec::new();
    while !body.is_empty() {
        if body.len() < 2 {
            return Err("truncated length".into());
        }
        let len = u16::from_le_bytes([body[0], body[1]]) as usize;
        let rest = &body[2..];
        if rest.len() < len {
            return Err(format!("type of {len} bytes in {} bytes", rest.len()));
        }
        let t = std::str::from_utf8(&rest[..len]).map_err(|e| e.to_string())?;
        types.push(t.to_string());
        body = &rest[len..];
    }
    Ok(types)
}

/// Reads inbound frames until the transport closes.
pub async fn route_inbound<L: Local>(inbound: Inbound, forwarder: Arc<Forwarder>, local: Arc<L>) {
    loop {
        let frame = match inbound.recv().await {
            Ok(f) => f,
            Err(_) => return,
        };
        match frame.class {
            TrafficClass::Replication => match raft::decode(frame.payload) {
                Ok(envelope) => local.raft(envelope),
                Err(e) => {
                    tracing::warn!(from = frame.from, "undecodable Raft envelope dropped: {e}")
                }
            },
            TrafficClass::Command => {
                let payload = frame.payload;
                if payload.len() < 9 {
                    tracing::warn!(
                        from = frame.from,
                        "command frame of {} bytes dropped",
                        payload.len()
                    );
                    continue;
                }
                let id = u64::from_le_bytes(payload[1..9].try_into().expect("8 bytes"));
                let body = payload.slice(9..);
                match payload[0] {
                    kind @ (KIND_REQUEST | KIND_REQUEST_BINARY) => {
                        let command = match decode_command(kind, &body) {
                            Ok(c) => c,
                            Err(e) => {
                                tracing::warn!(
                                    from = frame.from,
                                    "undecodable forwarded command dropped: {e}"
                                );
                                continue;
                            }
                        };
                        let (local, forwarder) = (Arc::clone(&local), Arc::clone(&forwarder));
                        let (from, partition) = (frame.from, frame.partition);
                        tokio::spawn(async move {
                            let answer = local.execute(partition, command).await;
                            let bytes = frame_answer(id, &answer);
                            if let Err(e) = forwarder.handle.try_send(
                                from,
                                TrafficClass::Command,
                                partition,
                                bytes,
                            ) {
                                tracing::warn!(to = from, "cannot return a forwarded answer: {e}");
                            }
                        });
                    }
                    KIND_RESPONSE => forwarder.answered(id, decode_answer(&body)),
                    KIND_JOBS_AVAILABLE => match decode_job_types(&body) {
                        Ok(types) => local.jobs_available(frame.partition, types),
                        Err(e) => tracing::warn!(
                            from = frame.from,
                            "undecodable jobs-available frame dropped: {e}"
                        ),
                    },
                    KIND_PUSHED_JOB => match decode_pushed_job(&body) {
                        Ok((partition, stream_id, job)) => {
                            local.pushed_job(partition, stream_id, job)
                        }
                        Err(e) => tracing::warn!(
                            from = frame.from,
                            "undecodable pushed job dropped (it times out): {e}"
                        ),
                    },
                    KIND_INTERNAL => match engine::Record::decode(&body) {
                        Ok(record) => local.internal(frame.partition, record),
                        Err(e) => tracing::warn!(
                            from = frame.from,
                            "undecodable internal command dropped: {e}"
                        ),
                    },
                    other => tracing::warn!(
                        from = frame.from,
                        "command frame of unknown kind {other} dropped"
                    ),
                }
            }
            TrafficClass::Control => local.topology(frame.from, &frame.payload),
        }
    }
}

fn frame_answer(id: u64, answer: &Result<CommandReply, CommandError>) -> Bytes {
    frame(KIND_RESPONSE, id, &encode_answer(answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::AwaitResult;

    #[test]
    fn answers_survive_the_wire() {
        let cases = vec![
            Ok(CommandReply::Done),
            Ok(CommandReply::Key(-5)),
            Ok(CommandReply::Created(
                proto::CreateProcessInstanceResponse {
                    process_definition_key: 7,
                    bpmn_process_id: "p".into(),
                    version: 2,
                    process_instance_key: 9,
                    tenant_id: "<default>".into(),
                },
            )),
            Ok(CommandReply::Jobs(vec![proto::ActivatedJob {
                key: 3,
                ..Default::default()
            }])),
            Ok(CommandReply::Evaluated(proto::EvaluateDecisionResponse {
                decision_id: "dish".into(),
                decision_output: "\"Stew\"".into(),
                decision_instance_key: 11,
                evaluated_decisions: vec![proto::EvaluatedDecision {
                    decision_id: "dish".into(),
                    ..Default::default()
                }],
                ..Default::default()
            })),
            Err(CommandError::NotLeader {
                partition: 2,
                leader: Some(1),
            }),
        ];
        for case in cases {
            assert_eq!(decode_answer(&encode_answer(&case)), case);
        }
        assert!(decode_answer(&[9, 1, 2]).is_err());
        assert!(decode_answer(&[]).is_err());
    }

    #[test]
    fn commands_survive_the_wire_in_both_encodings() {
        let create = PartitionCommand::CreateInstance {
            definition_key: 0,
            bpmn_process_id: "order".into(),
            version: -1,
            variables: r#"{"total": 12.5, "items": ["a", "b"]}"#.into(),
            await_result: Some(AwaitResult {
                fetch_variables: vec!["total".into()],
                timeout_ms: 5_000,
            }),
            start_instructions: vec!["task".into()],
        };
        let cases = vec![
            create.clone(),
            PartitionCommand::Deploy {
                resources: vec![("p.bpmn".into(), vec![0, 1, 255])],
            },
            PartitionCommand::ActivateJobs {
                job_type: "work".into(),
                worker: "w".into(),
                timeout_ms: 300_000,
                max_jobs: 64,
                fetch_variables: vec![],
            },
            PartitionCommand::CompleteJobWithResult {
                job_key: 2_251_799_813_685_249,
                variables: "{}".into(),
                result: Box::default(),
            },
            PartitionCommand::AsCaller {
                tenant: "<default>".into(),
                tenants: Some(vec!["<default>".into(), "eu".into()]),
                processes: None,
                command: Box::new(create),
            },
        ];
        for command in cases {
            for encoding in [CommandEncoding::Json, CommandEncoding::Binary] {
                let (kind, body) = encoding.encode(&command);
                assert_eq!(
                    decode_command(kind, &body),
                    Ok(command.clone()),
                    "{encoding:?}"
                );
            }
            let json = CommandEncoding::Json.encode(&command).1.len();
            let binary = CommandEncoding::Binary.encode(&command).1.len();
            assert!(binary < json, "{binary} bytes in binary, {json} in JSON");
        }
        assert!(decode_command(KIND_REQUEST_BINARY, &[0xff; 3]).is_err());
        assert!(decode_command(KIND_REQUEST, b"{").is_err());
    }

    #[test]
    fn the_encoding_follows_the_peer_version() {
        let of = CommandEncoding::for_version;
        assert_eq!(of(Some("0.1.0")), CommandEncoding::Json);
        assert_eq!(of(Some("0.2.0")), CommandEncoding::Binary);
        assert_eq!(of(Some("0.10.3")), CommandEncoding::Binary);
        assert_eq!(of(Some("1.0.0")), CommandEncoding::Binary);
        assert_eq!(of(Some("garbage")), CommandEncoding::Json);
        assert_eq!(of(None), CommandEncoding::Json, "not heard from yet");
    }

    #[test]
    fn job_types_survive_the_wire() {
        let types: Vec<Arc<str>> = vec![Arc::from("payment"), Arc::from(""), Arc::from("ü")];
        let decoded = decode_job_types(&encode_job_types(&types)).expect("decodes");
        assert_eq!(decoded, vec!["payment", "", "ü"]);
        assert!(decode_job_types(&[5, 0, b'a']).is_err());
        assert!(decode_job_types(&[1]).is_err());
    }

    #[test]
    fn large_envelopes_are_split_per_message() {
        let message = |group| raft::GroupMessage {
            group,
            term: 1,
            body: raft::MessageBody::Heartbeat { commit: 0 },
        };
        let envelope = raft::Envelope {
            from: 1,
            to: 2,
            messages: vec![message(1), message(2), message(3)],
        };
        assert_eq!(encode_envelope(envelope.clone(), 1 << 20).len(), 1);
        let parts = encode_envelope(envelope, 1);
        assert_eq!(parts.len(), 3);
        for part in parts {
            assert_eq!(raft::decode(part).expect("decodes").messages.len(), 1);
        }
    }
}
