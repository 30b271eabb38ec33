//! The `transport` crate of waggle (see the workspace README).
