//! Message throw events, message end events and send tasks with
//! `zeebe:publishMessage`: the engine publishes the message, which
//! correlates to the catch events of other instances, on this partition or
//! on the partition of the correlation key.

mod common;
use ::engine::*;
use common::*;

const MESSAGES: &str = r#"<bpmn:message id="paid" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message><bpmn:message id="dyn" name="=&quot;done-&quot; + kind"/>"#;

fn with_messages(process_id: &str, body: &str) -> String {
    bpmn(process_id, body).replace(
        "</bpmn:definitions>",
        &format!("{MESSAGES}</bpmn:definitions>"),
    )
}

/// start → message catch `paid` (key `=orderId`) → end.
fn catcher() -> String {
    with_messages(
        "catcher",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="paid"/></bpmn:intermediateCatchEvent><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "wait"),
            flow("f2", "wait", "e")
        ),
    )
}

/// start → intermediate throw `paid` (input mapping `amount`) → end, the
/// publication written as `publish`.
fn thrower(publish: &str) -> String {
    with_messages(
        "thrower",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:intermediateThrowEvent id="send"><bpmn:extensionElements><zeebe:ioMapping><zeebe:input source="=total * 2" target="amount"/></zeebe:ioMapping></bpmn:extensionElements><bpmn:messageEventDefinition messageRef="paid"><bpmn:extensionElements>{publish}</bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:intermediateThrowEvent><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "send"),
            flow("f2", "send", "e")
        ),
    )
}

