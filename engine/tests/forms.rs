//! Camunda Forms: deployment (versions, duplicates, rejected resources),
//! user tasks linked with `zeebe:formDefinition formId` under each binding
//! type, the FORM_NOT_FOUND incident, custom form references, deletion on
//! every partition, snapshots and replay.

mod common;
use ::engine::forms::FormMetadata;
use ::engine::*;
use common::*;

fn form(id: &str, extra: &str) -> String {
    format!(
        r#"{{"id": "{id}", "type": "default", "components": [{{"type": "textfield", "key": "name"{extra}}}]}}"#
    )
}

fn form_with_tag(id: &str, tag: &str) -> String {
    format!(r#"{{"id": "{id}", "versionTag": "{tag}", "components": []}}"#)
}

fn user_task(process_id: &str, form_definition: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:userTask id="task"><bpmn:extensionElements><zeebe:userTask/><zeebe:formDefinition {form_definition}/></bpmn:extensionElements></bpmn:userTask><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "task"),
            flow("f2", "task", "e")
        ),
    )
}

fn forms_of(r: Result<ResponseValue, Rejection>) -> Vec<FormMetadata> {
    match r {
        Ok(ResponseValue::Deployment { forms, .. }) => forms,
        other => panic!("deployment: {other:?}"),
    }
}

fn deploy_form(h: &mut Harness, name: &str, json: &str) -> FormMetadata {
    forms_of(h.deploy(name, json)).remove(0)
}

/// The form key of the last created user task.
fn task_form_key(h: &Harness) -> i64 {
    h.log
        .iter()
        .rev()
        .filter(|r| r.record_type == RecordType::Event && r.intent == Intent::Created)
        .find_map(|r| match &r.value {
            RecordValue::UserTask(t) => Some(t.form_key),
            _ => None,
        })
        .expect("a user task was created")
}

fn delete(h: &mut Harness, resource_key: i64) -> Result<ResponseValue, Rejection> {
    h.request(Record::command(
        NO_KEY,
        Intent::Delete,
        RecordValue::ResourceDeletion(ResourceDeletionRecord { resource_key }),
        None,
    ))
}

