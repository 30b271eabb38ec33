//! Partition scaling: new partitions take partition 1's deployments and
//! identity, deployments made while they bootstrap reach them after, the
//! old partitions learn of them, and messages keep meeting their
//! subscriptions on the partition of before.

mod common;
use ::engine::scaling::ScaleRecord;
use ::engine::*;
use common::*;
use std::sync::Arc;

fn scale_up(desired: u32) -> Record {
    Record::command(
        NO_KEY,
        Intent::ScaleUp,
        RecordValue::Scale(ScaleRecord {
            desired_partition_count: desired,
            message_partition_count: 0,
            redistributed_partitions: Vec::new(),
            global_state: Arc::from([]),
        }),
        None,
    )
}

fn user(username: &str) -> Record {
    Record::command(
        NO_KEY,
        Intent::Create,
        RecordValue::User(identity::UserRecord {
            user_key: NO_KEY,
            username: username.into(),
            name: username.into(),
            email: format!("{username}@example.com"),
            password: "secret".into(),
        }),
        None,
    )
}

/// Adds empty partitions up to `count`, as the brokers open them.
fn add_partitions(c: &mut Cluster, count: u32) {
    let first = c.partitions.len() as u32 + 1;
    for p in first..=count {
        c.partitions
            .push(Harness::with_engine(Engine::new(p, count)));
    }
}

fn latest_key(c: &mut Cluster, partition: u32, process_id: &str) -> Option<i64> {
    c.partition(partition)
        .engine
        .state()
        .latest_process(&Tenant::default(), process_id)
        .map(|p| p.metadata.process_definition_key)
}

/// A correlation key whose message goes to `partition` of `count`.
fn key_on(partition: u32, count: u32) -> String {
    (0..)
        .map(|i| format!("order-{i}"))
        .find(|k| message_partition(k, count) == partition)
        .expect("some key")
}

