//! The `raft` crate of waggle (see the workspace README).