fn published(h: &Harness) -> Vec<MessageRecord> {
    h.log
        .iter()
        .filter(|r| r.record_type == RecordType::Event && r.intent == Intent::Published)
        .filter_map(|r| match &r.value {
            RecordValue::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_throw_event_in_one_instance_correlates_to_the_catch_event_of_another() {
    let mut h = Harness::new();
    h.deploy("catcher.bpmn", &catcher()).unwrap();
    h.deploy(
        "thrower.bpmn",
        &thrower(r#"<zeebe:publishMessage correlationKey="=orderId" messageId="=&quot;m-&quot; + orderId"/>"#),
    )
    .unwrap();
    let waiting = h.create("catcher", r#"{"orderId": "o-1"}"#);
    let other = h.create("catcher", r#"{"orderId": "o-2"}"#);
    let sender = h.create("thrower", r#"{"orderId": "o-1", "total": 21}"#);
    assert!(h.is_completed(sender), "the throw event moves on at once");
    assert!(h.is_completed(waiting), "the message correlated");
    assert!(!h.is_completed(other), "another correlation key");
    let [message] = published(&h).try_into().expect("one message");
    assert_eq!(message.name, "paid");
    assert_eq!(message.correlation_key, "o-1");
    assert_eq!(message.message_id, "m-o-1");
    assert_eq!(
        message.time_to_live_ms, 3_600_000,
        "Zeebe's default of 1 hour"
    );
    // the local variables of the throw event (its input mappings), not the instance's
    assert_eq!(message.variables, r#"{"amount":42}"#);
    let amount_in_catcher = h.log.iter().any(|r| {
        matches!(&r.value, RecordValue::Variable(v) if v.name == "amount" && v.value == "42" && v.scope_key == waiting)
    });
    assert!(
        amount_in_catcher,
        "message variables reach the catching instance"
    );
}

#[test]
fn a_published_message_is_buffered_for_its_time_to_live_and_a_repeated_id_is_rejected() {
    let mut h = Harness::new();
    h.deploy("catcher.bpmn", &catcher()).unwrap();
    h.deploy(
        "thrower.bpmn",
        &thrower(r#"<zeebe:publishMessage correlationKey="=orderId" messageId="fixed" timeToLive="=duration(&quot;PT10S&quot;)"/>"#),
    )
    .unwrap();
    let sender = h.create("thrower", r#"{"orderId": 7, "total": 1}"#);
    assert!(h.is_completed(sender));
    let [message] = published(&h).try_into().expect("one message");
    assert_eq!(message.correlation_key, "7", "a number becomes text");
    assert_eq!(message.time_to_live_ms, 10_000);
    // buffered: a catch event opened later gets it
    let late = h.create("catcher", r#"{"orderId": "7"}"#);
    assert!(h.is_completed(late));
    // the same message id while the first is buffered: the publication is
    // rejected, and the throw event still moves on, as in Zeebe
    let again = h.create("thrower", r#"{"orderId": 7, "total": 1}"#);
    assert!(h.is_completed(again));
    let rejected = h.log.iter().any(|r| {
        r.record_type == RecordType::CommandRejection
            && r.intent == Intent::Publish
            && r.rejection.as_ref().map(|x| x.rejection_type) == Some(RejectionType::AlreadyExists)
    });
    assert!(rejected);
    h.advance(10_000);
    assert_eq!(h.count(ValueType::Message, Intent::Expired), 1);
}

#[test]
fn an_end_event_and_a_send_task_publish_to_the_partition_of_the_correlation_key() {
    let on = |p: u32| {
        (0..)
            .map(|i| format!("key-{i}"))
            .find(|k| message_partition(k, 2) == p)
            .unwrap()
    };
    let remote = on(2);
    let mut c = Cluster::new(2);
    c.deploy("catcher.bpmn", &catcher());
    let end = with_messages(
        "ender",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:sendTask id="notify" messageRef="dyn"><bpmn:extensionElements><zeebe:publishMessage correlationKey="=orderId" timeToLive="PT1M"/></bpmn:extensionElements></bpmn:sendTask><bpmn:endEvent id="done"><bpmn:messageEventDefinition messageRef="paid"><bpmn:extensionElements><zeebe:publishMessage correlationKey="=orderId"/></bpmn:extensionElements></bpmn:messageEventDefinition></bpmn:endEvent>{}{}"#,
            flow("f1", "s", "notify"),
            flow("f2", "notify", "done")
        ),
    );
    c.deploy("ender.bpmn", &end);
    // the catching instance lives on partition 1, its subscription on partition 2
    let waiting = c
        .partition(1)
        .create("catcher", &format!(r#"{{"orderId": "{remote}"}}"#));
    c.deliver();
    let sender = c.partition(1).create(
        "ender",
        &format!(r#"{{"orderId": "{remote}", "kind": "x"}}"#),
    );
    assert!(c.partition(1).is_completed(sender));
    assert!(
        published(c.partition(1)).is_empty(),
        "published on the partition of the key"
    );
    assert!(
        !c.partition(1).is_completed(waiting),
        "needs the round trip"
    );
    c.deliver();
    let names: Vec<(String, i64)> = published(c.partition(2))
        .into_iter()
        .map(|m| (m.name, m.time_to_live_ms))
        .collect();
    assert_eq!(
        names,
        [
            ("done-x".to_string(), 60_000),
            ("paid".to_string(), 3_600_000)
        ]
    );
    assert!(c.partition(1).is_completed(waiting));
}

#[test]
fn a_failing_correlation_key_raises_an_incident_and_resolving_it_publishes() {
    let mut h = Harness::new();
    h.deploy(
        "thrower.bpmn",
        &thrower(r#"<zeebe:publishMessage correlationKey="=orderId"/>"#),
    )
    .unwrap();
    let sender = h.create("thrower", r#"{"total": 1}"#);
    let [(incident_key, incident)] = h.incidents().try_into().expect("one incident");
    assert_eq!(incident.error_type, ErrorType::ExtractValueError);
    assert!(
        incident.error_message.contains("correlation key"),
        "{}",
        incident.error_message
    );
    assert!(published(&h).is_empty());
    h.set_variables(sender, r#"{"orderId": "o-9"}"#, false)
        .unwrap();
    h.resolve(incident_key).unwrap();
    assert!(h.is_completed(sender));
    assert_eq!(published(&h)[0].correlation_key, "o-9");
}

#[test]
fn publish_message_rejections_name_the_element() {
    let mut h = Harness::new();
    let cases = [
        (
            thrower(r#"<zeebe:publishMessage messageId="x"/>"#),
            "must have a correlationKey",
        ),
        (
            thrower(r#"<zeebe:publishMessage correlationKey="=k" timeToLive="soon"/>"#),
            "timeToLive",
        ),
        (thrower(""), "either one zeebe:publishMessage"),
        (
            thrower(r#"<zeebe:publishMessage correlationKey="=k"/>"#)
                .replace(r#"messageRef="paid""#, ""),
            "reference a bpmn:message",
        ),
    ];
    for (xml, expected) in cases {
        let err = h.deploy("thrower.bpmn", &xml).unwrap_err();
        assert!(err.reason.contains("'send'"), "{}", err.reason);
        assert!(err.reason.contains(expected), "{}", err.reason);
    }
}

#[test]
fn replaying_the_log_gives_the_same_state() {
    let mut h = Harness::new();
    h.deploy("catcher.bpmn", &catcher()).unwrap();
    h.deploy(
        "thrower.bpmn",
        &thrower(r#"<zeebe:publishMessage correlationKey="=orderId" timeToLive="PT1M"/>"#),
    )
    .unwrap();
    h.create("catcher", r#"{"orderId": "a"}"#);
    h.create("thrower", r#"{"orderId": "a", "total": 1}"#);
    h.create("thrower", r#"{"orderId": "b", "total": 2}"#);
    assert_eq!(h.engine.state().messages.len(), 2, "both are buffered");
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert_eq!(follower.snapshot(), h.engine.snapshot());
}
