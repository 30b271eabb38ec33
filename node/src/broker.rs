//! Start-up and shutdown of a broker process.
//!
//! Order: create the data directory and lock it, raise the locked-memory limit,
//! start the shards (each opens and replays its partitions on its own thread),
//! bind the gateway and management listeners meanwhile (so `/health` answers
//! during recovery), mark start-up done once every shard has opened its
//! partitions; sd-notify sends `READY=1` when every partition is ready. On SIGTERM or SIGINT: stop accepting commands,
//! `STOPPING=1`, stop the listeners, let each shard hand leadership over and
//! flush, exit 0.

use std::fs::File;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tonic::codec::CompressionEncoding;

use crate::backpressure::PartitionLimits;
use crate::cluster::{self, Forwarder};
use crate::config::{Config, ConfigError};
use crate::consensus::ExportOptions;
use crate::consensus::OpenOptions;
use crate::context::BrokerContext;
use crate::context::LeaderHints;
use crate::exporter::secondary::{Cleanup, SecondarySink};
use crate::exporter::{ExportSink, Fanout, Sink};
use crate::gateway::bench::RawAppendService;
use crate::gateway::bench_proto::raw_append_server::RawAppendServer;
use crate::gateway::dispatch::Dispatcher;
use crate::gateway::proto::gateway_server::GatewayServer;
use crate::gateway::service::GatewayService;
use crate::gossip::ClusterTopology;
use crate::identity::{ClientTls, Port, TlsListener};
use crate::job_signals::JobSignals;
use crate::metrics::Metrics;
use crate::placement::ClusterShape;
use crate::push_streams::PushStreams;
use crate::shard::{Opening, ShardOptions, Shards};
use crate::view::BrokerView;
use crate::{management, memlock, notify};

/// Tokio worker threads for the network edge (gRPC, HTTP, QUIC).
pub const EDGE_THREADS: usize = 2;
/// Longest wait at shutdown for clients to finish their requests (a long poll,
/// or a client that never acknowledges the HTTP/2 GOAWAY) before the servers
/// are dropped.
pub const MAX_SHUTDOWN_GRACE_MS: u64 = 3_000;
/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "waggle.lock";

/// Whether the broker was started as `waggle dev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `waggle dev`: prints where clients connect.
    Dev,
    /// `waggle broker`.
    Broker,
}

