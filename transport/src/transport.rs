//! Starting a transport: validates the configuration, builds the TLS and
//! QUIC configurations (errors surface to the caller, not to a log), then
//! runs a dedicated network thread with its own tokio runtime (1 or 2
//! threads). The thread owns the QUIC endpoint, the accept loop and one
//! link task per peer; shards talk to it only through the bounded channels
//! of [`TransportHandle`] and [`Inbound`], so callers need no tokio runtime.

use crate::accept::accept_loop;
use crate::close_code::CloseCode;
use crate::config::{ConnectionTiming, TransportConfig};
use crate::context::{NetContext, PeerSlot, MAX_PENDING_ACCEPTED};
use crate::error::StartError;
use crate::handle::TransportHandle;
use crate::inbound::Inbound;
use crate::link::run_link;
use crate::peer_queue::PeerQueue;
use crate::stats::Counters;
use crate::tls::{quic_client_crypto, quic_server_crypto};
use quinn::{IdleTimeout, VarInt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Receive window of one stream, in bytes: enough for 200 MiB/s at 40 ms RTT.
pub const STREAM_RECEIVE_WINDOW_BYTES: u32 = 8 * 1024 * 1024;

/// Receive window of one connection (all streams), in bytes.
pub const CONNECTION_RECEIVE_WINDOW_BYTES: u32 = 16 * 1024 * 1024;

/// Unacknowledged bytes in flight per connection.
pub const SEND_WINDOW_BYTES: u64 = 16 * 1024 * 1024;

/// Concurrent unidirectional streams a peer may open (we open three).
pub const MAX_UNI_STREAMS_PER_CONNECTION: u32 = 4;

/// Time given at shutdown for close frames to reach the peers.
pub const SHUTDOWN_DRAIN_MS: u64 = 250;

/// Entry point of the crate.
#[derive(Debug)]
pub struct Transport;

impl Transport {
    /// Binds `config.listen_addr` and starts the transport.
    pub fn start(config: TransportConfig) -> Result<(TransportHandle, Inbound), StartError> {
        let socket =
            std::net::UdpSocket::bind(config.listen_addr).map_err(|source| StartError::Bind {
                addr: config.listen_addr,
                source,
            })?;
        Transport::start_with_socket(config, socket)
    }

    /// Starts the transport on an already bound socket (for example bound
    /// to port 0 to learn the address before configuring peers).
    pub fn start_with_socket(
        config: TransportConfig,
        socket: std::net::UdpSocket,
    ) -> Result<(TransportHandle, Inbound), StartError> {
        config.validate()?;
        let transport_config = Arc::new(quic_transport_config(&config.timing));
        let mut server_config =
            quinn::ServerConfig::with_crypto(Arc::new(quic_server_crypto(&config.tls)?));
        server_config.transport_config(transport_config.clone());
        let mut client_config =
            quinn::ClientConfig::new(Arc::new(quic_client_crypto(&config.tls)?));
        client_config.transport_config(transport_config);
        let bind_error = |source| StartError::Bind {
            addr: config.listen_addr,
            source,
        };
        let local_addr = socket.local_addr().map_err(bind_error)?;

        let counters = Arc::new(Counters::default());
        let mut queues = BTreeMap::new();
        let mut slots = BTreeMap::new();
        let mut links = Vec::new();
        for (&peer, &addr) in &config.peers {
            let (queue, receivers) = PeerQueue::new(
                config.queues.outbound_frames_per_class,
                config.queues.outbound_bytes_per_peer,
            );
            let queue = Arc::new(queue);
            let (accepted_tx, accepted_rx) = mpsc::channel(MAX_PENDING_ACCEPTED);
            queues.insert(peer, queue.clone());
            slots.insert(
                peer,
                PeerSlot {
                    addr,
                    accepted: accepted_tx,
                },
            );
            links.push((peer, queue, receivers, accepted_rx));
        }
        let bound = config.queues.inbound_frames_per_class;
        let (replication_tx, replication_rx) = flume::bounded(bound);
        let (command_tx, command_rx) = flume::bounded(bound);
        let (control_tx, control_rx) = flume::bounded(bound);
        let inbound = Inbound::new([replication_rx, command_rx, control_rx]);
        let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), StartError>>(1);

        let node_id = config.node_id;
        let network_threads = config.network_threads;
        let cluster_name = config.cluster_name.clone();
        let timing = config.timing;
        let listen_addr = config.listen_addr;
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name(format!("waggle-net-{node_id}"))
            .spawn(move || {
                let runtime = if network_threads == 1 {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                } else {
                    tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(network_threads)
                        .thread_name(format!("waggle-net-{node_id}"))
                        .enable_all()
                        .build()
                };
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(StartError::Thread(error)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let endpoint = match quinn::Endpoint::new(
                        quinn::EndpointConfig::default(),
                        Some(server_config),
                        socket,
                        Arc::new(quinn::TokioRuntime),
                    ) {
                        Ok(endpoint) => endpoint,
                        Err(source) => {
                            let _ = ready_tx.send(Err(StartError::Bind {
                                addr: listen_addr,
                                source,
                            }));
                            return;
                        }
                    };
                    let ctx = Arc::new(NetContext {
                        node_id,
                        cluster_name,
                        endpoint: endpoint.clone(),
                        client_config,
                        peers: slots,
                        inbound: [replication_tx, command_tx, control_tx],
                        counters: thread_counters,
                        timing,
                    });
                    tokio::spawn(accept_loop(ctx.clone()));
                    for (peer, queue, receivers, accepted) in links {
                        tokio::spawn(run_link(ctx.clone(), peer, queue, receivers, accepted));
                    }
                    drop(ctx);
                    let _ = ready_tx.send(Ok(()));
                    // Err means every handle is gone: shut down as well.
                    let _ = shutdown_rx.wait_for(|stop| *stop).await;
                    endpoint.close(CloseCode::Shutdown.code(), b"node shutting down");
                    let drain = Duration::from_millis(SHUTDOWN_DRAIN_MS);
                    let _ = tokio::time::timeout(drain, endpoint.wait_idle()).await;
                });
                // Dropping the runtime cancels every task; their queues and
                // the inbound senders go with them.
            })
            .map_err(StartError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let _ = thread.join();
                return Err(error);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(StartError::Thread(std::io::Error::other(
                    "network thread exited during start",
                )));
            }
        }
        let handle =
            TransportHandle::new(node_id, local_addr, queues, counters, shutdown_tx, thread);
        Ok((handle, inbound))
    }
}

fn quic_transport_config(timing: &ConnectionTiming) -> quinn::TransportConfig {
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_millis(timing.keep_alive_interval_ms)));
    transport.max_idle_timeout(Some(IdleTimeout::from(VarInt::from_u32(
        u32::try_from(timing.idle_timeout_ms).unwrap_or(u32::MAX),
    ))));
    transport.max_concurrent_uni_streams(VarInt::from_u32(MAX_UNI_STREAMS_PER_CONNECTION));
    transport.max_concurrent_bidi_streams(VarInt::from_u32(0));
    transport.stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW_BYTES));
    transport.receive_window(VarInt::from_u32(CONNECTION_RECEIVE_WINDOW_BYTES));
    transport.send_window(SEND_WINDOW_BYTES);
    transport
}
