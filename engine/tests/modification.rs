//! Process instance modification (MODIFY) and start instructions: moving a
//! token past an incident, activating inside a sub-process that is not
//! active, variable instructions, ancestors, terminating the last element,
//! each of Zeebe's rejections (with nothing written), and replay.

mod common;
use ::engine::*;
use common::*;

/// start → charge (job `charge`) → ship (job `ship`) → end.
fn shop() -> String {
    bpmn(
        "shop",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}{}<bpmn:endEvent id="end"/>{}{}{}"#,
            service_task("charge", "charge", ""),
            service_task("ship", "ship", ""),
            flow("f1", "start", "charge"),
            flow("f2", "charge", "ship"),
            flow("f3", "ship", "end")
        ),
    )
}

/// start → prepare (job `prepare`) → sp { inner_start → pack (job `pack`) → inner_end } → end.
fn nested() -> String {
    bpmn(
        "nested",
        &format!(
            r#"<bpmn:startEvent id="start"/>{}<bpmn:subProcess id="sp"><bpmn:startEvent id="inner_start"/>{}<bpmn:endEvent id="inner_end"/>{}{}</bpmn:subProcess><bpmn:endEvent id="end"/>{}{}{}"#,
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

fn activate(element_id: &str) -> ActivateInstruction {
    ActivateInstruction {
        element_id: element_id.into(),
        ancestor_scope_key: NO_KEY,
        variable_instructions: vec![],
        ancestor_scope_keys: vec![],
    }
}

fn modify(
    h: &mut Harness,
    pi: i64,
    activate: Vec<ActivateInstruction>,
    terminate: Vec<i64>,
) -> Result<ResponseValue, Rejection> {
    h.request(Record::command(
        pi,
        Intent::Modify,
        RecordValue::ProcessInstanceModification(ProcessInstanceModificationRecord {
            process_instance_key: pi,
            terminate_instructions: terminate,
            activate_instructions: activate,
        }),
        None,
    ))
}

fn rejected(result: Result<ResponseValue, Rejection>) -> Rejection {
    match result {
        Err(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn a_token_stuck_on_an_incident_moves_to_the_next_task() {
    let mut h = Harness::new();
    h.deploy("shop.bpmn", &shop()).expect("deploy");
    let pi = h.create("shop", "{}");
    let job = h.activate("charge", 1).remove(0);
    h.job(Intent::Fail, job.key, |j| {
        j.retries = 0;
        j.error_message = "card declined".into();
    })
    .expect("fail");
    assert_eq!(h.incidents().len(), 1, "the failed job raised an incident");
    let charge = element_key(&h, pi, "charge");

    let mut ship = activate("ship");
    ship.variable_instructions.push(VariableInstruction {
        variables: r#"{"paid":true}"#.into(),
        element_id: String::new(),
    });
    let response = modify(&mut h, pi, vec![ship], vec![charge]).expect("modify");
    assert_eq!(response, ResponseValue::ProcessInstanceModified { key: pi });

    assert!(h.incidents().is_empty(), "the incident is resolved");
    assert!(
        !h.engine.state().jobs.contains_key(&job.key),
        "the failed job is canceled"
    );
    assert_eq!(
        h.element_intents(pi, "charge"),
        [
            "ELEMENT_ACTIVATING",
            "ELEMENT_ACTIVATED",
            "ELEMENT_TERMINATING",
            "ELEMENT_TERMINATED"
        ]
    );
    assert_eq!(h.variable(pi, "paid").as_deref(), Some("true"));
    let modified = h
        .log
        .iter()
        .find(|r| r.intent == Intent::Modified)
        .expect("MODIFIED event");
    assert_eq!(modified.key, pi);
    let ship_job = h.activate("ship", 1).remove(0);
    assert_eq!(&*ship_job.job.element_id, "ship");
    h.complete(ship_job.key, "{}").expect("complete");
    assert!(h.is_completed(pi), "the instance ends at the end event");
    assert_replay_matches(&h);
}

#[test]
fn activating_inside_an_inactive_sub_process_creates_it_with_its_variables() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    let pi = h.create("nested", "{}");
    let prepare = element_key(&h, pi, "prepare");
    let mut pack = activate("pack");
    pack.variable_instructions = vec![
        VariableInstruction {
            variables: r#"{"box":"large"}"#.into(),
            element_id: "sp".into(),
        },
        VariableInstruction {
            variables: r#"{"fragile":true}"#.into(),
            element_id: "pack".into(),
        },
    ];
    modify(&mut h, pi, vec![pack], vec![prepare]).expect("modify");

    let sp = element_key(&h, pi, "sp");
    let pack_key = element_key(&h, pi, "pack");
    assert_eq!(h.variable(sp, "box").as_deref(), Some("\"large\""));
    assert_eq!(h.variable(pack_key, "fragile").as_deref(), Some("true"));
    assert_eq!(h.variable(pi, "box"), None, "set on the sub-process only");
    assert!(
        h.element_intents(pi, "inner_start").is_empty(),
        "the sub-process is entered at the activated element, not its start event"
    );
    let event = h
        .log
        .iter()
        .find_map(|r| match &r.value {
            RecordValue::ProcessInstanceModification(m) if r.intent == Intent::Modified => {
                Some(m.clone())
            }
            _ => None,
        })
        .expect("MODIFIED");
    assert_eq!(event.activate_instructions[0].ancestor_scope_keys, [pi, sp]);
    let job = h.activate("pack", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(pi), "sub-process and process complete");
    assert_replay_matches(&h);
}

#[test]
fn terminating_the_last_active_element_terminates_the_instance() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    let pi = h.create("nested", "{}");
    let job = h.activate("prepare", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    let pack = element_key(&h, pi, "pack");
    modify(&mut h, pi, vec![], vec![pack]).expect("modify");
    assert!(
        h.is_terminated(pi),
        "nothing is left: the instance is terminated"
    );
    assert_eq!(
        h.element_intents(pi, "sp")[2..],
        ["ELEMENT_TERMINATING", "ELEMENT_TERMINATED"]
    );
    assert!(h.engine.state().instances.is_empty());
    assert!(h.engine.state().jobs.is_empty());
    assert_replay_matches(&h);
}

#[test]
fn terminating_a_sub_process_terminates_its_children_and_keeps_activated_siblings() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    let pi = h.create("nested", "{}");
    let job = h.activate("prepare", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    let sp = element_key(&h, pi, "sp");
    // Back to "prepare": the sub-process goes, the instance stays.
    modify(&mut h, pi, vec![activate("prepare")], vec![sp]).expect("modify");
    assert_eq!(
        h.element_intents(pi, "pack")[2..],
        ["ELEMENT_TERMINATING", "ELEMENT_TERMINATED"]
    );
    assert!(!h.is_terminated(pi));
    let job = h.activate("prepare", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    let job = h.activate("pack", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(pi));
    assert_replay_matches(&h);
}

#[test]
fn an_ancestor_chooses_between_two_instances_of_a_flow_scope() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    let pi = h.create("nested", "{}");
    // Two instances of the sub-process.
    modify(&mut h, pi, vec![activate("sp"), activate("sp")], vec![]).expect("modify");
    let sps: Vec<i64> = h
        .engine
        .state()
        .children_of(pi)
        .into_iter()
        .filter(|k| *k != element_key(&h, pi, "prepare"))
        .collect();
    assert_eq!(sps.len(), 2, "two sub-process instances");
    let r = rejected(modify(&mut h, pi, vec![activate("pack")], vec![]));
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert_eq!(
        r.reason,
        "Expected to modify instance of process 'nested' but it contains one or more activate instructions for an element that has a flow scope with more than one active instance: 'sp'. Can't decide in which instance of the flow scope the element should be activated. Please specify an ancestor element instance key for this activate instruction."
    );
    let mut pack = activate("pack");
    pack.ancestor_scope_key = sps[1];
    modify(&mut h, pi, vec![pack], vec![]).expect("modify with ancestor");
    let packs: Vec<i64> = h.engine.state().children_of(sps[1]);
    assert_eq!(
        packs.len(),
        2,
        "the start-event token and the activated one"
    );
    assert_eq!(h.engine.state().children_of(sps[0]).len(), 1);
    assert_replay_matches(&h);
}

#[test]
fn rejections_name_the_input_and_write_nothing() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    h.deploy("shop.bpmn", &shop()).expect("deploy");
    let pi = h.create("nested", "{}");
    let other = h.create("shop", "{}");
    let prepare = element_key(&h, pi, "prepare");
    let foreign = element_key(&h, other, "charge");
    let before = h.engine.state().instances.clone();

    let cases: Vec<(Vec<ActivateInstruction>, Vec<i64>, String)> = vec![
        (
            vec![activate("nope")],
            vec![],
            "Expected to modify instance of process 'nested' but it contains one or more activate instructions with an element that could not be found: 'nope'".to_string(),
        ),
        (
            vec![activate("inner_start")],
            vec![],
            "Expected to modify instance of process 'nested' but it contains one or more activate instructions for elements that are unsupported: 'inner_start'. The activation of elements with type 'START_EVENT' is not supported. Supported element types are: [SUB_PROCESS, EVENT_SUB_PROCESS, INTERMEDIATE_CATCH_EVENT, INTERMEDIATE_THROW_EVENT, END_EVENT, SERVICE_TASK, RECEIVE_TASK, USER_TASK, MANUAL_TASK, TASK, EXCLUSIVE_GATEWAY, PARALLEL_GATEWAY, EVENT_BASED_GATEWAY, INCLUSIVE_GATEWAY, MULTI_INSTANCE_BODY, CALL_ACTIVITY, BUSINESS_RULE_TASK, SCRIPT_TASK, SEND_TASK].".to_string(),
        ),
        (
            vec![activate("nested")],
            vec![],
            "Expected to modify instance of process 'nested' but it contains one or more activate instructions for elements that are unsupported: 'nested'. The activation of elements with type 'PROCESS' is not supported. Supported element types are: [SUB_PROCESS, EVENT_SUB_PROCESS, INTERMEDIATE_CATCH_EVENT, INTERMEDIATE_THROW_EVENT, END_EVENT, SERVICE_TASK, RECEIVE_TASK, USER_TASK, MANUAL_TASK, TASK, EXCLUSIVE_GATEWAY, PARALLEL_GATEWAY, EVENT_BASED_GATEWAY, INCLUSIVE_GATEWAY, MULTI_INSTANCE_BODY, CALL_ACTIVITY, BUSINESS_RULE_TASK, SCRIPT_TASK, SEND_TASK].".to_string(),
        ),
        (
            vec![],
            vec![12345],
            "Expected to modify instance of process 'nested' but it contains one or more terminate instructions with an element instance that could not be found: '12345'".to_string(),
        ),
        (
            vec![],
            vec![foreign],
            format!("Expected to modify instance of process 'nested' but it contains one or more terminate instructions with an element instance that could not be found: '{foreign}'"),
        ),
        (
            vec![ActivateInstruction {
                variable_instructions: vec![VariableInstruction {
                    variables: "{}".into(),
                    element_id: "ghost".into(),
                }],
                ..activate("pack")
            }],
            vec![],
            "Expected to modify instance of process 'nested' but it contains one or more variable instructions with a scope element id that could not be found: 'ghost'".to_string(),
        ),
        (
            vec![ActivateInstruction {
                variable_instructions: vec![VariableInstruction {
                    variables: "{}".into(),
                    element_id: "prepare".into(),
                }],
                ..activate("pack")
            }],
            vec![],
            "Expected to modify instance of process 'nested' but it contains one or more variable instructions with a scope element that doesn't belong to the activating element's flow scope. These variables should be set before or after the modification.".to_string(),
        ),
        (
            vec![ActivateInstruction {
                ancestor_scope_key: 999_999,
                ..activate("pack")
            }],
            vec![],
            "Expected to modify instance of process 'nested' but it contains one or more activate instructions with an ancestor scope key that does not exist, or is not in an active state: '999999'".to_string(),
        ),
        (
            vec![ActivateInstruction {
                ancestor_scope_key: prepare,
                ..activate("pack")
            }],
            vec![],
            format!("Expected to modify instance of process 'nested' but it contains one or more activate instructions with an ancestor scope key that is not an ancestor of the element to activate:\n- instance '{prepare}' of element 'prepare' is not an ancestor of element 'pack'"),
        ),
        (
            vec![ActivateInstruction {
                ancestor_scope_key: other,
                ..activate("pack")
            }],
            vec![],
            format!("Expected to modify instance of process 'nested' but it contains one or more activate instructions with an ancestor scope key that does not belong to the modified process instance: '{other}'"),
        ),
    ];
    for (activations, terminations, reason) in cases {
        let log_len = h.log.len();
        let r = rejected(modify(&mut h, pi, activations, terminations));
        assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
        assert_eq!(r.reason, reason);
        assert_eq!(
            h.log.len(),
            log_len + 2,
            "the command and its rejection only"
        );
        assert_eq!(h.log[log_len + 1].record_type, RecordType::CommandRejection);
    }
    assert_eq!(h.engine.state().instances, before, "no state changed");

    let r = rejected(modify(&mut h, 4242, vec![activate("pack")], vec![]));
    assert_eq!(r.rejection_type, RejectionType::NotFound);
    assert_eq!(
        r.reason,
        "Expected to modify process instance but no process instance found with key '4242'"
    );
}

#[test]
fn activating_in_a_flow_scope_that_is_terminated_is_rejected() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    let pi = h.create("nested", "{}");
    let job = h.activate("prepare", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    let sp = element_key(&h, pi, "sp");
    let r = rejected(modify(&mut h, pi, vec![activate("pack")], vec![sp]));
    assert_eq!(
        r.reason,
        format!("Expected to modify instance of process 'nested' but it contains one or more activate instructions for elements whose required flow scope instance is also being terminated: element 'pack' requires flow scope instance '{sp}' which is being terminated. Please provide a valid ancestor scope key for the activation or avoid terminating the required flow scope.")
    );
}

#[test]
fn events_after_an_event_based_gateway_cannot_be_activated() {
    let mut h = Harness::new();
    let xml = bpmn(
        "gw",
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:eventBasedGateway id="g"/><bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent><bpmn:intermediateCatchEvent id="later"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent><bpmn:endEvent id="end"/>{}{}{}{}{}"#,
            flow("f1", "start", "g"),
            flow("f2", "g", "wait"),
            flow("f3", "g", "later"),
            flow("f4", "wait", "end"),
            flow("f5", "later", "end")
        ),
    );
    h.deploy("gw.bpmn", &xml).expect("deploy");
    let pi = h.create("gw", r#"{"k":"1"}"#);
    let r = rejected(modify(&mut h, pi, vec![activate("wait")], vec![]));
    assert_eq!(
        r.reason,
        "Expected to modify instance of process 'gw' but it contains one or more activate instructions for elements that are unsupported: 'wait'. The activation of events belonging to an event-based gateway is not supported."
    );
}

fn create_at(
    h: &mut Harness,
    process_id: &str,
    elements: &[&str],
) -> Result<ResponseValue, Rejection> {
    let mut command = create_command(process_id, -1, r#"{"n":1}"#, false);
    if let RecordValue::ProcessInstanceCreation(c) = &mut command.value {
        c.start_instructions = elements.iter().map(|e| e.to_string()).collect();
    }
    h.request(command)
}

#[test]
fn start_instructions_start_the_instance_at_the_given_elements() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    h.deploy("shop.bpmn", &shop()).expect("deploy");
    let pi = match create_at(&mut h, "shop", &["ship"]).expect("create") {
        ResponseValue::ProcessInstanceCreated {
            process_instance_key,
            ..
        } => process_instance_key,
        other => panic!("{other:?}"),
    };
    assert!(h.element_intents(pi, "start").is_empty(), "no start event");
    assert!(h.element_intents(pi, "charge").is_empty());
    assert_eq!(h.variable(pi, "n").as_deref(), Some("1"));
    let job = h.activate("ship", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(pi));

    // Two elements, one inside the sub-process: both run.
    let pi = match create_at(&mut h, "nested", &["prepare", "pack"]).expect("create") {
        ResponseValue::ProcessInstanceCreated {
            process_instance_key,
            ..
        } => process_instance_key,
        other => panic!("{other:?}"),
    };
    assert!(h.element_intents(pi, "inner_start").is_empty());
    assert_eq!(h.activate("prepare", 1).len(), 1);
    assert_eq!(h.activate("pack", 1).len(), 1);
    assert_replay_matches(&h);
}

#[test]
fn start_instructions_are_rejected_for_unknown_and_unsupported_elements() {
    let mut h = Harness::new();
    h.deploy("nested.bpmn", &nested()).expect("deploy");
    let r = rejected(create_at(&mut h, "nested", &["nope"]));
    assert_eq!(r.rejection_type, RejectionType::InvalidArgument);
    assert_eq!(
        r.reason,
        "Expected to create instance of process with start instructions but no element found with id 'nope'."
    );
    let r = rejected(create_at(&mut h, "nested", &["inner_start"]));
    assert!(
        r.reason.starts_with("Expected to create instance of process with start instructions but the element with id 'inner_start' targets unsupported element type 'START_EVENT'."),
        "{}",
        r.reason
    );
    assert!(h.engine.state().instances.is_empty(), "nothing was created");
}

#[test]
fn an_element_inside_a_multi_instance_sub_process_needs_an_active_body() {
    let mut h = Harness::new();
    let xml = bpmn(
        "mi",
        &format!(
            r#"<bpmn:startEvent id="s"/>{}<bpmn:subProcess id="each"><bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=items" inputElement="item"/></bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics><bpmn:startEvent id="inner_s"/>{}<bpmn:endEvent id="inner_e"/>{}{}</bpmn:subProcess><bpmn:endEvent id="e"/>{}{}{}"#,
            service_task("first", "first", ""),
            service_task("work", "work", ""),
            flow("i1", "inner_s", "work"),
            flow("i2", "work", "inner_e"),
            flow("f1", "s", "first"),
            flow("f2", "first", "each"),
            flow("f3", "each", "e")
        ),
    );
    h.deploy("mi.bpmn", &xml).expect("deploy");
    let pi = h.create("mi", r#"{"items":[1,2]}"#);
    let r = rejected(modify(&mut h, pi, vec![activate("work")], vec![]));
    assert_eq!(
        r.reason,
        "Expected to modify instance of process 'mi' but it contains one or more activate instructions that would result in the activation of multi-instance element 'each', which is currently unsupported."
    );
    // The multi-instance element as a whole can be activated.
    let first = element_key(&h, pi, "first");
    modify(&mut h, pi, vec![activate("each")], vec![first]).expect("modify");
    assert_eq!(
        h.activate("work", 10).len(),
        2,
        "one inner instance per item"
    );
    assert_replay_matches(&h);
}

#[test]
fn a_called_instance_is_not_terminated_by_its_own_modification() {
    let mut h = Harness::new();
    let parent = bpmn(
        "parent",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="shop"/></bpmn:extensionElements></bpmn:callActivity><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "call"),
            flow("f2", "call", "e")
        ),
    );
    h.deploy("shop.bpmn", &shop()).expect("deploy");
    h.deploy("parent.bpmn", &parent).expect("deploy");
    h.create("parent", "{}");
    let child = h.instances_of("shop")[0];
    let charge = element_key(&h, child, "charge");
    let r = rejected(modify(&mut h, child, vec![], vec![charge]));
    assert_eq!(
        r.reason,
        "Expected to modify instance of process 'shop' but the given instructions would terminate the instance. The instance was created by a call activity in the parent process. To terminate this instance please modify the parent process instead."
    );
    // Moving the token inside the child is fine.
    modify(&mut h, child, vec![activate("ship")], vec![charge]).expect("modify");
    let job = h.activate("ship", 1).remove(0);
    h.complete(job.key, "{}").expect("complete");
    assert!(h.is_completed(child));
    assert_replay_matches(&h);
}