/// Holds an exclusive `flock` on the data directory for the life of the
/// process, so two brokers never share one.
fn lock_data_dir(config: &Config) -> Result<File> {
    let dir = &config.data.directory;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data.directory {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    // SAFETY: the descriptor is valid for the duration of the call.
    let rc = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if rc != 0 {
        anyhow::bail!(
            "data.directory {} is in use by another waggle process ({})",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(file)
}

/// Runs the broker until SIGTERM or SIGINT.
pub fn run(config: Config, mode: Mode) -> Result<()> {
    let _lock = lock_data_dir(&config)?;
    let shards = match config.runtime.shards {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n as usize,
    };
    memlock::raise(memlock::needed_bytes(
        shards,
        config.runtime.io_memory_bytes,
    ))?;
    let shape = ClusterShape {
        cluster_size: config.cluster.size,
        partitions: config.cluster.partitions,
        replication_factor: config.cluster.replication_factor,
    };
    // Absolute, so that errors and `/health` name the directory unambiguously.
    let data_dir = std::fs::canonicalize(&config.data.directory)
        .unwrap_or_else(|_| config.data.directory.clone());
    let start = crate::membership::store::open(
        &data_dir,
        &shape,
        &config.cluster.layout(),
        config.cluster.node_id,
        crate::view::unix_now_ms(),
    )?;
    let members = Arc::new(crate::membership::Members::stored_in(
        start,
        data_dir.clone(),
        config.cluster.node_id,
    ));
    // Without a known configuration the partitions open once it is (see
    // `membership::run`).
    let local_partitions = match members.known() {
        true => members.get().local_partitions(config.cluster.node_id),
        false => Vec::new(),
    };
    let view = Arc::new(BrokerView::new(&local_partitions, shards));
    view.set_configured(members.known());
    let client_tls = load_client_tls(&config)?;
    let transport = cluster::start_transport(&config)?;
    let (forwarder, inbound) = match transport {
        Some((handle, inbound)) => (Some(Forwarder::new(handle)), Some(inbound)),
        None => (None, None),
    };
    let metrics = Arc::new(Metrics::new());
    metrics.register_partitions(&local_partitions);
    if config.cluster.size > 1 {
        // The files loaded fine for the transport above.
        let expiries = cluster::tls_material(&config)
            .and_then(|tls| Ok(tls.expiries()?))
            .context("cannot read the expiry dates of the TLS certificates")?;
        metrics.set_certificate_expiries(&expiries);
    }
    let raft_tick_ms = config.cluster.heartbeat_interval_ms.max(1);
    let raft = raft::RaftConfig {
        election_ticks: (config.cluster.election_timeout_ms / raft_tick_ms).max(2) as u32,
        heartbeat_ticks: 1,
        ..raft::RaftConfig::default()
    };
    let boot_ms = crate::view::unix_now_ms();
    let job_signals = Arc::new(JobSignals::default());
    let push_streams = Arc::new(PushStreams::new(config.cluster.node_id, boot_ms));
    let sinks = start_sinks(&config, crate::config::MAX_PARTITIONS)?;
    let export_sink = sinks.clone();
    let exporter = sinks.map(|sink| ExportOptions {
        sink,
        max_lag_records: config.exporter.max_lag_records as usize,
        position_interval: std::time::Duration::from_millis(config.exporter.position_interval_ms),
    });
    let backups = crate::backup::BackupStore::from_config(&config.backup, config.cluster.node_id)
        .context("cannot open the backup store")?;
    if let Some(store) = &backups {
        crate::backup::probe(store);
    }
    let options = ShardOptions {
        shards,
        pin: config.runtime.pin_shards,
        tick: std::time::Duration::from_millis(config.runtime.tick_ms),
        raft_tick: std::time::Duration::from_millis(raft_tick_ms),
        io_memory_bytes: config.runtime.io_memory_bytes as usize,
        open: OpenOptions {
            node: config.cluster.node_id,
            shape,
            members: Arc::clone(&members),
            dir: data_dir.join("partitions"),
            segment_size_bytes: config.data.segment_size_bytes,
            accept_data_loss: config.data.accept_data_loss,
            raft,
            seed: boot_ms ^ u64::from(config.cluster.node_id),
            boot_ms,
            snapshot_period: std::time::Duration::from_millis(config.data.snapshot_period_ms),
            exporter,
            time_zone: config.engine.time_zone.clone(),
            state_check_entries: config.cluster.state_check_entries,
            driver_bug: None,
        },
        data_dir,
        min_free_space_bytes: config.data.min_free_space_bytes,
        forwarder: forwarder.clone(),
        metrics: Arc::clone(&metrics),
        job_signals: Arc::clone(&job_signals),
        push_streams: Arc::clone(&push_streams),
        backups: backups.clone(),
    };
    let (shard_set, opening) = Shards::start(&options, &local_partitions, Arc::clone(&view))?;
    let auth = Arc::new(crate::identity::Authenticator::new(
        &config.security,
        Arc::clone(&view.directory),
    ));
    let context = Arc::new(BrokerContext {
        limits: PartitionLimits::new(config.backpressure.clone()),
        auth,
        config,
        shape,
        view,
        metrics,
        shards: shard_set,
        leaders: LeaderHints::new(crate::config::MAX_PARTITIONS),
        forwarder: forwarder.clone(),
        export_sink,
        job_signals,
        push_streams,
        topology: ClusterTopology::default(),
        backups,
        membership: members,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(EDGE_THREADS)
        .thread_name("edge")
        .enable_all()
        .build()
        .context("cannot start the network threads")?;
    if let (Some(forwarder), Some(inbound)) = (forwarder, inbound) {
        runtime.spawn(cluster::route_inbound(
            inbound,
            forwarder,
            Arc::clone(&context),
        ));
    }
    if let Some(returns) = context.push_streams.take_returns() {
        let dispatcher = Dispatcher::new(Arc::clone(&context));
        runtime.spawn(crate::push_streams::return_undelivered(dispatcher, returns));
    }
    let result = runtime.block_on(serve(Arc::clone(&context), mode, opening, client_tls));
    context.view.set_stopping();
    context.shards.shut_down();
    if let Some(forwarder) = &context.forwarder {
        forwarder.handle().shutdown();
    }
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// The client ports' TLS (`gateway.tls_*`), if configured; a file that does
/// not load is a configuration error naming its key.
fn load_client_tls(config: &Config) -> Result<Option<Arc<ClientTls>>> {
    let Some(files) = config.gateway.tls_files() else {
        return Ok(None);
    };
    let tls = ClientTls::load(files).map_err(|e| ConfigError::Key {
        key: e.key.into(),
        message: format!("{}: {}", e.path.display(), e.message),
    })?;
    Ok(Some(Arc::new(tls)))
}

/// Accepted gateway connections, with Nagle's algorithm off: a response is a
/// few small HTTP/2 frames, and waiting for the client's delayed ACK would add
/// up to 40 ms to it.
fn gateway_connections(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a gateway connection: {e}");
        }
        Ok(stream)
    })
}

/// Serves `router` on `listener` until `stop`, over TLS if configured.
fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<&Arc<ClientTls>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    fn spawn<L: axum::serve::Listener<Addr = std::net::SocketAddr>>(
        listener: L,
        router: axum::Router,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<std::io::Result<()>> {
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        })
    }
    Ok(match tls {
        None => spawn(listener, router, stop),
        Some(tls) => spawn(
            TlsListener::spawn(listener, Arc::clone(tls), Port::Http, false)?,
            router,
            stop,
        ),
    })
}

async fn serve(
    context: Arc<BrokerContext>,
    mode: Mode,
    opening: Opening,
    client_tls: Option<Arc<ClientTls>>,
) -> Result<()> {
    let config = &context.config;
    let gateway_addr = config.gateway_addr();
    let gateway_listener = TcpListener::bind(gateway_addr)
        .await
        .with_context(|| format!("cannot listen on {gateway_addr} (network.gateway_port)"))?;
    let management_addr = config.management_addr();
    let management_listener = TcpListener::bind(management_addr)
        .await
        .with_context(|| format!("cannot listen on {management_addr} (network.management_port)"))?;

    let rest_listener = if config.rest.enabled {
        let addr = config.rest_addr();
        Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (rest.port)"))?,
        )
    } else {
        None
    };

    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    // `systemctl reload waggle` (kill -HUP) after a log rotation: the
    // exporter reopens its files. Without an exporter SIGHUP does nothing
    // (rather than end the broker, its default).
    let mut sighup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let reopened = context.export_sink.clone();
    tokio::spawn(async move {
        while sighup.recv().await.is_some() {
            match &reopened {
                Some(sink) => {
                    tracing::info!("SIGHUP: the exporter reopens its files");
                    sink.reopen();
                }
                None => tracing::info!("SIGHUP: no exporter files to reopen"),
            }
        }
    });
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };

    // The message size limit also bounds a compressed request once inflated
    // (tonic stops decompressing at the limit), so a small gzip bomb cannot
    // allocate more than an uncompressed request could.
    let max_message = config.network.max_message_size_bytes as usize;
    let service = GatewayServer::new(GatewayService::new(Dispatcher::new(Arc::clone(&context))))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Deflate)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Deflate);
    let bench = RawAppendServer::new(RawAppendService::new(Dispatcher::new(Arc::clone(&context))))
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);
    let routes = tonic::service::Routes::new(service)
        .add_service(bench)
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context.auth),
            crate::identity::auth::grpc,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&context.metrics),
            crate::request_metrics::grpc,
        ));
    let server =
        tonic::transport::Server::builder().add_routes(tonic::service::Routes::from(routes));
    let gateway_stop = stopped(stop_rx.clone());
    let gateway = match &client_tls {
        None => tokio::spawn(
            server
                .serve_with_incoming_shutdown(gateway_connections(gateway_listener), gateway_stop),
        ),
        Some(tls) => {
            let listener = TlsListener::spawn(gateway_listener, Arc::clone(tls), Port::Grpc, true)?;
            tokio::spawn(
                server.serve_with_incoming_shutdown(listener.into_incoming(), gateway_stop),
            )
        }
    };
    let management = serve_http(
        management_listener,
        management::router(Arc::clone(&context)),
        client_tls.as_ref(),
        stopped(stop_rx.clone()),
    )?;
    let rest = match rest_listener {
        Some(listener) => Some(serve_http(
            listener,
            crate::rest::router(Arc::clone(&context)),
            client_tls.as_ref(),
            stopped(stop_rx.clone()),
        )?),
        None => None,
    };
    if let Some(tls) = &client_tls {
        let metrics = Arc::clone(&context.metrics);
        let expiry = move |tls: &ClientTls| {
            metrics.set_certificate_expiries(&[("client-ports".into(), tls.not_after())]);
        };
        expiry(tls);
        tokio::spawn(Arc::clone(tls).watch(expiry));
        tracing::info!(
            "client ports speak TLS with {}{}",
            tls.files().cert.display(),
            match &tls.files().client_ca {
                Some(ca) => format!(", clients present certificates of {}", ca.display()),
                None => String::new(),
            }
        );
    }
    let notifier = tokio::spawn(notify::run(Arc::clone(&context.view)));
    let gossip = tokio::spawn(crate::gossip::run(Arc::clone(&context)));
    let cluster_changes = tokio::spawn(crate::membership::run::run(Arc::clone(&context)));
    let (scheme, grpc_security) = match &client_tls {
        Some(_) => ("https", "TLS"),
        None => ("http", "plaintext"),
    };
    tracing::info!(
        "waggle node {} opening its partitions; management {scheme}://{management_addr}",
        config.cluster.node_id
    );
    let opened = tokio::task::spawn_blocking(move || opening.wait());
    let opened = tokio::select! {
        opened = opened => Some(opened.context("start-up task")?),
        _ = sigterm.recv() => None,
        _ = sigint.recv() => None,
    };
    match opened {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            let _ = stop_tx.send(true);
            gossip.abort();
            cluster_changes.abort();
            return Err(e.into());
        }
        None => {
            tracing::info!("signal during start-up: shutting down");
            let _ = stop_tx.send(true);
            gossip.abort();
            cluster_changes.abort();
            return Ok(());
        }
    }
    context.view.set_started();
    tokio::spawn(crate::identity::initial::create(Arc::clone(&context)));
    tracing::info!(
        "waggle node {} serving: gateway {gateway_addr} ({grpc_security}), REST {}, management {scheme}://{management_addr}, data {}",
        config.cluster.node_id,
        if config.rest.enabled { format!("{scheme}://{}", config.rest_addr()) } else { "off".to_string() },
        config.data.directory.display()
    );
    if mode == Mode::Dev {
        println!("waggle dev broker: clients connect to {gateway_addr} (gRPC, {grpc_security})");
        if config.rest.enabled {
            println!(
                "  REST API:   {scheme}://{}/v2/topology",
                config.rest_addr()
            );
            println!("  Operate:    {scheme}://{}/operate/", config.rest_addr());
            println!("  Tasklist:   {scheme}://{}/tasklist/", config.rest_addr());
        }
        println!("  management: {scheme}://{management_addr}/ready  /metrics");
        println!("  data:       {}", config.data.directory.display());
    }

    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
    }
    context.view.set_stopping();
    notify::stopping();
    let _ = stop_tx.send(true);
    let _ = notifier.await;
    gossip.abort();
    cluster_changes.abort();
    let grace =
        tokio::time::Instant::now() + std::time::Duration::from_millis(MAX_SHUTDOWN_GRACE_MS);
    match tokio::time::timeout_at(grace, gateway).await {
        Ok(joined) => joined.context("gateway task")?.context("gateway server")?,
        Err(_) => tracing::warn!(
            "gateway connections still open after {MAX_SHUTDOWN_GRACE_MS} ms; closing them"
        ),
    }
    if let Some(rest) = rest {
        match tokio::time::timeout_at(grace, rest).await {
            Ok(joined) => joined.context("REST task")?.context("REST server")?,
            Err(_) => tracing::warn!(
                "REST connections still open after {MAX_SHUTDOWN_GRACE_MS} ms; closing them"
            ),
        }
    }
    match tokio::time::timeout_at(grace, management).await {
        Ok(joined) => joined
            .context("management task")?
            .context("management server")?,
        Err(_) => tracing::warn!(
            "management connections still open after {MAX_SHUTDOWN_GRACE_MS} ms; closing them"
        ),
    }
    Ok(())
}