#[test]
fn a_form_is_deployed_with_versions_and_a_duplicate_keeps_key_and_version() {
    let mut h = Harness::new();
    let v1 = deploy_form(&mut h, "order.form", &form("order", ""));
    assert_eq!(
        (&*v1.form_id, v1.version, v1.duplicate),
        ("order", 1, false)
    );
    assert_eq!(v1.resource_name, "order.form");
    assert_eq!(h.count(ValueType::Form, Intent::Created), 1);
    let created = h
        .log
        .iter()
        .find_map(|r| match &r.value {
            RecordValue::Form(f) if r.intent == Intent::Created => Some((r.key, f.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(created.0, v1.form_key);
    assert_eq!(&*created.1.resource, form("order", "").as_bytes());
    assert_ne!(created.1.metadata.deployment_key, NO_KEY);

    let again = deploy_form(&mut h, "renamed.form", &form("order", ""));
    assert!(again.duplicate);
    assert_eq!((again.form_key, again.version), (v1.form_key, 1));
    assert_eq!(h.count(ValueType::Form, Intent::Created), 1);

    let v2 = deploy_form(&mut h, "order.form", &form("order", r#", "label": "Name""#));
    assert_eq!(v2.version, 2);
    assert_ne!(v2.form_key, v1.form_key);
    let other = deploy_form(&mut h, "invoice.form", &form("invoice", ""));
    assert_eq!(other.version, 1);
    assert_eq!(
        h.engine
            .state()
            .forms
            .latest(&Tenant::default(), "order")
            .unwrap()
            .metadata
            .form_key,
        v2.form_key
    );
}

#[test]
fn bad_forms_are_rejected_naming_the_resource() {
    let mut h = Harness::new();
    let deep = format!(
        "{{\"id\": \"deep\", \"x\": {}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    for (name, content, expected) in [
        (
            "broken.form",
            "{not json",
            "'broken.form': Expected the form to be JSON",
        ),
        (
            "noid.form",
            r#"{"components": []}"#,
            "'noid.form': Expected the form to have a non-empty string 'id'",
        ),
        (
            "numid.form",
            r#"{"id": 7}"#,
            "'numid.form': Expected the form to have a non-empty string 'id'",
        ),
        (
            "list.form",
            r#"["id"]"#,
            "'list.form': Expected the form to be a JSON object",
        ),
        (
            "deep.form",
            deep.as_str(),
            "'deep.form': Expected the form to nest at most",
        ),
    ] {
        let err = h.deploy(name, content).unwrap_err();
        assert_eq!(err.rejection_type, RejectionType::InvalidArgument, "{name}");
        assert!(err.reason.contains(expected), "{name}: {}", err.reason);
    }
    let err = deploy_all(
        &mut h,
        &[
            ("a.form", &form("same", "")),
            ("b.form", &form("same", r#", "x": 1"#)),
        ],
    )
    .unwrap_err();
    assert!(
        err.reason
            .contains("duplicated id 'same' in the resources 'a.form' and 'b.form'"),
        "{}",
        err.reason
    );
    assert_eq!(h.count(ValueType::Form, Intent::Created), 0);
    assert!(h.engine.state().forms.forms.is_empty());
}

#[test]
fn a_user_task_links_the_latest_form_by_default() {
    let mut h = Harness::new();
    deploy_form(&mut h, "order.form", &form("order", ""));
    let v2 = deploy_form(&mut h, "order.form", &form("order", r#", "x": 2"#));
    h.deploy("p.bpmn", &user_task("p", r#"formId="order""#))
        .unwrap();
    h.create("p", "{}");
    assert_eq!(task_form_key(&h), v2.form_key);
    h.deploy(
        "q.bpmn",
        &user_task("q", r#"formId="order" bindingType="latest""#),
    )
    .unwrap();
    h.create("q", "{}");
    assert_eq!(task_form_key(&h), v2.form_key);
}

#[test]
fn binding_type_deployment_links_the_form_deployed_with_the_process() {
    let mut h = Harness::new();
    let process = user_task("p", r#"formId="order" bindingType="deployment""#);
    let with = forms_of(deploy_all(
        &mut h,
        &[("p.bpmn", &process), ("order.form", &form("order", ""))],
    ))
    .remove(0);
    // a newer version deployed later is not the one of the process' deployment
    let newer = deploy_form(&mut h, "order.form", &form("order", r#", "x": 2"#));
    assert_eq!(newer.version, 2);
    h.create("p", "{}");
    assert_eq!(task_form_key(&h), with.form_key);

    // a process deployed without the form gets an incident
    h.deploy(
        "q.bpmn",
        &user_task("q", r#"formId="order" bindingType="deployment""#),
    )
    .unwrap();
    h.create("q", "{}");
    let (_, incident) = h.incidents().pop().unwrap();
    assert_eq!(incident.error_type, ErrorType::FormNotFound);
    assert!(
        incident
            .error_message
            .contains("with binding type 'deployment'"),
        "{}",
        incident.error_message
    );
}

#[test]
fn binding_type_version_tag_links_the_latest_form_with_the_tag() {
    let mut h = Harness::new();
    let v1 = deploy_form(&mut h, "order.form", &form_with_tag("order", "v1"));
    deploy_form(&mut h, "order.form", &form_with_tag("order", "v2"));
    assert_eq!(v1.version_tag, "v1");
    h.deploy(
        "p.bpmn",
        &user_task(
            "p",
            r#"formId="order" bindingType="versionTag" versionTag="v1""#,
        ),
    )
    .unwrap();
    h.create("p", "{}");
    assert_eq!(task_form_key(&h), v1.form_key);
    h.deploy(
        "q.bpmn",
        &user_task(
            "q",
            r#"formId="order" bindingType="versionTag" versionTag="v9""#,
        ),
    )
    .unwrap();
    h.create("q", "{}");
    let (_, incident) = h.incidents().pop().unwrap();
    assert_eq!(incident.error_type, ErrorType::FormNotFound);
    assert!(
        incident.error_message.contains("version tag 'v9'"),
        "{}",
        incident.error_message
    );
}

#[test]
fn a_bad_binding_type_is_rejected_naming_the_element() {
    let mut h = Harness::new();
    let err = h
        .deploy(
            "p.bpmn",
            &user_task("p", r#"formId="order" bindingType="newest""#),
        )
        .unwrap_err();
    assert!(err.reason.contains("task"), "{}", err.reason);
    assert!(
        err.reason.contains("bindingType 'newest'"),
        "{}",
        err.reason
    );
    let err = h
        .deploy(
            "p.bpmn",
            &user_task("p", r#"formId="order" bindingType="versionTag""#),
        )
        .unwrap_err();
    assert!(err.reason.contains("needs a versionTag"), "{}", err.reason);
}

#[test]
fn an_unknown_form_raises_an_incident_that_resolves_once_the_form_is_deployed() {
    let mut h = Harness::new();
    h.deploy("p.bpmn", &user_task("p", r#"formId="missing""#))
        .unwrap();
    let pi = h.create("p", "{}");
    let (incident_key, incident) = h.incidents().pop().unwrap();
    assert_eq!(incident.error_type, ErrorType::FormNotFound);
    assert_eq!(incident.error_type.name(), "FORM_NOT_FOUND");
    assert!(
        incident
            .error_message
            .contains("Expected to find a form with id 'missing'"),
        "{}",
        incident.error_message
    );
    assert_eq!(h.count(ValueType::UserTask, Intent::Created), 0);
    let f = deploy_form(&mut h, "missing.form", &form("missing", ""));
    h.resolve(incident_key).unwrap();
    assert_eq!(task_form_key(&h), f.form_key);
    assert!(!h.is_completed(pi));
}

#[test]
fn custom_form_references_stay_external() {
    let mut h = Harness::new();
    h.deploy(
        "p.bpmn",
        &user_task("p", r#"externalReference="https://forms/x""#),
    )
    .unwrap();
    h.create("p", "{}");
    let t = h
        .log
        .iter()
        .rev()
        .find_map(|r| match &r.value {
            RecordValue::UserTask(t) if r.intent == Intent::Created => Some(t.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(t.form_key, NO_KEY);
    assert_eq!(t.external_form_reference, "https://forms/x");
}

#[test]
fn a_deleted_form_is_gone_on_every_partition_and_its_version_is_not_reused() {
    let mut c = Cluster::new(2);
    c.deploy("order.form", &form("order", ""));
    let key = c
        .partition(1)
        .engine
        .state()
        .forms
        .latest(&Tenant::default(), "order")
        .unwrap()
        .metadata
        .form_key;
    assert_eq!(
        c.partition(2)
            .engine
            .state()
            .forms
            .latest(&Tenant::default(), "order")
            .unwrap()
            .metadata
            .form_key,
        key
    );
    // partition 2 links the distributed form
    c.deploy("p.bpmn", &user_task("p", r#"formId="order""#));
    c.partition(2).create("p", "{}");
    assert_eq!(task_form_key(c.partition(2)), key);

    delete(c.partition(1), key).unwrap();
    c.deliver();
    for p in [1, 2] {
        let h = c.partition(p);
        assert!(h.engine.state().forms.forms.is_empty(), "partition {p}");
        assert_eq!(
            h.count(ValueType::Form, Intent::Deleted),
            1,
            "partition {p}"
        );
    }
    let err = delete(c.partition(1), key).unwrap_err();
    assert_eq!(err.rejection_type, RejectionType::NotFound);
    c.partition(2).create("p", "{}");
    let (_, incident) = c.partition(2).incidents().pop().unwrap();
    assert_eq!(incident.error_type, ErrorType::FormNotFound);
    let again = deploy_form(c.partition(1), "order.form", &form("order", ""));
    assert_eq!(again.version, 2);
    assert!(!again.duplicate);
}

#[test]
fn snapshot_and_replay_keep_the_forms() {
    let mut h = Harness::new();
    let process = user_task("p", r#"formId="order" bindingType="deployment""#);
    deploy_all(
        &mut h,
        &[("p.bpmn", &process), ("order.form", &form("order", ""))],
    )
    .unwrap();
    deploy_form(&mut h, "order.form", &form_with_tag("order", "t"));
    let gone = deploy_form(&mut h, "gone.form", &form("gone", ""));
    delete(&mut h, gone.form_key).unwrap();
    h.create("p", "{}");

    let mut follower = Engine::new(1, 1);
    for r in &h.log {
        follower.replay(r);
    }
    let bytes = h.engine.snapshot();
    assert_eq!(follower.snapshot(), bytes);
    let restored = Engine::restore(&bytes).expect("restores");
    assert_eq!(restored.snapshot(), bytes);
    let forms = &restored.state().forms;
    assert_eq!(forms.forms.len(), 2);
    assert_eq!(
        forms
            .latest(&Tenant::default(), "order")
            .unwrap()
            .metadata
            .version,
        2
    );
    assert!(forms.latest(&Tenant::default(), "gone").is_none());

    let mut h2 = Harness::with_engine(restored);
    let v1 = h2.engine.state().forms.versions["order"][&1];
    h2.create("p", "{}");
    assert_eq!(task_form_key(&h2), v1);
}
