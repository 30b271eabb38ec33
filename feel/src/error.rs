//! Errors: a parse error with the byte position it refers to, and an
//! evaluation failure with the suppressed failures that preceded it.

use thiserror::Error;

/// Text that is not valid FEEL.
#[derive(Clone, Debug, Error, PartialEq)]
#[error("at byte {position}: {message}")]
pub struct ParseError {
    /// Byte offset in the source where the problem was found.
    pub position: usize,
    /// What was wrong and what would be accepted.
    pub message: String,
}

impl ParseError {
    /// An error at `position`.
    pub fn new(position: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            position,
            message: message.into(),
        }
    }
}

/// A failure that feel-scala reports as an evaluation failure (an unknown
/// function, a failed `assert`, a limit exceeded).
#[derive(Clone, Debug, Error, PartialEq)]
#[error("{message}")]
pub struct EvalError {
    /// What failed.
    pub message: String,
    /// Failures suppressed (turned into null) before this one.
    pub warnings: Vec<String>,
}
