//! Message scenarios: publish, buffering with TTL, message id, catch events,
//! boundary events, receive tasks, start events, the event-based gateway,
//! and the subscription exchange across two partitions.

mod common;
use ::engine::*;
use common::*;

#[test]
fn catch_event_correlates_a_message_published_after_it_opened() {
    let mut h = Harness::new();
    h.deploy("order.bpmn", &catch_process()).unwrap();
    let pi = h.create("order", r#"{"orderId": "o-1"}"#);
    let other = h.create("order", r#"{"orderId": "o-2"}"#);
    assert_eq!(
        h.count(ValueType::ProcessMessageSubscription, Intent::Created),
        2
    );
    assert_eq!(h.count(ValueType::MessageSubscription, Intent::Created), 2);
    let Ok(ResponseValue::MessagePublished { .. }) =
        h.publish("paid", "o-1", 0, "", r#"{"amount": 5}"#)
    else {
        panic!("publish failed");
    };
    assert!(h.is_completed(pi));
    assert!(!h.is_completed(other), "other correlation key");
    assert_eq!(h.variable(pi, "amount"), None, "the instance is gone");
    let amount_set = h.log.iter().any(
        |r| matches!(&r.value, RecordValue::Variable(v) if v.name == "amount" && v.scope_key == pi),
    );
    assert!(amount_set, "message variables propagate to the instance");
    // TTL 0: not buffered, so a later subscription does not get it
    let late = h.create("order", r#"{"orderId": "o-1"}"#);
    assert!(!h.is_completed(late));
}

#[test]
fn buffered_message_is_correlated_when_the_subscription_opens_until_its_ttl_runs_out() {
    let mut h = Harness::new();
    h.deploy("order.bpmn", &catch_process()).unwrap();
    h.publish("paid", "o-1", 60_000, "", r#"{"x": 1}"#).unwrap();
    let pi = h.create("order", r#"{"orderId": "o-1"}"#);
    assert!(h.is_completed(pi));
    // at most once per process: a second instance does not get the same message
    let second = h.create("order", r#"{"orderId": "o-1"}"#);
    assert!(!h.is_completed(second));
    h.publish("paid", "o-2", 1_000, "", "").unwrap();
    h.advance(1_000);
    assert_eq!(h.count(ValueType::Message, Intent::Expired), 1);
    let third = h.create("order", r#"{"orderId": "o-2"}"#);
    assert!(!h.is_completed(third), "expired messages are gone");
}

#[test]
fn duplicate_message_id_is_rejected_while_buffered() {
    let mut h = Harness::new();
    h.publish("paid", "o-1", 10_000, "id-1", "").unwrap();
    let err = h.publish("paid", "o-1", 10_000, "id-1", "").unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::AlreadyExists);
    h.publish("paid", "o-1", 10_000, "id-2", "").unwrap();
    h.advance(10_000);
    h.publish("paid", "o-1", 10_000, "id-1", "")
        .expect("the first one expired");
    let err = h.publish("", "o-1", 0, "", "").unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::InvalidArgument);
}

#[test]
fn message_boundary_interrupts_or_not_and_receive_task_waits() {
    let mut h = Harness::new();
    let xml = |cancel: bool| {
        with_message(
            "mb",
            &format!(
                r#"<bpmn:startEvent id="s"/>{}<bpmn:boundaryEvent id="b" attachedToRef="task" cancelActivity="{cancel}"><bpmn:messageEventDefinition messageRef="m"/></bpmn:boundaryEvent><bpmn:receiveTask id="receive" messageRef="m"/><bpmn:endEvent id="e1"/><bpmn:endEvent id="e2"/>{}{}{}{}"#,
                service_task("task", "work", ""),
                flow("f1", "s", "task"),
                flow("f2", "task", "e1"),
                flow("f3", "b", "receive"),
                flow("f4", "receive", "e2"),
            ),
        )
    };
    h.deploy("mb.bpmn", &xml(true)).unwrap();
    let pi = h.create("mb", r#"{"orderId": "a"}"#);
    h.publish("paid", "a", 0, "", "").unwrap();
    assert_eq!(
        h.element_intents(pi, "task").last(),
        Some(&"ELEMENT_TERMINATED")
    );
    assert_eq!(
        h.element_intents(pi, "receive"),
        ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"]
    );
    h.publish("paid", "a", 0, "", "").unwrap();
    assert!(h.is_completed(pi));

    h.deploy("mb.bpmn", &xml(false)).unwrap();
    let pi = h.create("mb", r#"{"orderId": "b"}"#);
    h.publish("paid", "b", 0, "", "").unwrap();
    assert_eq!(
        h.element_intents(pi, "task"),
        ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"]
    );
    assert_eq!(
        h.element_intents(pi, "receive"),
        ["ELEMENT_ACTIVATING", "ELEMENT_ACTIVATED"]
    );
    let jobs = h.activate("work", 1);
    h.complete(jobs[0].key, "{}").unwrap();
    assert_eq!(h.element_intents(pi, "e1").len(), 4);
    assert!(!h.is_completed(pi), "the receive task still waits");
    h.publish("paid", "b", 0, "", "").unwrap();
    assert!(h.is_completed(pi));
}

#[test]
fn message_start_event_creates_one_instance_per_correlation_key_while_active() {
    let mut h = Harness::new();
    let xml = bpmn(
        "started",
        &format!(
            r#"<bpmn:startEvent id="s"><bpmn:messageEventDefinition messageRef="start"/></bpmn:startEvent>{}<bpmn:endEvent id="e"/>{}{}"#,
            service_task("task", "work", ""),
            flow("f1", "s", "task"),
            flow("f2", "task", "e"),
        ),
    )
    .replace(
        "</bpmn:definitions>",
        r#"<bpmn:message id="start" name="go"/></bpmn:definitions>"#,
    );
    h.deploy("started.bpmn", &xml).unwrap();
    h.publish("go", "k", 0, "", r#"{"v": 7}"#).unwrap();
    assert_eq!(h.instances_of("started").len(), 1);
    let jobs = h.activate("work", 10);
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job.variables, r#"{"v":7}"#);
    h.publish("go", "k", 0, "", "").unwrap();
    assert_eq!(
        h.instances_of("started").len(),
        1,
        "an instance for 'k' is active"
    );
    h.publish("go", "other", 0, "", "").unwrap();
    assert_eq!(h.instances_of("started").len(), 2);
    h.complete(jobs[0].key, "{}").unwrap();
    h.publish("go", "k", 0, "", "").unwrap();
    assert_eq!(h.instances_of("started").len(), 3, "the first one ended");
}

#[test]
fn event_based_gateway_takes_the_first_event_and_closes_the_others() {
    let mut h = Harness::new();
    let xml = with_message(
        "gw",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:eventBasedGateway id="g"/><bpmn:intermediateCatchEvent id="msg"><bpmn:messageEventDefinition messageRef="m"/></bpmn:intermediateCatchEvent><bpmn:intermediateCatchEvent id="timeout"><bpmn:timerEventDefinition><bpmn:timeDuration>PT5M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent><bpmn:endEvent id="paid_end"/><bpmn:endEvent id="timeout_end"/>{}{}{}{}{}"#,
            flow("f1", "s", "g"),
            flow("f2", "g", "msg"),
            flow("f3", "g", "timeout"),
            flow("f4", "msg", "paid_end"),
            flow("f5", "timeout", "timeout_end"),
        ),
    );
    h.deploy("gw.bpmn", &xml).unwrap();
    let paid = h.create("gw", r#"{"orderId": "p"}"#);
    let late = h.create("gw", r#"{"orderId": "l"}"#);
    h.publish("paid", "p", 0, "", r#"{"ok": true}"#).unwrap();
    assert!(h.is_completed(paid));
    assert_eq!(h.element_intents(paid, "paid_end").len(), 4);
    h.advance(300_000);
    assert!(h.is_completed(late));
    assert_eq!(h.element_intents(late, "timeout_end").len(), 4);
    assert!(h.element_intents(late, "msg").is_empty());
    assert!(h.engine.state().timers.is_empty());
    assert!(h.engine.state().process_message_subscriptions.is_empty());
    assert!(h.engine.state().message_subscriptions.is_empty());
}

fn two_partition_keys() -> (String, String) {
    let on = |p: u32| {
        (0..)
            .map(|i| format!("key-{i}"))
            .find(|k| message_partition(k, 2) == p)
            .unwrap()
    };
    (on(1), on(2))
}

#[test]
fn messages_across_two_partitions_before_and_after_the_subscription_opens() {
    let mut c = Cluster::new(2);
    c.deploy("order.bpmn", &catch_process());
    let (_, remote) = two_partition_keys();
    // instance on partition 1, message on partition 2, published after the subscription
    let pi = c
        .partition(1)
        .create("order", &format!(r#"{{"orderId": "{remote}"}}"#));
    c.deliver();
    assert_eq!(
        c.partition(2)
            .count(ValueType::MessageSubscription, Intent::Created),
        1
    );
    assert_eq!(
        c.partition(1)
            .count(ValueType::ProcessMessageSubscription, Intent::Created),
        1
    );
    assert_eq!(c.publish("paid", &remote, 0, r#"{"n": 1}"#), 2);
    assert!(c.partition(1).is_completed(pi));
    // published before: buffered on partition 2, correlated when the subscription arrives
    c.publish("paid", &remote, 60_000, r#"{"n": 2}"#);
    let early = c
        .partition(1)
        .create("order", &format!(r#"{{"orderId": "{remote}"}}"#));
    assert!(!c.partition(1).is_completed(early), "needs the round trip");
    c.deliver();
    assert!(c.partition(1).is_completed(early));
    assert!(c
        .partition(2)
        .engine
        .state()
        .message_subscriptions
        .is_empty());
    assert!(c
        .partition(1)
        .engine
        .state()
        .process_message_subscriptions
        .is_empty());
}

#[test]
fn cancelling_an_instance_closes_its_remote_subscription_and_lost_commands_are_resent() {
    let mut c = Cluster::new(2);
    c.deploy("order.bpmn", &catch_process());
    let (_, remote) = two_partition_keys();
    let pi = c
        .partition(1)
        .create("order", &format!(r#"{{"orderId": "{remote}"}}"#));
    // the CREATE to partition 2 is lost (leader change): resent until acknowledged
    c.partition(1).distributions.clear();
    let now = c.partition(1).now_ms;
    let resend = c.partition(1).engine.pending_distributions(now, 10);
    assert_eq!(resend.len(), 1);
    assert!(
        c.partition(1)
            .engine
            .pending_distributions(now, 10)
            .is_empty(),
        "not again at once"
    );
    c.partition(1).distributions.extend(resend);
    c.deliver();
    assert_eq!(c.partition(2).engine.state().message_subscriptions.len(), 1);
    assert!(
        c.partition(1)
            .engine
            .pending_distributions(now + 60_000, 10)
            .is_empty(),
        "acknowledged"
    );
    c.partition(1).cancel(pi).unwrap();
    assert!(c.partition(1).is_terminated(pi));
    c.deliver();
    assert!(c
        .partition(2)
        .engine
        .state()
        .message_subscriptions
        .is_empty());
    assert!(c
        .partition(1)
        .engine
        .state()
        .process_message_subscriptions
        .is_empty());
    // a message for the closed subscription stays buffered
    c.publish("paid", &remote, 60_000, "");
    assert_eq!(c.partition(2).engine.state().messages.len(), 1);
}

#[test]
fn lost_correlations_and_acknowledgements_are_sent_again_without_correlating_twice() {
    let mut c = Cluster::new(2);
    c.deploy("order.bpmn", &catch_process());
    let (_, remote) = two_partition_keys();
    let pi = c
        .partition(1)
        .create("order", &format!(r#"{{"orderId": "{remote}"}}"#));
    c.deliver();
    c.partition(2)
        .publish("paid", &remote, 60_000, "", r#"{"n": 1}"#)
        .unwrap();
    assert_eq!(c.partition(2).distributions.len(), 1);
    c.partition(2).distributions.clear(); // the correlation is lost
    let now = c.partition(2).now_ms;
    let resend = c.partition(2).engine.pending_distributions(now, 10);
    assert_eq!(resend.len(), 1);
    for (target, cmd) in resend {
        c.partition(target).submit_as_is(cmd);
    }
    assert!(c.partition(1).is_completed(pi));
    c.partition(1).distributions.clear(); // the acknowledgement is lost
    let resend = c
        .partition(2)
        .engine
        .pending_distributions(now + 20_000, 10);
    assert_eq!(resend.len(), 1, "still not acknowledged");
    c.partition(2).distributions.extend(resend);
    c.deliver();
    assert_eq!(
        c.partition(1).element_intents(pi, "wait").len(),
        4,
        "correlated once"
    );
    assert!(c
        .partition(2)
        .engine
        .state()
        .message_subscriptions
        .is_empty());
    assert!(c
        .partition(2)
        .engine
        .pending_distributions(now + 60_000, 10)
        .is_empty());
    assert!(
        c.partition(1).engine.state().pms_correlated.is_empty(),
        "gone with the instance"
    );
}
