//! Application close codes sent in QUIC CONNECTION_CLOSE frames, with a
//! human-readable reason, so the peer can log why it was disconnected.

use quinn::VarInt;

/// Why this node closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// The node is shutting down.
    Shutdown = 0,
    /// The peer sent a bad frame (oversized, unknown type, garbage).
    ProtocolViolation = 1,
    /// The peer's identity was refused (hello missing or not matching its
    /// certificate, unknown node, wrong dialing direction).
    IdentityRefused = 2,
    /// A newer connection from the same peer replaced this one.
    Superseded = 3,
}

/// Longest reason text sent to the peer, in bytes.
pub const MAX_CLOSE_REASON_BYTES: usize = 512;

impl CloseCode {
    /// The QUIC application error code.
    pub fn code(self) -> VarInt {
        VarInt::from_u32(self as u32)
    }

    /// Decodes an application error code received from a peer.
    pub fn from_code(code: VarInt) -> Option<Self> {
        match code.into_inner() {
            0 => Some(CloseCode::Shutdown),
            1 => Some(CloseCode::ProtocolViolation),
            2 => Some(CloseCode::IdentityRefused),
            3 => Some(CloseCode::Superseded),
            _ => None,
        }
    }
}

/// Closes `connection` with `code` and `reason` (truncated to the limit).
pub(crate) fn close(connection: &quinn::Connection, code: CloseCode, reason: &str) {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    connection.close(code.code(), &reason.as_bytes()[..end]);
}
