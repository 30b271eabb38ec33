//! The `sim` crate of waggle (see the workspace README).
