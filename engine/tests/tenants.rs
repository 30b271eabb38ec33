//! Multi-tenancy: processes, decisions, messages and signals of one tenant
//! are invisible to another; a command restricted to some tenants cannot
//! touch an entity of another; everything written carries its tenant; the
//! tenancy survives the codec, replay and snapshots, and a state without
//! tenants keeps its snapshot layout.

mod common;
use ::engine::engine::SNAPSHOT_FORMAT_TENANCY;
use ::engine::*;
use common::*;
use std::sync::Arc;

fn in_tenant(mut command: Record, tenant: &str) -> Record {
    command.tenant = Tenant::new(tenant);
    command
}

/// `command` of a caller who may act in `tenants` only.
fn as_member_of(mut command: Record, tenants: &[&str]) -> Record {
    let list: Vec<Tenant> = tenants.iter().map(|t| Tenant::new(t)).collect();
    command.authorized_tenants = Some(Arc::from(list));
    command
}

fn deployment(name: &str, xml: &str) -> Record {
    Record::command(
        NO_KEY,
        Intent::Create,
        RecordValue::Deployment(DeploymentRecord {
            resources: vec![DeploymentResource {
                name: name.into(),
                content: xml.as_bytes().to_vec(),
            }],
            processes: vec![],
            decision_requirements: vec![],
            decisions: vec![],
            forms: vec![],
        }),
        None,
    )
}

fn deploy_in(h: &mut Harness, tenant: &str, name: &str, xml: &str) -> Vec<ProcessMetadata> {
    match h.request(in_tenant(deployment(name, xml), tenant)) {
        Ok(ResponseValue::Deployment { processes, .. }) => processes,
        other => panic!("deploy in {tenant}: {other:?}"),
    }
}

fn create_in(h: &mut Harness, tenant: &str, process_id: &str) -> Result<(i64, i64), Rejection> {
    match h.request(in_tenant(
        create_command(process_id, -1, "{}", false),
        tenant,
    ))? {
        ResponseValue::ProcessInstanceCreated {
            process_definition_key,
            process_instance_key,
            ..
        } => Ok((process_definition_key, process_instance_key)),
        other => panic!("create: {other:?}"),
    }
}

fn job_batch(job_type: &str) -> Record {
    Record::command(
        NO_KEY,
        Intent::Activate,
        RecordValue::JobBatch(JobBatchRecord {
            job_type: job_type.into(),
            worker: "w".into(),
            timeout_ms: 30_000,
            max_jobs_to_activate: 10,
            fetch_variables: vec![],
            job_keys: vec![],
            jobs: vec![],
            truncated: false,
        }),
        None,
    )
}

fn activate_for(h: &mut Harness, job_type: &str, tenants: &[&str]) -> Vec<ActivatedJob> {
    match h.request(as_member_of(job_batch(job_type), tenants)) {
        Ok(ResponseValue::JobBatch { jobs, .. }) => jobs,
        other => panic!("activate: {other:?}"),
    }
}

/// Tenants of the events written about `key`.
fn tenants_of_events(h: &Harness, key: i64) -> Vec<String> {
    let mut tenants: Vec<String> = h
        .log
        .iter()
        .filter(|r| r.record_type == RecordType::Event && r.key == key)
        .map(|r| r.tenant.to_string())
        .collect();
    tenants.dedup();
    tenants
}

#[test]
fn the_same_process_id_is_a_separate_definition_in_each_tenant() {
    let mut h = Harness::new();
    let acme = deploy_in(&mut h, "acme", "order.bpmn", &one_task("order"));
    let globex = deploy_in(&mut h, "globex", "order.bpmn", &one_task("order"));
    assert_eq!((acme[0].version, globex[0].version), (1, 1));
    assert!(
        !globex[0].duplicate,
        "equal content in another tenant is new"
    );
    assert_ne!(
        acme[0].process_definition_key,
        globex[0].process_definition_key
    );
    let again = deploy_in(&mut h, "acme", "order.bpmn", &one_task("order"));
    assert!(again[0].duplicate);

    let refused = create_in(&mut h, "<default>", "order").unwrap_err();
    assert_eq!(refused.rejection_type, RejectionType::NotFound);
    let (definition, pi) = create_in(&mut h, "globex", "order").unwrap();
    assert_eq!(definition, globex[0].process_definition_key);
    assert_eq!(tenants_of_events(&h, pi), ["globex"]);
    let jobs = activate_for(&mut h, "work", &["globex"]);
    assert_eq!(jobs.len(), 1);
    assert_eq!(tenants_of_events(&h, jobs[0].key), ["globex"]);
    assert_eq!(
        h.engine.state().process_tenant(definition).as_str(),
        "globex"
    );
    assert_replay_matches(&h);
}

