//! Golden-transcript tests: each `testdata/<name>.txt` is a script of actions
//! on an in-memory cluster; the transcript of every message, write, apply
//! and status line is compared with `testdata/<name>.golden`.
//! Set `UPDATE_GOLDEN=1` to rewrite the golden files (then review the diff).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bytes::Bytes;
use common::Cluster;
use raft::{GroupConfig, LogReader, NodeId, RaftConfig, UnsafeForce};

fn ids(s: &str) -> Vec<NodeId> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.parse().expect("node id"))
        .collect()
}

fn run_script(script: &str) -> String {
    let mut cluster: Option<Cluster> = None;
    let mut out = String::new();
    for raw in script.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let mut kv: BTreeMap<&str, &str> = BTreeMap::new();
        words.retain(|w| match w.split_once('=') {
            Some((k, v)) => {
                kv.insert(k, v);
                false
            }
            None => true,
        });
        let g: u64 = kv.get("g").map(|v| v.parse().expect("group")).unwrap_or(1);
        let num = |i: usize| -> u64 { words[i].parse().expect("number argument") };
        if let Some(c) = cluster.as_mut() {
            c.say(format!("> {line}"));
        } else {
            out.push_str(&format!("> {line}\n"));
        }
        match words[0] {
            "cluster" => {
                let nodes = ids(kv.get("nodes").copied().unwrap_or("1,2,3"));
                let voters = kv
                    .get("voters")
                    .map(|v| ids(v))
                    .unwrap_or_else(|| nodes.clone());
                let groups = kv.get("groups").map(|v| ids(v)).unwrap_or_else(|| vec![1]);
                let mut config = GroupConfig::new(voters);
                if let Some(p) = kv.get("priority") {
                    for pair in p.split(',') {
                        let (n, pr) = pair.split_once(':').expect("node:priority");
                        config = config
                            .with_priority(n.parse().expect("node"), pr.parse().expect("priority"));
                    }
                }
                let mut cfg = RaftConfig::default();
                let flag = |k: &str, d: bool| kv.get(k).map(|v| *v == "true").unwrap_or(d);
                cfg.pre_vote = flag("prevote", true);
                cfg.check_quorum = flag("checkquorum", true);
                cfg.priority_election = flag("priority-election", true);
                if let Some(v) = kv.get("max-append-bytes") {
                    cfg.max_append_bytes = v.parse().expect("bytes");
                }
                if let Some(v) = kv.get("max-inflight") {
                    cfg.max_inflight_msgs = v.parse().expect("count");
                }
                if let Some(v) = kv.get("chunk-bytes") {
                    cfg.snapshot_chunk_bytes = v.parse().expect("bytes");
                }
                if let Some(v) = kv.get("chunks-in-flight") {
                    cfg.max_snapshot_chunks_in_flight = v.parse().expect("count");
                }
                let mut c = Cluster::new(&nodes, &groups, config, cfg);
                c.out = std::mem::take(&mut out);
                cluster = Some(c);
            }
            cmd => {
                let c = cluster.as_mut().expect("script starts with `cluster`");
                match cmd {
                    "campaign" => c.raft(num(1)).campaign(g),
                    "propose" => {
                        let _ = c.propose(num(1), g, words[2]);
                    }
                    "stabilize" => c.stabilize(),
                    "deliver" => {
                        c.deliver();
                    }
                    "ready" => {
                        c.process_ready(num(1));
                    }
                    "tick" => {
                        let times = if words.len() > 2 { num(2) as u32 } else { 1 };
                        c.tick(num(1), times);
                    }
                    "tick-all" => c.tick_all(num(1) as u32),
                    "isolate" => c.isolate(num(1)),
                    "partition" => {
                        let sides: Vec<Vec<NodeId>> = words[1].split('/').map(ids).collect();
                        c.partition(&sides);
                    }
                    "heal" => c.heal(),
                    "crash" => {
                        c.down.insert(num(1));
                    }
                    "restart" => c.restart(num(1)),
                    "transfer" => {
                        let r = c.raft(num(1)).transfer_leadership(g, num(2));
                        if let Err(e) = r {
                            c.say(format!("transfer failed: {e}"));
                        }
                    }
                    "conf" => {
                        let voters: BTreeSet<NodeId> = ids(kv.get("voters").expect("voters="))
                            .into_iter()
                            .collect();
                        let r = c
                            .raft(num(1))
                            .propose_conf_change(g, voters, BTreeMap::new());
                        match r {
                            Ok(i) => c.say(format!("n{}/g{g}: conf change at {i}", num(1))),
                            Err(e) => c.say(format!("conf change failed: {e}")),
                        }
                    }
                    "force" => {
                        let voters: BTreeSet<NodeId> = ids(kv.get("voters").expect("voters="))
                            .into_iter()
                            .collect();
                        c.raft(num(1)).force_reconfiguration(
                            g,
                            voters,
                            UnsafeForce::IAcceptDataLoss,
                        );
                    }
                    "compact" => {
                        let n = num(1);
                        let s = c.raft(n).status(g).expect("group");
                        let data = Bytes::from(format!("state-of-g{g}-at-{}", s.applied));
                        c.raft(n).reader_mut().compact(g, s.applied, s.config, data);
                        let first = c.raft(n).reader().first_index(g);
                        c.say(format!("n{n}/g{g}: compacted, first index {first}"));
                    }
                    "add-node" => {
                        // A new node that starts with an empty log and no voters.
                        let n = num(1);
                        let voters = kv.get("voters").map(|v| ids(v)).unwrap_or_default();
                        for gid in c.groups.clone() {
                            c.configs.insert(gid, GroupConfig::new(voters.clone()));
                        }
                        let mut r = raft::MultiRaft::new(n, c.cfg.clone(), raft::MemLog::new(), n);
                        for gid in c.groups.clone() {
                            r.add_group(
                                gid,
                                raft::GroupBootstrap {
                                    config: GroupConfig::new(voters.clone()),
                                    ..Default::default()
                                },
                            )
                            .expect("new group");
                        }
                        c.nodes.insert(n, r);
                    }
                    "log" => {
                        let n = num(1);
                        let l = c.log_of(n, g);
                        c.say(format!("n{n}/g{g} log: [{l}]"));
                    }
                    "unreachable" => {
                        let nodes = kv.get("nodes").map(|v| ids(v)).unwrap_or_default();
                        c.raft(num(1)).set_unreachable(nodes.into_iter().collect());
                    }
                    "status" => c.status_lines(),
                    other => panic!("unknown command `{other}`"),
                }
            }
        }
    }
    cluster.map(|c| c.out).unwrap_or(out)
}

fn check(name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/testdata");
    let script = std::fs::read_to_string(dir.join(format!("{name}.txt"))).expect("script exists");
    let got = run_script(&script);
    let golden_path = dir.join(format!("{name}.golden"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&golden_path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden_path.display()));
    if got != want {
        let got_path = dir.join(format!("{name}.got"));
        let _ = std::fs::write(&got_path, &got);
        panic!(
            "transcript of {name} differs from {}; actual output written to {}",
            golden_path.display(),
            got_path.display()
        );
    }
}

macro_rules! golden {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { check(stringify!($name)); })*
    };
}

golden!(
    election,
    split_vote,
    log_conflict_repair,
    prevote_checkquorum,
    leadership_transfer,
    priority_election,
    priority_election_after_leader_loss,
    priority_election_skips_unreachable,
    joint_consensus,
    slow_follower_after_compaction,
    snapshot_resumed_by_a_new_leader,
    forced_reconfiguration,
    multi_group_coalescing,
);
