//! Command distribution: deployments and resource deletions reach every
//! partition once, although commands between partitions get lost or arrive
//! twice, and across snapshots.

mod common;
use ::engine::distribution::DISTRIBUTION_RETRY_MS;
use ::engine::*;
use common::*;

fn delete_command(resource_key: i64) -> Record {
    Record::command(
        NO_KEY,
        Intent::Delete,
        RecordValue::ResourceDeletion(ResourceDeletionRecord { resource_key }),
        None,
    )
}

fn definition_key(c: &mut Cluster, process_id: &str) -> i64 {
    c.partition(1)
        .engine
        .state()
        .latest_process(&Tenant::default(), process_id)
        .expect("deployed")
        .metadata
        .process_definition_key
}

/// Takes what partition `from` sent to the others.
fn take_sent(c: &mut Cluster, from: u32) -> Vec<(u32, Record)> {
    std::mem::take(&mut c.partition(from).distributions)
}

/// Hands `sent` to their target partitions (not what that causes).
fn hand_over(c: &mut Cluster, sent: Vec<(u32, Record)>) {
    for (target, mut cmd) in sent {
        let h = c.partition(target);
        cmd.timestamp_ms = h.now_ms;
        h.submit_as_is(cmd);
    }
}

fn idle(c: &mut Cluster, partition: u32) -> bool {
    let state = c.partition(partition).engine.state();
    state.distribution_pending.is_empty() && state.distributed_commands.is_empty()
}

#[test]
fn a_lost_deployment_distribution_is_sent_again_and_applied_once() {
    let mut c = Cluster::new(2);
    c.partition(1).deploy("one.bpmn", &one_task("one")).unwrap();
    let key = definition_key(&mut c, "one");
    let lost = take_sent(&mut c, 1);
    assert_eq!(lost.len(), 1, "sent once to partition 2");
    assert_eq!(lost[0].1.intent, Intent::Distribute);
    let now = c.partition(1).now_ms;
    assert!(
        c.partition(1)
            .engine
            .pending_distributions(now + 1, 10)
            .is_empty(),
        "not again before the retry interval"
    );
    let again = c
        .partition(1)
        .engine
        .pending_distributions(now + DISTRIBUTION_RETRY_MS, 10);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0, 2);
    assert_eq!(again[0].1.key, lost[0].1.key);
    // once more, as if the first resend got lost too
    let third = c
        .partition(1)
        .engine
        .pending_distributions(now + 2 * DISTRIBUTION_RETRY_MS, 10);
    hand_over(&mut c, again);
    hand_over(&mut c, third);
    assert!(c.partition(2).engine.state().process(key).is_some());
    assert_eq!(c.partition(2).count(ValueType::Process, Intent::Created), 1);
    assert_eq!(
        c.partition(2)
            .count(ValueType::Deployment, Intent::Distributed),
        1
    );
    // both copies are acknowledged; the first acknowledgement finishes it
    let acks = take_sent(&mut c, 2);
    assert_eq!(acks.len(), 2);
    assert!(acks
        .iter()
        .all(|(p, r)| *p == 1 && r.intent == Intent::Acknowledge));
    hand_over(&mut c, acks);
    let p1 = c.partition(1);
    assert_eq!(
        p1.count(ValueType::CommandDistribution, Intent::Finished),
        1
    );
    assert!(p1
        .log
        .iter()
        .any(|r| r.record_type == RecordType::CommandRejection && r.intent == Intent::Acknowledge));
    assert!(idle(&mut c, 1));
    let later = c.partition(1).now_ms + 10 * DISTRIBUTION_RETRY_MS;
    assert!(c
        .partition(1)
        .engine
        .pending_distributions(later, 10)
        .is_empty());
    // the process runs on partition 2
    let pi = c.partition(2).create("one", "{}");
    c.partition(2).auto_complete(5);
    assert!(c.partition(2).is_completed(pi));
    // followers that apply the logs reach the same states
    for p in 1..=2 {
        let mut follower = Engine::new(p, 2);
        for r in &c.partition(p).log {
            follower.replay(r);
        }
        assert!(follower.snapshot() == c.partition(p).engine.snapshot());
    }
}

#[test]
fn a_lost_acknowledgement_is_answered_by_acknowledging_again() {
    let mut c = Cluster::new(2);
    c.partition(1).deploy("one.bpmn", &one_task("one")).unwrap();
    let sent = take_sent(&mut c, 1);
    hand_over(&mut c, sent);
    assert_eq!(take_sent(&mut c, 2).len(), 1, "acknowledgement lost");
    let now = c.partition(1).now_ms + DISTRIBUTION_RETRY_MS;
    let again = c.partition(1).engine.pending_distributions(now, 10);
    assert_eq!(again.len(), 1);
    hand_over(&mut c, again);
    assert_eq!(c.partition(2).count(ValueType::Process, Intent::Created), 1);
    c.deliver();
    assert!(idle(&mut c, 1));
}

