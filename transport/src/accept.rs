//! Accepting connections: the TLS handshake (chain to a trusted CA, checked
//! by rustls), then the hello: the dialing peer's first stream must start
//! with a `Hello` frame naming a configured, lower-numbered node that its
//! certificate names. Anything else closes the connection with
//! `CloseCode::IdentityRefused` and a logged reason.

use crate::close_code::{close, CloseCode};
use crate::context::{AcceptedConnection, NetContext};
use crate::frame::{
    parse_hello_payload, FrameHeader, FrameKind, FRAME_HEADER_BYTES, HELLO_PAYLOAD_BYTES,
};
use crate::identity::{verify_node_certificate, NodeId};
use crate::stats::Counters;
use rustls::pki_types::CertificateDer;
use std::sync::Arc;
use std::time::Duration;

/// Accepts connections until the endpoint closes.
pub(crate) async fn accept_loop(ctx: Arc<NetContext>) {
    while let Some(incoming) = ctx.endpoint.accept().await {
        tokio::spawn(handle_incoming(ctx.clone(), incoming));
    }
}

async fn handle_incoming(ctx: Arc<NetContext>, incoming: quinn::Incoming) {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            Counters::add(&ctx.counters.connections_refused, 1);
            tracing::warn!(%remote, %error, "refused connection: TLS handshake failed");
            return;
        }
    };
    match identify(&ctx, &connection).await {
        Ok((node, control)) => {
            let slot = ctx
                .peers
                .get(&node)
                .expect("identify checks the node is a peer");
            let accepted = AcceptedConnection {
                connection: connection.clone(),
                control,
            };
            if slot.accepted.try_send(accepted).is_err() {
                Counters::add(&ctx.counters.connections_refused, 1);
                let reason = format!("too many pending connections from node {node}");
                tracing::warn!(%remote, node, %reason, "refused connection");
                close(&connection, CloseCode::IdentityRefused, &reason);
            }
        }
        Err(reason) => {
            Counters::add(&ctx.counters.connections_refused, 1);
            tracing::warn!(%remote, %reason, "refused connection");
            close(&connection, CloseCode::IdentityRefused, &reason);
        }
    }
}

/// Reads and checks the hello; returns the verified node id and the stream
/// it came on.
async fn identify(
    ctx: &NetContext,
    connection: &quinn::Connection,
) -> Result<(NodeId, quinn::RecvStream), String> {
    let timeout = Duration::from_millis(ctx.timing.hello_timeout_ms);
    let (node, stream) = tokio::time::timeout(timeout, read_hello(connection))
        .await
        .map_err(|_| format!("no hello within {} ms", ctx.timing.hello_timeout_ms))??;
    if !ctx.peers.contains_key(&node) {
        return Err(format!("node {node} is not a configured peer"));
    }
    if node >= ctx.node_id {
        return Err(format!(
            "node {node} must not dial node {}: the lower id dials",
            ctx.node_id
        ));
    }
    let certs = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or_else(|| format!("node {node} presented no certificate"))?;
    let leaf = certs
        .first()
        .ok_or_else(|| format!("node {node} presented an empty certificate chain"))?;
    verify_node_certificate(leaf, node, &ctx.cluster_name).map_err(|e| e.to_string())?;
    Ok((node, stream))
}

async fn read_hello(connection: &quinn::Connection) -> Result<(NodeId, quinn::RecvStream), String> {
    let mut stream = connection
        .accept_uni()
        .await
        .map_err(|e| format!("connection ended before the hello: {e}"))?;
    let mut header = [0u8; FRAME_HEADER_BYTES];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| format!("reading the hello header: {e}"))?;
    let valid = FrameHeader::parse(&header).map_err(|e| format!("bad hello: {e}"))?;
    if valid.kind != FrameKind::Hello || valid.length_bytes != HELLO_PAYLOAD_BYTES {
        return Err(format!(
            "first frame must be a {HELLO_PAYLOAD_BYTES}-byte hello, got {:?} of {} bytes",
            valid.kind, valid.length_bytes
        ));
    }
    let mut payload = [0u8; HELLO_PAYLOAD_BYTES];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| format!("reading the hello payload: {e}"))?;
    Ok((parse_hello_payload(payload), stream))
}
