//! The replicated state machine a driver applies committed entries to.

use raft::{Entry, MemLog};

/// A group's replicated state: the broker's partition (engine) or a
/// simulator's model of one.
pub trait StateMachine {
    /// What applying entries produces for the caller (answers to send,
    /// commands for other groups, ...), accumulated over one ready.
    type Output;

    /// Index of the last entry applied (or of the restored snapshot).
    fn applied(&self) -> u64;

    /// Applies the committed entry `entry` (of either kind), the one after
    /// `applied()`. `log` holds the group's snapshot and the entries after
    /// it, for a machine that rebuilds its state after a failed command. An
    /// error means the replica cannot go on (its log or state is damaged).
    fn apply(&mut self, entry: &Entry, log: &MemLog, out: &mut Self::Output) -> Result<(), String>;

    /// The state as of `applied()`, for a snapshot.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the state with a snapshot's, taken at `index`.
    fn restore(&mut self, index: u64, state: &[u8]) -> Result<(), String>;
}
