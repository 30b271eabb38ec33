//! Process instance modification: a flow scope created on the way to the
//! activated element is entered as Zeebe 8.8 enters it (ELEMENT_ACTIVATING,
//! the variable instructions, ELEMENT_ACTIVATED, its subscriptions): its
//! input mappings are not applied, and its start event is not taken; when
//! its subscriptions cannot be evaluated the modification is rejected. A
//! scope created by `startInstructions` takes an incident instead, like a
//! normal activation, and goes on to the start element once resolved.

mod common;
use ::engine::*;
use common::*;

/// start → prepare (job `prepare`) → sp (input `boxes = size * 2`)
/// { inner_start → pack (job `pack`) → inner_end } → end.
fn nested(source: &str) -> String {
    bpmn(
        "nested",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:subProcess id="sp"><bpmn:extensionElements><zeebe:ioMapping><zeebe:input source="{source}" target="boxes"/></zeebe:ioMapping></bpmn:extensionElements><bpmn:startEvent id="inner_start"/>{}<bpmn:endEvent id="inner_end"/>{}{}</bpmn:subProcess><bpmn:endEvent id="end"/>{}{}{}"#,
            service_task("prepare", "prepare", ""),
            service_task("pack", "pack", ""),
            flow("i1", "inner_start", "pack"),
            flow("i2", "pack", "inner_end"),
            flow("f1", "start", "prepare"),
            flow("f2", "prepare", "sp"),
            flow("f3", "sp", "end")
        ),
    )
}

fn modify_to_pack(
    h: &mut Harness,
    pi: i64,
    terminate: Vec<i64>,
) -> Result<ResponseValue, Rejection> {
    modify_to_pack_with(h, pi, terminate, vec![])
}

fn modify_to_pack_with(
    h: &mut Harness,
    pi: i64,
    terminate: Vec<i64>,
    variable_instructions: Vec<VariableInstruction>,
) -> Result<ResponseValue, Rejection> {
    h.request(Record::command(
        pi,
        Intent::Modify,
        RecordValue::ProcessInstanceModification(ProcessInstanceModificationRecord {
            process_instance_key: pi,
            terminate_instructions: terminate,
            activate_instructions: vec![ActivateInstruction {
                element_id: "pack".into(),
                ancestor_scope_key: NO_KEY,
                variable_instructions,
                ancestor_scope_keys: vec![],
            }],
        }),
        None,
    ))
}

#[test]
fn a_created_sub_process_is_entered_without_its_input_mappings_as_in_zeebe() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested("=size * 2"))
        .expect("deploy");
    let pi = h.create("nested", r#"{"size":3}"#);
    let prepare = element_key(&h, pi, "prepare");
    modify_to_pack(&mut h, pi, vec![prepare]).expect("modify");
    let sp = element_key(&h, pi, "sp");
    assert_eq!(h.variable(sp, "boxes"), None, "no input mapping ran");
    assert!(h.element_intents(pi, "inner_start").is_empty());
    let job = h.activate("pack", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);

    // Entered the normal way, the sub-process does run its input mapping.
    let normal = h.create("nested", r#"{"size":4}"#);
    let prepare = h.activate("prepare", 1).remove(0);
    h.complete(prepare.key, "{}").expect("complete prepare");
    let sp = element_key(&h, normal, "sp");
    assert_eq!(h.variable(sp, "boxes").as_deref(), Some("8"));
    assert_replay_matches(&h);
}

/// [`nested`] with a message boundary event on the sub-process, correlated
/// by `orderId` (which the instances do not set: its subscription fails).
fn nested_with_message_boundary() -> String {
    nested("=size").replace(
        r#"<bpmn:endEvent id="end"/>"#,
        r#"<bpmn:boundaryEvent id="b" attachedToRef="sp"><bpmn:messageEventDefinition messageRef="m"/></bpmn:boundaryEvent><bpmn:endEvent id="end"/><bpmn:endEvent id="b_end"/><bpmn:sequenceFlow id="fb" sourceRef="b" targetRef="b_end"/>"#,
    ).replace(
        "</bpmn:definitions>",
        r#"<bpmn:message id="m" name="stop"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message></bpmn:definitions>"#,
    )
}

#[test]
fn a_created_scope_whose_subscription_fails_rejects_the_modification() {
    let xml = nested_with_message_boundary();
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &xml).expect("deploy");
    let pi = h.create("nested", "{}");
    let prepare = element_key(&h, pi, "prepare");
    let before = h.log.len();
    let instances = h.engine.state().instances.clone();
    let r = modify_to_pack(&mut h, pi, vec![prepare]).expect_err("rejected");
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert_eq!(
        r.reason,
        "Expected to subscribe to catch event(s) of 'sp' but event 'b': Expected the correlation key '=orderId' to be a string or a number, but was 'null'"
    );
    assert_eq!(
        h.log.len(),
        before + 2,
        "the command and its rejection only"
    );
    assert_eq!(h.engine.state().instances, instances);

    // A variable instruction for the created scope gives the key.
    modify_to_pack_with(
        &mut h,
        pi,
        vec![prepare],
        vec![VariableInstruction {
            variables: r#"{"orderId":"o-1"}"#.into(),
            element_id: "sp".into(),
        }],
    )
    .expect("modify");
    let sub = h
        .engine
        .state()
        .process_message_subscriptions
        .values()
        .next()
        .expect("subscribed");
    assert_eq!(sub.record.correlation_key, "o-1");
    h.publish("stop", "o-1", 0, "", "{}").expect("publish");
    assert!(h.is_completed(pi));

    // So does a global one, set on the process instance.
    let other = h.create("nested", "{}");
    let prepare = element_key(&h, other, "prepare");
    modify_to_pack_with(
        &mut h,
        other,
        vec![prepare],
        vec![VariableInstruction {
            variables: r#"{"orderId":"o-2"}"#.into(),
            element_id: String::new(),
        }],
    )
    .expect("modify with a global variable");
    assert_eq!(h.variable(other, "orderId").as_deref(), Some("\"o-2\""));
    h.publish("stop", "o-2", 0, "", "{}").expect("publish");
    assert!(h.is_completed(other));
    assert_replay_matches(&h);
}

#[test]
fn start_instructions_into_a_scope_whose_subscription_fails_wait_on_an_incident_then_go_on() {
    let xml = nested_with_message_boundary();
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &xml).expect("deploy");
    let mut command = create_command("nested", -1, "{}", false);
    if let RecordValue::ProcessInstanceCreation(c) = &mut command.value {
        c.start_instructions = vec!["pack".into()];
    }
    let pi = match h.request(command) {
        Ok(ResponseValue::ProcessInstanceCreated {
            process_instance_key,
            ..
        }) => process_instance_key,
        other => panic!("created: {other:?}"),
    };
    // The created scope waits on an incident naming the failed event, as
    // on a normal activation of `sp`.
    let incidents = h.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let (incident, record) = &incidents[0];
    assert_eq!(&*record.element_id, "sp");
    assert_eq!(record.error_type, ErrorType::ExtractValueError);
    assert!(record.error_message.contains("event 'b'"), "{record:?}");
    assert!(h.activate("pack", 1).is_empty(), "pack waits for its scope");
    assert_replay_matches(&h);

    h.set_variables(pi, r#"{"orderId":"o-1"}"#, false)
        .expect("set");
    h.resolve(*incident).expect("resolve");
    let pack = h.activate("pack", 1);
    assert_eq!(pack.len(), 1, "pack starts once the scope subscribed");
    h.complete(pack[0].key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}
