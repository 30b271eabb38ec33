//! Process instance modification: a flow scope created on the way to the
//! activated element is entered as Zeebe 8.8 enters it (ELEMENT_ACTIVATING,
//! the variable instructions, ELEMENT_ACTIVATED, its subscriptions): its
//! input mappings are not applied, and its start event is not taken.

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
    h.request(Record::command(
        pi,
        Intent::Modify,
        RecordValue::ProcessInstanceModification(ProcessInstanceModificationRecord {
            process_instance_key: pi,
            terminate_instructions: terminate,
            activate_instructions: vec![ActivateInstruction {
                element_id: "pack".into(),
                ancestor_scope_key: NO_KEY,
                variable_instructions: vec![],
                ancestor_scope_keys: vec![],
            }],
        }),
        None,
    ))
}

/// The key of the active instance of `element_id` in instance `pi`.
fn element_key(h: &Harness, pi: i64, element_id: &str) -> i64 {
    let state = h.engine.state();
    *state
        .instances
        .iter()
        .find(|(_, i)| {
            i.process_instance_key == pi
                && state
                    .process(i.process_definition_key)
                    .is_some_and(|p| &*p.model.element(i.element).id == element_id)
        })
        .map(|(k, _)| k)
        .unwrap_or_else(|| panic!("no active instance of {element_id}"))
}

fn assert_replay_matches(h: &Harness) {
    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    assert!(follower.snapshot() == h.engine.snapshot(), "replayed state");
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
