//! Traffic classes: each has its own QUIC stream per connection, its own
//! bounded outbound queue per peer and its own inbound channel, so bulk
//! replication never delays heartbeats or forwarded commands.

/// The kind of traffic a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrafficClass {
    /// Raft replication (appends, votes, snapshots): bulk.
    Replication,
    /// Forwarded client commands and their responses.
    Command,
    /// Topology and health: small and latency-sensitive.
    Control,
}

/// Number of traffic classes.
pub const TRAFFIC_CLASS_COUNT: usize = 3;

impl TrafficClass {
    /// Every class, in index order.
    pub const ALL: [TrafficClass; TRAFFIC_CLASS_COUNT] = [
        TrafficClass::Replication,
        TrafficClass::Command,
        TrafficClass::Control,
    ];

    /// Position of the class in per-class arrays.
    pub fn index(self) -> usize {
        match self {
            TrafficClass::Replication => 0,
            TrafficClass::Command => 1,
            TrafficClass::Control => 2,
        }
    }

    /// QUIC send priority of the class's stream: higher is sent first.
    pub(crate) fn stream_priority(self) -> i32 {
        match self {
            TrafficClass::Replication => 0,
            TrafficClass::Command => 1,
            TrafficClass::Control => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_all() {
        for (i, class) in TrafficClass::ALL.iter().enumerate() {
            assert_eq!(class.index(), i);
        }
    }
}