#[test]
fn a_caller_cannot_touch_or_activate_what_belongs_to_another_tenant() {
    let mut h = Harness::new();
    deploy_in(&mut h, "acme", "order.bpmn", &one_task("order"));
    deploy_in(&mut h, "globex", "order.bpmn", &one_task("order"));
    let (_, acme_pi) = create_in(&mut h, "acme", "order").unwrap();
    let (_, globex_pi) = create_in(&mut h, "globex", "order").unwrap();

    let cancel = cancel_command;
    let refused = h
        .request(as_member_of(cancel(acme_pi), &["globex"]))
        .unwrap_err();
    assert_eq!(refused.rejection_type, RejectionType::NotFound);
    assert!(!h.is_terminated(acme_pi), "nothing changed");

    let jobs = activate_for(&mut h, "work", &["globex"]);
    assert_eq!(jobs.len(), 1, "only the job of globex");
    assert_eq!(jobs[0].job.process_instance_key, globex_pi);
    let acme_job = *h.engine.state().activatable["work"].iter().next().unwrap();
    let mut complete = Record::command(
        acme_job,
        Intent::Complete,
        RecordValue::Job(Box::new(JobRecord::empty())),
        None,
    );
    complete = as_member_of(complete, &["globex"]);
    assert_eq!(
        h.request(complete).unwrap_err().rejection_type,
        RejectionType::NotFound
    );
    assert!(activate_for(&mut h, "work", &["globex"]).is_empty());

    let jobs = activate_for(&mut h, "work", &["acme", "globex"]);
    assert_eq!(jobs.len(), 1, "the job of acme, for a member of both");
    let complete = Record::command(
        jobs[0].key,
        Intent::Complete,
        RecordValue::Job(Box::new(JobRecord::empty())),
        None,
    );
    h.request(as_member_of(complete, &["acme"])).unwrap();
    assert!(h.is_completed(acme_pi));
    h.request(as_member_of(cancel(globex_pi), &["globex"]))
        .unwrap();
    assert!(h.is_terminated(globex_pi));
    assert_replay_matches(&h);
}

fn message_catch(process_id: &str) -> String {
    bpmn(
        process_id,
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="wait"><bpmn:messageEventDefinition messageRef="m"/></bpmn:intermediateCatchEvent><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "wait"),
            flow("f2", "wait", "e")
        ),
    )
    .replace(
        "</bpmn:definitions>",
        r#"<bpmn:message id="m" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId"/></bpmn:extensionElements></bpmn:message></bpmn:definitions>"#,
    )
}

fn publish_in(c: &mut Cluster, tenant: &str, correlation_key: &str) {
    let p = message_partition(correlation_key, 2);
    let command = in_tenant(
        message_command("paid", correlation_key, 60_000, "", "{}"),
        tenant,
    );
    c.partition(p).request(command).expect("published");
    c.deliver();
}