#[test]
fn new_partitions_take_the_deployments_and_messages_meet_where_they_met_before() {
    let mut c = Cluster::new(2);
    c.deploy("order.bpmn", &catch_process());
    c.partition(1).request(user("demo")).expect("user created");
    c.deliver();
    // An instance on partition 2 waits for a message whose subscription
    // lives on partition 1 (of two).
    let before_key = key_on(1, 2);
    let waiting = c
        .partition(2)
        .create("order", &format!(r#"{{"orderId": "{before_key}"}}"#));
    c.deliver();

    add_partitions(&mut c, 4);
    let answer = c.partition(1).request(scale_up(4)).expect("scale up");
    assert!(matches!(answer, ResponseValue::Scaled { partitions: 4 }));
    // A deployment while the new partitions bootstrap reaches them after.
    c.partition(1)
        .deploy("later.bpmn", &one_task("later"))
        .expect("deployment");
    let progress = c.partition(1).engine.scaling_progress();
    assert!(!progress.complete, "nothing delivered yet: {progress:?}");
    assert_eq!((progress.partitions, progress.message_partitions), (4, 2));
    assert!(
        latest_key(&mut c, 3, "order").is_none(),
        "not bootstrapped yet"
    );
    c.deliver();

    let progress = c.partition(1).engine.scaling_progress();
    assert!(progress.complete, "{progress:?}");
    assert_eq!(progress.bootstrapped, [3, 4].into());
    for p in 1..=4 {
        let engine = &c.partition(p).engine;
        assert_eq!(engine.partition_count(), 4, "partition {p}");
        assert_eq!(engine.message_partition_count(), 2, "partition {p}");
    }
    for p in [3, 4] {
        for id in ["order", "later"] {
            assert_eq!(
                latest_key(&mut c, p, id),
                latest_key(&mut c, 1, id),
                "{id} on partition {p} under partition 1's key"
            );
        }
        assert!(
            c.partition(p)
                .engine
                .state()
                .identity
                .users
                .contains_key("demo"),
            "the users reach partition {p}"
        );
    }
    assert_eq!(
        c.partition(1)
            .count(ValueType::Scale, Intent::PartitionBootstrapped),
        2
    );
    assert_eq!(c.partition(2).count(ValueType::Scale, Intent::ScaledUp), 1);

    // An instance on a new partition subscribes where messages of its key
    // go: partition 2 of the two of before, not one of four.
    let after_key = key_on(2, 2);
    assert_ne!(
        message_partition(&after_key, 4),
        2,
        "a key that moves with four"
    );
    let created = c
        .partition(4)
        .create("order", &format!(r#"{{"orderId": "{after_key}"}}"#));
    c.deliver();
    assert_eq!(
        c.partition(2).engine.state().message_subscriptions.len(),
        1,
        "the subscription of partition 4's instance"
    );
    c.partition(2)
        .publish("paid", &after_key, 0, "", "{}")
        .expect("publish");
    c.deliver();
    assert!(c.partition(4).is_completed(created));
    c.partition(1)
        .publish("paid", &before_key, 0, "", "{}")
        .expect("publish");
    c.deliver();
    assert!(c.partition(2).is_completed(waiting));

    // Deployments from now on reach every partition at once.
    c.deploy("third.bpmn", &one_task("third"));
    assert!(latest_key(&mut c, 4, "third").is_some());

    // The scaling state survives a snapshot (of the newest format).
    for p in [1, 2, 4] {
        let engine = &c.partition(p).engine;
        let snapshot = engine.snapshot();
        assert_eq!(snapshot[0], ::engine::engine::SNAPSHOT_FORMAT_VERSION);
        let restored = Engine::restore(&snapshot).expect("restore");
        assert_eq!(restored.partition_count(), 4);
        assert_eq!(restored.message_partition_count(), 2);
        assert_eq!(restored.fingerprint(), engine.fingerprint());
    }
}

#[test]
fn a_scale_up_is_refused_elsewhere_than_partition_one_downwards_or_while_one_runs() {
    let mut c = Cluster::new(2);
    let refused = c.partition(2).request(scale_up(3)).unwrap_err();
    assert!(refused.reason.contains("partition 1"), "{}", refused.reason);
    let refused = c.partition(1).request(scale_up(1)).unwrap_err();
    assert!(
        refused.reason.contains("never removed"),
        "{}",
        refused.reason
    );
    add_partitions(&mut c, 3);
    c.partition(1).request(scale_up(3)).expect("scale up");
    let refused = c.partition(1).request(scale_up(4)).unwrap_err();
    assert_eq!(refused.rejection_type, RejectionType::InvalidState);
    // Asked again for the count it has: answered, nothing more.
    assert!(matches!(
        c.partition(1).request(scale_up(3)),
        Err(r) if r.rejection_type == RejectionType::InvalidState
    ));
    c.deliver();
    assert!(c.partition(1).engine.scaling_progress().complete);
    assert!(matches!(
        c.partition(1).request(scale_up(3)),
        Ok(ResponseValue::Scaled { partitions: 3 })
    ));
    assert_eq!(
        c.partition(1).count(ValueType::Scale, Intent::ScalingUp),
        1,
        "one scale up"
    );
}

#[test]
fn a_lost_or_repeated_bootstrap_is_sent_again_and_applied_once() {
    let mut c = Cluster::new(1);
    c.deploy("order.bpmn", &catch_process());
    add_partitions(&mut c, 2);
    c.partition(1).request(scale_up(2)).expect("scale up");
    let sent = std::mem::take(&mut c.partition(1).distributions);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.intent, Intent::Bootstrap);
    // Lost: sent again after the retry time.
    let later = c.partition(1).now_ms + distribution::DISTRIBUTION_RETRY_MS;
    let again = c.partition(1).engine.pending_distributions(later, 10);
    assert_eq!(again.len(), 1);
    // Arrives twice: bootstrapped once, acknowledged twice.
    for (target, cmd) in [sent[0].clone(), again[0].clone()] {
        c.partition(target).submit_as_is(cmd);
    }
    c.deliver();
    assert_eq!(
        c.partition(2)
            .count(ValueType::Scale, Intent::PartitionBootstrapped),
        1
    );
    assert!(c.partition(1).engine.scaling_progress().complete);
    assert!(latest_key(&mut c, 2, "order").is_some());
}
