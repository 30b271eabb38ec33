//! The waggle broker: configuration, per-core shards holding partitions, the
//! Zeebe gRPC gateway, the REST API v2 ([`rest`]), management HTTP, systemd notification, and the thin CLI
//! client. The `waggle` binary (`src/main.rs`) is a small layer over this
//! library.
//!
//! Threads: one glommio shard per core owns its partitions ([`shard`],
//! [`partition`]); two tokio threads run the gateway and management servers
//! ([`broker`]); they meet only in channels carrying owned commands
//! ([`command`]) and in the lock-free [`view::BrokerView`].

pub mod backpressure;
pub mod backup;
pub mod broker;
pub mod client;
pub mod client_cluster;
pub mod client_identity;
pub mod cluster;
pub mod command;
pub mod config;
pub mod consensus;
pub mod context;
pub mod decision_replies;
pub mod divergence;
pub mod exporter;
pub mod exposition;
pub mod gateway;
pub mod gossip;
pub mod identity;
pub mod isolation;
pub mod job_signals;
pub mod logging;
pub mod management;
pub mod membership;
pub mod memlock;
pub mod metrics;
pub mod notify;
pub mod partition;
pub mod placement;
pub mod push_streams;
pub mod records;
pub mod request_metrics;
pub mod rest;
pub mod routing;
pub mod shard;
pub mod space;
pub mod view;
