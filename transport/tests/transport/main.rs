//! Integration tests of the transport over loopback: connection and framing,
//! backpressure, mutual TLS acceptance and refusal, reconnection after a
//! peer restart, keep-alive and idle timeout, and bad input from a peer.

mod bad_input;
mod common;
mod connection;
mod liveness;
mod mtls;
mod reconnect;