/// The exporter's sinks: the JSON-lines files when `exporter.enabled`, the
/// secondary storage database unless `secondary_storage.type = "none"`;
/// `None` when neither (the partitions then keep no export queue).
fn start_sinks(config: &Config, partitions: u32) -> anyhow::Result<Option<Arc<dyn Sink>>> {
    let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
    if config.exporter.enabled {
        let dir = config.exporter.directory_in(&config.data.directory);
        let sink = ExportSink::start(&dir, partitions).with_context(|| {
            format!(
                "cannot start the exporter in {} (exporter.directory)",
                dir.display()
            )
        })?;
        tracing::info!("exporting records to {}", dir.display());
        sinks.push(Arc::new(sink));
    }
    let secondary = &config.secondary_storage;
    if let Some(url) = secondary.database_url(&config.data.directory) {
        let cleanup = Cleanup {
            ttl: (secondary.history_ttl_s > 0)
                .then(|| std::time::Duration::from_secs(secondary.history_ttl_s)),
            interval: std::time::Duration::from_millis(secondary.cleanup_interval_ms),
        };
        let sink = SecondarySink::start(&url, partitions, cleanup)
            .map_err(|e| anyhow::anyhow!("secondary storage (secondary_storage.type): {e}"))?;
        tracing::info!("secondary storage: {}", sink.name());
        sinks.push(Arc::new(sink));
    }
    Ok(match sinks.len() {
        0 => None,
        1 => sinks.pop(),
        _ => Some(Arc::new(Fanout::new(sinks))),
    })
}