#[test]
fn a_message_correlates_within_its_tenant_across_partitions() {
    let mut c = Cluster::new(2);
    for tenant in ["acme", "globex"] {
        c.partition(1)
            .request(in_tenant(
                deployment("order.bpmn", &message_catch("order")),
                tenant,
            ))
            .unwrap();
        c.deliver();
    }
    // the instances on partition 1, the messages on partition 2
    let key = (0..)
        .map(|i| format!("key-{i}"))
        .find(|k| message_partition(k, 2) == 2)
        .unwrap();
    let vars = format!(r#"{{"orderId": "{key}"}}"#);
    let create = |tenant: &str| in_tenant(create_command("order", -1, &vars, false), tenant);
    let pi_of = |r: Result<ResponseValue, Rejection>| match r {
        Ok(ResponseValue::ProcessInstanceCreated {
            process_instance_key,
            ..
        }) => process_instance_key,
        other => panic!("{other:?}"),
    };
    let acme = pi_of(c.partition(1).request(create("acme")));
    let globex = pi_of(c.partition(1).request(create("globex")));
    c.deliver();

    publish_in(&mut c, "globex", &key);
    assert!(c.partition(1).is_completed(globex));
    assert!(!c.partition(1).is_completed(acme), "a message of globex");
    publish_in(&mut c, "<default>", &key);
    assert!(!c.partition(1).is_completed(acme), "a message of no tenant");
    publish_in(&mut c, "acme", &key);
    assert!(c.partition(1).is_completed(acme));

    let messages = c.partition(2).engine.state();
    assert_eq!(messages.messages.len(), 3, "each buffered until its TTL");
    assert!(messages.message_subscriptions.is_empty());
    let snapshot = c.partition(2).engine.snapshot();
    assert_eq!(
        snapshot[0], SNAPSHOT_FORMAT_TENANCY,
        "the tenancy is in the snapshot"
    );
    let restored = Engine::restore(&snapshot).unwrap();
    assert_eq!(restored.fingerprint(), c.partition(2).engine.fingerprint());
    assert_eq!(
        restored.state().tenancy,
        c.partition(2).engine.state().tenancy
    );
    c.advance(60_001);
    let state = c.partition(2).engine.state();
    assert!(state.messages.is_empty());
    assert!(
        state
            .tenancy
            .owners
            .keys()
            .all(|k| state.processes.contains_key(k)),
        "expired messages leave the tenancy, the definitions stay"
    );
}

#[test]
fn a_signal_reaches_the_catch_and_start_events_of_its_tenant() {
    let mut h = Harness::new();
    let catch = bpmn(
        "wait",
        &format!(
            r#"<bpmn:startEvent id="s"/><bpmn:intermediateCatchEvent id="c"><bpmn:signalEventDefinition signalRef="sig"/></bpmn:intermediateCatchEvent><bpmn:endEvent id="e"/>{}{}"#,
            flow("f1", "s", "c"),
            flow("f2", "c", "e")
        ),
    )
    .replace(
        "</bpmn:definitions>",
        r#"<bpmn:signal id="sig" name="go"/></bpmn:definitions>"#,
    );
    let start = bpmn(
        "started",
        &format!(
            r#"<bpmn:startEvent id="s"><bpmn:signalEventDefinition signalRef="sig"/></bpmn:startEvent><bpmn:endEvent id="e"/>{}"#,
            flow("f1", "s", "e")
        ),
    )
    .replace(
        "</bpmn:definitions>",
        r#"<bpmn:signal id="sig" name="go"/></bpmn:definitions>"#,
    );
    for tenant in ["acme", "globex"] {
        deploy_in(&mut h, tenant, "wait.bpmn", &catch);
        deploy_in(&mut h, tenant, "started.bpmn", &start);
    }
    let (_, acme) = create_in(&mut h, "acme", "wait").unwrap();
    let (_, globex) = create_in(&mut h, "globex", "wait").unwrap();
    let broadcast = Record::command(
        NO_KEY,
        Intent::Broadcast,
        RecordValue::Signal(SignalRecord {
            signal_name: "go".into(),
            variables: "{}".into(),
        }),
        None,
    );
    h.request(in_tenant(broadcast, "acme")).unwrap();
    assert!(h.is_completed(acme));
    assert!(!h.is_completed(globex));
    let started: Vec<String> = h
        .log
        .iter()
        .filter(|r| r.intent == Intent::ElementActivated)
        .filter_map(|r| match &r.value {
            RecordValue::ProcessInstance(pi)
                if &*pi.bpmn_process_id == "started"
                    && pi.bpmn_element_type == BpmnElementType::Process =>
            {
                Some(r.tenant.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(started, ["acme"], "one start event, in acme");
    assert_replay_matches(&h);
}

#[test]
fn a_decision_is_evaluated_in_its_tenant() {
    let dmn = r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="greet" name="Greet" namespace="http://waggle/greet">
  <decision id="greeting" name="Greeting"><literalExpression><text>"hello " + name</text></literalExpression></decision>
</definitions>"#;
    let mut h = Harness::new();
    h.request(in_tenant(deployment("greet.dmn", dmn), "acme"))
        .unwrap();
    let evaluate = |tenant: &str| {
        in_tenant(
            Record::command(
                NO_KEY,
                Intent::Evaluate,
                RecordValue::DecisionEvaluation(Box::new(DecisionEvaluationRecord::command(
                    NO_KEY,
                    "greeting",
                    r#"{"name": "ann"}"#.into(),
                ))),
                None,
            ),
            tenant,
        )
    };
    let refused = h.request(evaluate("<default>")).unwrap_err();
    assert_eq!(refused.rejection_type, RejectionType::NotFound);
    match h.request(evaluate("acme")) {
        Ok(ResponseValue::DecisionEvaluated { evaluation, .. }) => {
            assert_eq!(evaluation.decision_output, r#""hello ann""#)
        }
        other => panic!("{other:?}"),
    }
    assert_replay_matches(&h);
}

#[test]
fn records_of_the_default_tenant_keep_format_3_and_others_carry_their_tenant() {
    let mut bytes = Vec::new();
    create_command("order", -1, "{}", false).encode(&mut bytes);
    assert_eq!(bytes[0], 3);
    let tenanted = as_member_of(
        in_tenant(create_command("order", -1, "{}", false), "acme"),
        &["acme"],
    );
    bytes.clear();
    tenanted.encode(&mut bytes);
    assert_eq!(bytes[0], 4);
    let decoded = Record::decode(&bytes).unwrap();
    assert_eq!(decoded, tenanted);
    assert_eq!(decoded.tenant.as_str(), "acme");
    bytes.truncate(3);
    assert!(Record::decode(&bytes).is_err(), "a cut header is an error");

    let mut h = Harness::new();
    h.deploy("order.bpmn", &one_task("order")).unwrap();
    h.create("order", "{}");
    assert!(h.engine.state().tenancy.is_empty());
    assert_ne!(
        h.engine.snapshot()[0],
        8,
        "no tenancy section without tenants"
    );
}

/// `command` of a caller whose grants cover `processes` only.
fn granted(mut command: Record, processes: &[&str]) -> Record {
    let list: Vec<Arc<str>> = processes.iter().map(|p| Arc::from(*p)).collect();
    command.authorized_processes = Some(Arc::from(list));
    command
}

#[test]
fn grants_on_some_processes_cover_their_instances_and_jobs_only() {
    let mut h = Harness::new();
    h.deploy("order.bpmn", &one_task("order")).unwrap();
    h.deploy("refund.bpmn", &one_task("refund")).unwrap();
    let order = h.create("order", "{}");
    let refund = h.create("refund", "{}");
    let cancel = cancel_command;
    let refused = h.request(granted(cancel(refund), &["order"])).unwrap_err();
    assert_eq!(refused.rejection_type, RejectionType::Forbidden);
    assert!(refused.reason.contains("'refund'"), "{}", refused.reason);
    assert!(!h.is_terminated(refund), "nothing changed");
    let refused = h
        .request(granted(
            create_command("refund", -1, "{}", false),
            &["order"],
        ))
        .unwrap_err();
    assert_eq!(refused.rejection_type, RejectionType::Forbidden);

    let activation = granted(job_batch("work"), &["order"]);
    let Ok(ResponseValue::JobBatch { jobs, .. }) = h.request(activation) else {
        panic!("activated");
    };
    assert_eq!(jobs.len(), 1, "the job of order only");
    assert_eq!(jobs[0].job.process_instance_key, order);
    h.request(granted(cancel(order), &["order"])).unwrap();
    assert!(h.is_terminated(order));

    let mut bytes = Vec::new();
    let command = granted(cancel(refund), &["order"]);
    command.encode(&mut bytes);
    assert_eq!(bytes[0], 4, "grants travel in the caller header");
    assert_eq!(Record::decode(&bytes).unwrap(), command);
}

#[test]
fn a_push_stream_gets_the_jobs_of_its_tenants_and_processes_only() {
    let mut h = Harness::new();
    deploy_in(&mut h, "acme", "order.bpmn", &one_task("order"));
    deploy_in(&mut h, "acme", "refund.bpmn", &one_task("refund"));
    deploy_in(&mut h, "globex", "order.bpmn", &one_task("order"));
    h.engine.add_job_stream(7, "work", "pusher", 10_000, vec![]);
    h.engine.restrict_job_stream(
        7,
        Some(vec![Tenant::new("acme")]),
        Some(vec![Arc::from("order")]),
    );
    let (_, globex) = create_in(&mut h, "globex", "order").unwrap();
    let (_, refund) = create_in(&mut h, "acme", "refund").unwrap();
    let (_, order) = create_in(&mut h, "acme", "order").unwrap();
    let pushed: Vec<i64> = h
        .pushed
        .iter()
        .map(|p| p.job.job.process_instance_key)
        .collect();
    assert_eq!(
        pushed,
        [order],
        "neither globex's job ({globex}) nor refund's ({refund})"
    );
    assert_eq!(h.pushed[0].job.tenant.as_str(), "acme");
    let left = activate_for(&mut h, "work", &["acme", "globex"]);
    assert_eq!(left.len(), 2, "the others stay activatable");
}
