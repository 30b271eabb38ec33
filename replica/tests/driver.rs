//! The driver on one node over `storage::SimDisk`: entries proposed, synced,
//! applied; a crash loses nothing synced and the machine comes back from its
//! snapshot and log; a full disk stalls a group until space is back.

use std::path::PathBuf;

use bytes::Bytes;
use futures_lite::future::block_on;
use raft::{Entry, EntryKind, GroupConfig, GroupMessage, MemLog, MessageBody, RaftConfig};
use replica::{Driver, GroupSpec, JoinFence, Options, StateMachine};
use storage::{DiskOp, Fault, FaultError, LogConfig, SimDisk};

/// Keeps every applied payload.
#[derive(Debug, Default, Clone, PartialEq)]
struct Journal {
    applied: u64,
    lines: Vec<String>,
}

impl StateMachine for Journal {
    type Output = Vec<u64>;

    fn applied(&self) -> u64 {
        self.applied
    }

    fn apply(&mut self, entry: &Entry, _log: &MemLog, out: &mut Vec<u64>) -> Result<(), String> {
        if entry.index != self.applied + 1 {
            return Err(format!("entry {} after {}", entry.index, self.applied));
        }
        self.applied = entry.index;
        if entry.kind == EntryKind::Normal && !entry.data.is_empty() {
            self.lines
                .push(String::from_utf8(entry.data.to_vec()).map_err(|e| e.to_string())?);
            out.push(entry.index);
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<u8> {
        let mut out = self.applied.to_le_bytes().to_vec();
        out.extend(self.lines.join("\n").into_bytes());
        out
    }

    fn restore(&mut self, index: u64, state: &[u8]) -> Result<(), String> {
        let applied = u64::from_le_bytes(state.get(..8).ok_or("short")?.try_into().unwrap());
        if applied != index {
            return Err(format!("state at {applied} for snapshot {index}"));
        }
        let text = String::from_utf8(state[8..].to_vec()).map_err(|e| e.to_string())?;
        self.applied = applied;
        self.lines = if text.is_empty() {
            Vec::new()
        } else {
            text.split('\n').map(str::to_string).collect()
        };
        Ok(())
    }
}

fn options() -> Options {
    Options {
        me: 1,
        raft: RaftConfig::default(),
        seed: 7,
        log: LogConfig {
            segment_size_bytes: 64 << 10,
            ..LogConfig::default()
        },
        accept_data_loss: false,
        commit_store_interval_ms: 1_000,
        bug: None,
    }
}

fn spec() -> GroupSpec<Journal> {
    spec_of(1)
}

/// Group `group` in `/p/<group>`, node 1 its only voter.
fn spec_of(group: u64) -> GroupSpec<Journal> {
    GroupSpec {
        group,
        dir: PathBuf::from(format!("/p/{group}")),
        initial: GroupConfig::new([1]),
        machine: Journal::default(),
        fence: None,
    }
}

fn open(disk: &SimDisk) -> Driver<SimDisk, Journal> {
    let (driver, opened) = block_on(Driver::open(disk.clone(), &options(), vec![spec()], &|| {}))
        .expect("the driver opens");
    assert_eq!(opened.len(), 1);
    driver
}

/// Runs readies until none is left; returns the indexes applied.
fn settle(driver: &mut Driver<SimDisk, Journal>, now_ms: u64) -> Vec<u64> {
    let mut applied = Vec::new();
    for _ in 0..100 {
        if !driver.has_ready() {
            break;
        }
        let ready = driver.ready();
        assert!(ready.messages.is_empty(), "a single node sends nothing");
        let flight = block_on(driver.write(ready.groups, ready.messages_after_persist, now_ms))
            .expect("write");
        let landed = block_on(driver.sync(flight, now_ms)).expect("sync");
        for (g, entries) in landed.committed {
            driver.apply(g, &entries, &mut applied).expect("apply");
        }
    }
    applied
}

fn lines(driver: &Driver<SimDisk, Journal>) -> Vec<String> {
    driver.machine(1).expect("group 1").lines.clone()
}

fn propose(driver: &mut Driver<SimDisk, Journal>, from: u32, to: u32) {
    let entries = (from..to)
        .map(|i| Bytes::from(format!("line {i}")))
        .collect();
    driver
        .propose(1, entries)
        .expect("the leader takes entries");
}

#[test]
fn synced_entries_survive_a_crash_and_the_machine_comes_back() {
    let disk = SimDisk::new();
    let mut driver = open(&disk);
    settle(&mut driver, 0);
    assert!(driver.leads(1), "the only voter leads at once");
    propose(&mut driver, 0, 50);
    assert_eq!(settle(&mut driver, 1).len(), 50);
    let size = block_on(driver.snapshot(1, 2)).expect("snapshot");
    assert!(size.is_some_and(|s| s > 50 * 6), "{size:?}");
    propose(&mut driver, 50, 80);
    settle(&mut driver, 3);
    let before = lines(&driver);
    assert_eq!(before.len(), 80);
    drop(driver);
    disk.crash(11);
    let mut driver = open(&disk);
    assert_eq!(driver.applied_since_snapshot(1), 0);
    settle(&mut driver, 0);
    assert_eq!(
        lines(&driver),
        before,
        "snapshot plus log give the same state"
    );
}

#[test]
fn a_full_disk_stalls_the_group_until_space_is_back() {
    let disk = SimDisk::new();
    let mut driver = open(&disk);
    settle(&mut driver, 0);
    propose(&mut driver, 0, 5);
    settle(&mut driver, 0);
    disk.inject(Fault {
        op: DiskOp::Write,
        path_contains: "/p/1/log".into(),
        skip: 0,
        error: FaultError::NoSpace,
    });
    propose(&mut driver, 5, 10);
    let applied = settle(&mut driver, 10);
    assert!(
        applied.is_empty(),
        "nothing commits while the log is not durable"
    );
    let stall = driver.stall(1).expect("stalled");
    assert!(
        stall.refusal.reason.contains("/p/1/log"),
        "{}",
        stall.refusal.reason
    );
    assert!(driver.propose(1, vec![Bytes::from("x")]).is_err());
    let released = block_on(driver.retry_space(10 + replica::stall::MIN_RETRY_MS)).expect("retry");
    assert!(released.is_empty());
    assert!(driver.stall(1).is_none(), "the retried sync succeeded");
    assert_eq!(settle(&mut driver, 200).len(), 5);
    assert_eq!(lines(&driver).len(), 10);
}

#[test]
fn a_lost_committed_tail_of_a_single_replica_is_refused_by_name() {
    let disk = SimDisk::new();
    let mut driver = open(&disk);
    settle(&mut driver, 0);
    propose(&mut driver, 0, 20);
    // The commit index is stored (the interval has passed) with the term.
    settle(&mut driver, 5_000);
    block_on(driver.store_hard_states(5_000));
    drop(driver);
    let segment = disk_segment(&disk);
    disk.set_file_bytes(&segment, vec![0; 4096])
        .expect("overwrite");
    let err = block_on(Driver::open(disk.clone(), &options(), vec![spec()], &|| {}))
        .expect_err("committed entries are gone");
    let text = err.to_string();
    assert!(
        text.contains("/p/1/log") && text.contains("accept_data_loss"),
        "{text}"
    );
}

fn disk_segment(disk: &SimDisk) -> PathBuf {
    let names = block_on(storage::Disk::list_dir(
        disk,
        std::path::Path::new("/p/1/log"),
    ))
    .expect("log dir");
    let first = names
        .iter()
        .find(|n| n.ends_with(".seg") && !n.starts_with("recycle"))
        .unwrap_or_else(|| panic!("a segment among {names:?}"));
    PathBuf::from("/p/1/log").join(first)
}

#[test]
fn a_group_added_while_others_run_works_and_removing_it_deletes_its_stores() {
    let disk = SimDisk::new();
    let mut driver = open(&disk);
    settle(&mut driver, 0);
    propose(&mut driver, 0, 3);
    settle(&mut driver, 1);
    let opened = block_on(driver.add_group(spec_of(2), &|| {})).expect("a second group opens");
    assert_eq!(opened.group, 2);
    settle(&mut driver, 2);
    assert!(driver.leads(2), "the only voter of the new group leads");
    driver
        .propose(2, vec![Bytes::from("in group 2")])
        .expect("the new group takes entries");
    assert_eq!(settle(&mut driver, 3).len(), 1);
    assert_eq!(driver.machine(2).expect("group 2").lines, ["in group 2"]);
    assert!(
        block_on(driver.add_group(spec_of(2), &|| {})).is_err(),
        "a group is opened once"
    );
    assert!(block_on(driver.remove_group(2)).expect("removed"));
    assert!(driver.machine(2).is_none());
    assert!(driver.raft().status(2).is_none(), "Raft forgot the group");
    let left = block_on(storage::Disk::list_dir(&disk, &PathBuf::from("/p"))).expect("list");
    assert_eq!(left, ["1"], "the stores of group 2 are deleted");
    assert!(!block_on(driver.remove_group(2)).expect("a second removal is a no-op"));
    // The first group went on throughout.
    propose(&mut driver, 3, 5);
    settle(&mut driver, 4);
    assert_eq!(lines(&driver).len(), 5);
}

#[test]
fn a_group_that_fails_to_open_leaves_nothing_behind_and_opens_later() {
    let disk = SimDisk::new();
    let mut driver = open(&disk);
    settle(&mut driver, 0);
    // The last step of the new group's start (its spare log segment, after
    // Raft took the group) fails once.
    disk.inject(Fault {
        op: DiskOp::Sync,
        path_contains: "/p/2/log/spare".into(),
        skip: 0,
        error: FaultError::Io,
    });
    let failed = block_on(driver.add_group(spec_of(2), &|| {})).expect_err("the sync fails");
    assert!(failed.to_string().contains("spare"), "{failed}");
    assert!(
        driver.raft().status(2).is_none(),
        "Raft holds no half-open group"
    );
    let opened = block_on(driver.add_group(spec_of(2), &|| {})).expect("opened again");
    assert_eq!(opened.group, 2);
    settle(&mut driver, 1);
    assert!(driver.leads(2));
    driver
        .propose(2, vec![Bytes::from("after the failure")])
        .expect("the group takes entries");
    settle(&mut driver, 2);
    assert_eq!(
        driver.machine(2).expect("group 2").lines,
        ["after the failure"]
    );
}

#[test]
fn a_group_removed_and_opened_again_while_its_writes_are_in_flight_gets_none_of_them() {
    let disk = SimDisk::new();
    let mut driver = open(&disk);
    settle(&mut driver, 0);
    block_on(driver.add_group(spec_of(2), &|| {})).expect("group 2 opens");
    settle(&mut driver, 1);
    driver
        .propose(2, vec![Bytes::from("old")])
        .expect("the only voter leads");
    // The entry is written and synced; the ready that hands it out as
    // committed is written, and its sync is still to come.
    let ready = driver.ready();
    let flight =
        block_on(driver.write(ready.groups, ready.messages_after_persist, 2)).expect("write");
    block_on(driver.sync(flight, 2)).expect("sync");
    let ready = driver.ready();
    let in_flight =
        block_on(driver.write(ready.groups, ready.messages_after_persist, 3)).expect("write");
    // The group leaves this node and joins it again, empty.
    assert!(block_on(driver.remove_group(2)).expect("removed"));
    block_on(driver.add_group(spec_of(2), &|| {})).expect("group 2 opens again");
    let landed = block_on(driver.sync(in_flight, 3)).expect("sync");
    assert!(
        landed.committed.iter().all(|(g, _)| *g != 2),
        "the earlier replica's entries reached the new one: {:?}",
        landed.committed
    );
    settle(&mut driver, 4);
    driver
        .propose(2, vec![Bytes::from("new")])
        .expect("the new replica leads");
    settle(&mut driver, 5);
    assert_eq!(driver.machine(2).expect("group 2").lines, ["new"]);
}

/// Group 2 with nodes 2 and 3 as voters, joined by node 1 empty.
fn joining_spec(fence: Option<JoinFence>) -> GroupSpec<Journal> {
    GroupSpec {
        initial: GroupConfig::new([2, 3]),
        fence,
        ..spec_of(2)
    }
}

/// Whether node 1 grants a pre-vote of group 2 to `from`, whose log ends
/// with entry `last_index` in `last_term`.
fn grants_pre_vote(
    driver: &mut Driver<SimDisk, Journal>,
    from: u64,
    last_index: u64,
    last_term: u64,
) -> bool {
    let term = driver.raft().status(2).expect("group 2").term + 1;
    driver.raft_mut().step(
        from,
        GroupMessage {
            group: 2,
            term,
            body: MessageBody::PreVote {
                last_index,
                last_term,
            },
        },
    );
    let ready = driver.ready();
    let answers: Vec<bool> = ready
        .messages
        .iter()
        .filter(|e| e.to == from)
        .flat_map(|e| &e.messages)
        .filter_map(|m| match m.body {
            MessageBody::PreVoteResp { reject } => Some(!reject),
            _ => None,
        })
        .collect();
    let flight =
        block_on(driver.write(ready.groups, ready.messages_after_persist, 0)).expect("write");
    block_on(driver.sync(flight, 0)).expect("sync");
    assert_eq!(answers.len(), 1, "one answer to n{from}");
    answers[0]
}

#[test]
fn a_joining_replica_is_fenced_where_its_leader_stood_even_after_a_restart() {
    let disk = SimDisk::new();
    let fence = JoinFence {
        term: 5,
        index: 40,
        index_term: 4,
    };
    let specs = vec![spec(), joining_spec(Some(fence))];
    let (mut driver, _) =
        block_on(Driver::open(disk.clone(), &options(), specs, &|| {})).expect("opens");
    for restarted in [false, true] {
        let status = driver.raft().status(2).expect("group 2");
        assert_eq!(status.last_index, 0, "empty");
        assert!(status.term >= fence.term, "restarted: {restarted}");
        assert_eq!(driver.raft().recovering_until(2), Some(40));
        // A candidate whose log ends before the fence's entry, or in an
        // earlier term, is refused; one holding it is not.
        assert!(
            !grants_pre_vote(&mut driver, 3, 39, 4),
            "restarted: {restarted}"
        );
        assert!(
            !grants_pre_vote(&mut driver, 3, 90, 3),
            "restarted: {restarted}"
        );
        assert!(
            grants_pre_vote(&mut driver, 2, 40, 4),
            "restarted: {restarted}"
        );
        assert!(
            grants_pre_vote(&mut driver, 2, 41, 6),
            "restarted: {restarted}"
        );
        // A crash; the node opens its groups again, with no fence given.
        drop(driver);
        let specs = vec![spec(), joining_spec(None)];
        (driver, _) =
            block_on(Driver::open(disk.clone(), &options(), specs, &|| {})).expect("reopens");
    }
    // A fence given to a replica that holds anything is ignored.
    drop(driver);
    let later = JoinFence {
        term: 9,
        index: 80,
        index_term: 9,
    };
    let specs = vec![spec(), joining_spec(Some(later))];
    let (driver, _) = block_on(Driver::open(disk, &options(), specs, &|| {})).expect("reopens");
    assert_eq!(driver.raft().recovering_until(2), Some(40));
}
