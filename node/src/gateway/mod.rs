//! The client gateway: Zeebe's `gateway_protocol.Gateway` gRPC service on port
//! 26500, served with tonic on the tokio threads.
//!
//! `validate` checks requests before they leave the gateway, `dispatch` routes
//! commands to partitions with backpressure and the request timeout, `service`
//! implements the RPCs, `push` serves the job push streams.

pub mod activation;
pub mod bench;
pub mod dispatch;
pub mod job_result;
pub mod push;
pub mod repair;
pub mod service;
pub mod validate;

/// The generated protobuf messages, server and client of `proto/gateway.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("gateway_protocol");
}

/// The generated messages, server and client of `proto/bench.proto`: the raw
/// replicated append used by `waggle-perf` to compare with etcd.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod bench_proto {
    tonic::include_proto!("waggle_bench");
}