#[test]
fn a_duplicate_deletion_is_applied_once() {
    let mut c = Cluster::new(2);
    c.deploy("one.bpmn", &one_task("one"));
    let key = definition_key(&mut c, "one");
    let remote = c.partition(2).create("one", "{}");
    c.partition(1).request(delete_command(key)).unwrap();
    let sent = take_sent(&mut c, 1);
    assert_eq!(sent.len(), 1);
    let twice = vec![sent[0].clone(), sent[0].clone()];
    hand_over(&mut c, twice);
    let p2 = c.partition(2);
    assert!(p2.is_terminated(remote));
    assert_eq!(p2.count(ValueType::ResourceDeletion, Intent::Deleted), 1);
    assert_eq!(p2.count(ValueType::Process, Intent::Deleted), 1);
    assert_eq!(
        p2.count(ValueType::ProcessInstance, Intent::ElementTerminated),
        2,
        "the process and its task, once"
    );
    c.deliver();
    assert!(idle(&mut c, 1));
}

#[test]
fn distributions_to_a_partition_are_applied_in_order() {
    let mut c = Cluster::new(2);
    c.partition(1).deploy("a.bpmn", &one_task("a")).unwrap();
    let a = definition_key(&mut c, "a");
    let lost = take_sent(&mut c, 1);
    assert_eq!(lost.len(), 1);
    c.partition(1).deploy("b.bpmn", &one_task("b")).unwrap();
    c.partition(1).request(delete_command(a)).unwrap();
    assert!(
        take_sent(&mut c, 1).is_empty(),
        "queued behind the unacknowledged first deployment"
    );
    assert_eq!(c.partition(1).engine.state().distribution_pending.len(), 3);
    // a late copy of the deletion would come too early: only the oldest is resent
    let now = c.partition(1).now_ms + DISTRIBUTION_RETRY_MS;
    let again = c.partition(1).engine.pending_distributions(now, 10);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.key, lost[0].1.key);
    hand_over(&mut c, again);
    c.deliver();
    let p2 = c.partition(2).engine.state();
    assert!(
        p2.process(a).is_none(),
        "the deletion followed the deployment"
    );
    assert!(p2.latest_process(&Tenant::default(), "a").is_none());
    assert!(p2.latest_process(&Tenant::default(), "b").is_some());
    assert!(idle(&mut c, 1));
}

#[test]
fn distribution_finishes_when_every_partition_acknowledged() {
    let mut c = Cluster::new(3);
    c.partition(1).deploy("one.bpmn", &one_task("one")).unwrap();
    let sent = take_sent(&mut c, 1);
    assert_eq!(sent.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![2, 3]);
    let (to_two, to_three): (Vec<_>, Vec<_>) = sent.into_iter().partition(|(p, _)| *p == 2);
    hand_over(&mut c, to_two);
    c.deliver();
    assert_eq!(
        c.partition(1)
            .count(ValueType::CommandDistribution, Intent::Acknowledged),
        1
    );
    assert!(!idle(&mut c, 1));
    let pending = &c.partition(1).engine.state().distribution_pending;
    assert!(pending.iter().all(|(p, _)| *p == 3));
    hand_over(&mut c, to_three);
    c.deliver();
    assert_eq!(
        c.partition(1)
            .count(ValueType::CommandDistribution, Intent::Finished),
        1
    );
    assert!(idle(&mut c, 1));
}

#[test]
fn pending_and_received_distributions_survive_a_snapshot() {
    let mut c = Cluster::new(2);
    c.deploy("one.bpmn", &one_task("one"));
    c.partition(1).deploy("two.bpmn", &one_task("two")).unwrap();
    let lost = take_sent(&mut c, 1);
    assert_eq!(lost.len(), 1);

    // the deployment partition after a restart: sends the pending one at once
    let snapshot = c.partition(1).engine.snapshot();
    let restored = Engine::restore(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    c.partition(1).engine = restored;
    let now = c.partition(1).now_ms;
    let again = c.partition(1).engine.pending_distributions(now, 10);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.key, lost[0].1.key);

    // the receiving partition after a restart still knows what it applied
    let snapshot = c.partition(2).engine.snapshot();
    let restored = Engine::restore(&snapshot).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    c.partition(2).engine = restored;
    hand_over(&mut c, again.clone());
    let snapshot = c.partition(2).engine.snapshot();
    c.partition(2).engine = Engine::restore(&snapshot).unwrap();
    hand_over(&mut c, again);
    assert_eq!(c.partition(2).count(ValueType::Process, Intent::Created), 2);
    c.deliver();
    assert!(idle(&mut c, 1));
    assert!(c
        .partition(2)
        .engine
        .state()
        .latest_process(&Tenant::default(), "two")
        .is_some());
}

#[test]
fn a_single_partition_distributes_nothing() {
    let mut h = Harness::new();
    h.deploy("one.bpmn", &one_task("one")).unwrap();
    assert!(h.distributions.is_empty());
    assert_eq!(h.count(ValueType::CommandDistribution, Intent::Started), 0);
    assert!(h.engine.pending_distributions(i64::MAX / 2, 10).is_empty());
}
