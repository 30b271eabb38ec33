//! The `storage` crate of waggle (see the workspace README).
