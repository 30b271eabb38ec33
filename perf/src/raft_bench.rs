//! `waggle-perf raft`: committed entries per second of the Raft core alone.
//!
//! Three `MultiRaft`s over `MemLog`, all on the calling thread (one core).
//! Every iteration the leader takes one batch of proposals while earlier
//! batches are still replicating (pipelining, bounded by `--window`), then
//! each node handles its Ready: writes go to its `MemLog` and are
//! acknowledged at once, envelopes are handed to their destination (through
//! the wire codec with `--codec`). An entry counts once the leader applies
//! it. Logs are compacted every `COMPACT_EVERY_ENTRIES` so memory stays flat.
//! The baseline is the same loop's cost of cloning the payloads alone.

use std::time::Instant;

use raft::{
    Bytes, Envelope, GroupBootstrap, GroupConfig, GroupId, HardState, MemLog, MultiRaft, NodeId,
    RaftConfig, Role,
};

/// The benchmark's only group.
const GROUP: GroupId = 1;
/// Nodes of the cluster.
const NODES: u64 = 3;
/// Applied entries between two compactions of a node's log.
const COMPACT_EVERY_ENTRIES: u64 = 200_000;
/// Iterations allowed for the election before giving up.
const MAX_ELECTION_ROUNDS: u32 = 1_000;

/// Options of this subcommand.
#[derive(clap::Args)]
pub struct Args {
    /// Entries to commit.
    #[arg(long, default_value_t = 5_000_000)]
    entries: u64,
    /// Proposals per batch.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Payload bytes per entry.
    #[arg(long, default_value_t = 64)]
    payload_bytes: usize,
    /// Most proposed but uncommitted entries.
    #[arg(long, default_value_t = 4_096)]
    window: u64,
    /// Encode and decode every envelope with the wire codec.
    #[arg(long)]
    codec: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

struct Cluster {
    nodes: Vec<MultiRaft<MemLog>>,
    applied: Vec<u64>,
    compacted: Vec<u64>,
    inbox: Vec<Envelope>,
    codec: bool,
}

impl Cluster {
    fn new(codec: bool) -> Cluster {
        let cfg = RaftConfig {
            max_uncommitted_entries: u64::MAX,
            ..RaftConfig::default()
        };
        let nodes = (1..=NODES)
            .map(|id| {
                let mut n = MultiRaft::new(id, cfg.clone(), MemLog::new(), id);
                n.add_group(
                    GROUP,
                    GroupBootstrap {
                        config: GroupConfig::new(1..=NODES),
                        hard_state: HardState::default(),
                        applied: 0,
                        recovering_until: 0,
                        recovering_term: None,
                    },
                )
                .expect("a fresh MultiRaft has no groups");
                n
            })
            .collect();
        Cluster {
            nodes,
            applied: vec![0; NODES as usize],
            compacted: vec![0; NODES as usize],
            inbox: Vec::new(),
            codec,
        }
    }

    fn node(&mut self, id: NodeId) -> &mut MultiRaft<MemLog> {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Handles every node's Ready once and delivers what they sent; returns
    /// whether anything happened.
    fn pass(&mut self) -> bool {
        let mut busy = false;
        for i in 0..self.nodes.len() {
            let node = &mut self.nodes[i];
            if !node.has_ready() {
                continue;
            }
            busy = true;
            let ready = node.ready();
            self.inbox.extend(ready.messages);
            for gr in ready.groups {
                let log = node.reader_mut();
                if let Some(s) = &gr.snapshot {
                    log.install_snapshot(gr.group, s.clone());
                }
                let last = gr.entries.last().map(|e| (e.index, e.term));
                log.append_owned(gr.group, gr.entries);
                if let Some(hs) = gr.hard_state {
                    log.set_hard_state(gr.group, hs);
                }
                if let Some(s) = gr.snapshot {
                    node.persisted(gr.group, s.meta.index, s.meta.term);
                }
                if let Some((index, term)) = last {
                    node.persisted(gr.group, index, term);
                }
                if let Some(last) = gr.committed.last() {
                    self.applied[i] = last.index;
                }
            }
            self.inbox.extend(ready.messages_after_persist);
            if self.applied[i] >= self.compacted[i] + COMPACT_EVERY_ENTRIES {
                let index = self.applied[i];
                let config = node.status(GROUP).expect("the group exists").config;
                node.reader_mut()
                    .compact(GROUP, index, config, Bytes::new());
                self.compacted[i] = index;
            }
        }
        for env in std::mem::take(&mut self.inbox) {
            let env = if self.codec {
                raft::decode(raft::encode(&env)).expect("the codec round-trips its own output")
            } else {
                env
            };
            let to = env.to;
            self.node(to).step_envelope(env);
        }
        busy
    }

    fn elect(&mut self) -> anyhow::Result<()> {
        self.node(1).campaign(GROUP);
        for _ in 0..MAX_ELECTION_ROUNDS {
            self.pass();
            if self.nodes[0].brief(GROUP).map(|b| b.role) == Some(Role::Leader) {
                while self.pass() {}
                return Ok(());
            }
        }
        anyhow::bail!("node 1 did not become leader")
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch > 0, "--batch: expected at least 1");
    let payload = Bytes::from(vec![0xa5; args.payload_bytes]);

    // Baseline: building the proposal batches alone.
    let started = Instant::now();
    let mut built = 0u64;
    while built < args.entries {
        let batch: Vec<Bytes> = vec![payload.clone(); args.batch];
        built += std::hint::black_box(batch).len() as u64;
    }
    let baseline_s = started.elapsed().as_secs_f64();

    let mut c = Cluster::new(args.codec);
    c.elect()?;
    let start_index = c.applied[0];
    let mut proposed = start_index;
    let started = Instant::now();
    while c.applied[0] < start_index + args.entries {
        if proposed < c.applied[0] + args.window {
            let batch = vec![payload.clone(); args.batch];
            let (_, last) = c
                .node(1)
                .propose(GROUP, batch)
                .map_err(|e| anyhow::anyhow!("proposal refused: {e}"))?;
            proposed = last;
        }
        c.pass();
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let committed = c.applied[0] - start_index;
    let per_s = committed as f64 / elapsed_s;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "committed_entries": committed,
                "elapsed_s": elapsed_s,
                "committed_entries_per_s": per_s,
                "baseline_batches_entries_per_s": built as f64 / baseline_s,
                "batch": args.batch,
                "payload_bytes": args.payload_bytes,
                "codec": args.codec,
            })
        );
    } else {
        println!(
            "raft core, {NODES} nodes in memory, one thread: {committed} entries committed in \
             {elapsed_s:.2} s = {per_s:.0} entries/s (batch {}, {} B payloads, codec {}); \
             baseline (building batches only): {:.0} entries/s",
            args.batch,
            args.payload_bytes,
            args.codec,
            built as f64 / baseline_s
        );
    }
    Ok(())
}
