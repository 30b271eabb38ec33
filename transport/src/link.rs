//! The link to one peer: a task on the network thread that owns the peer's
//! outbound queues for the transport's lifetime and keeps exactly one
//! connection to it. The lower-numbered node dials, redialing with capped
//! exponential backoff after a refusal or loss; the higher-numbered node
//! waits for the verified connections the accept loop hands it. Frames queued
//! while no connection is up wait in the bounded queues.

use crate::backoff::Backoff;
use crate::context::{AcceptedConnection, NetContext};
use crate::identity::{node_dns_name, verify_node_certificate, NodeId};
use crate::peer_queue::{PeerQueue, PeerReceivers};
use crate::session::{self, SessionEnd, SessionPeer};
use crate::stats::Counters;
use rustls::pki_types::CertificateDer;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A connection that stayed up this long resets the backoff.
pub(crate) const STABLE_CONNECTION_MS: u64 = 1_000;

/// Runs the link to `peer` until the runtime is dropped.
pub(crate) async fn run_link(
    ctx: Arc<NetContext>,
    peer: NodeId,
    queue: Arc<PeerQueue>,
    receivers: PeerReceivers,
    mut accepted: mpsc::Receiver<AcceptedConnection>,
) {
    let timing = ctx.timing;
    let mut backoff = Backoff::new(
        timing.reconnect_backoff_initial_ms,
        timing.reconnect_backoff_max_ms,
    );
    let dialer = ctx.dials(peer);
    let mut next: Option<AcceptedConnection> = None;
    loop {
        let (connection, control) = if dialer {
            match dial(&ctx, peer).await {
                Ok(connection) => (connection, None),
                Err(reason) => {
                    let delay = backoff.next_delay();
                    tracing::info!(peer, %reason, delay_ms = delay.as_millis() as u64, "dial failed");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
        } else {
            let accepted_connection = match next.take() {
                Some(accepted_connection) => accepted_connection,
                None => match accepted.recv().await {
                    Some(accepted_connection) => accepted_connection,
                    None => return,
                },
            };
            (
                accepted_connection.connection,
                Some(accepted_connection.control),
            )
        };
        Counters::add(&ctx.counters.connections_established, 1);
        queue.connected.store(true, Ordering::Release);
        *queue.connection.lock().expect("never poisoned") = Some(connection.clone());
        tracing::info!(peer, remote = %connection.remote_address(), "connected");
        let started = Instant::now();
        let session_peer = SessionPeer {
            node_id: peer,
            queue: &queue,
            receivers: &receivers,
            accepted: &mut accepted,
        };
        let end = session::run(&ctx, session_peer, &connection, control).await;
        queue.connected.store(false, Ordering::Release);
        *queue.connection.lock().expect("never poisoned") = None;
        queue.ended.send_modify(|ended| *ended += 1);
        match end {
            SessionEnd::Lost(reason) => {
                Counters::add(&ctx.counters.connections_lost, 1);
                tracing::info!(peer, %reason, "connection lost");
            }
            SessionEnd::Superseded(newer) => {
                tracing::info!(peer, "connection superseded by a newer one");
                next = Some(newer);
            }
        }
        if started.elapsed() >= Duration::from_millis(STABLE_CONNECTION_MS) {
            backoff.reset();
        }
        if dialer {
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
}

/// Dials `peer` and checks that its certificate names it and no other node.
async fn dial(ctx: &NetContext, peer: NodeId) -> Result<quinn::Connection, String> {
    let slot = ctx.peers.get(&peer).expect("links exist only for peers");
    let server_name = node_dns_name(peer, &ctx.cluster_name);
    let connecting = ctx
        .endpoint
        .connect_with(ctx.client_config.clone(), slot.addr, &server_name)
        .map_err(|e| format!("cannot dial {}: {e}", slot.addr))?;
    let connection = connecting
        .await
        .map_err(|e| format!("handshake with {} failed: {e}", slot.addr))?;
    let certs = connection
        .peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok());
    let verified = match certs.as_deref().and_then(|certs| certs.first()) {
        Some(leaf) => {
            verify_node_certificate(leaf, peer, &ctx.cluster_name).map_err(|e| e.to_string())
        }
        None => Err("the peer presented no certificate".to_owned()),
    };
    if let Err(reason) = verified {
        crate::close_code::close(
            &connection,
            crate::close_code::CloseCode::IdentityRefused,
            &reason,
        );
        Counters::add(&ctx.counters.connections_refused, 1);
        return Err(reason);
    }
    Ok(connection)
}
