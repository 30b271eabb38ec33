//! The `engine` crate of waggle (see the workspace README).
