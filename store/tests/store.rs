//! The store against real databases: the embedded SQLite and a PostgreSQL
//! this test starts (see `support/postgres.rs`). Both run the same scenario:
//! records written, written again (at least once delivery), written out of
//! order, searched, and cleaned up after their time to live.

mod support {
    pub mod postgres;
}

use std::sync::Arc;

use engine::{
    BpmnElementType, BpmnEventType, ErrorType, IncidentRecord, Intent, JobRecord,
    MessageSubscriptionRecord, ProcessInstanceRecord, ProcessMetadata, ProcessRecord, Record,
    RecordType, RecordValue, VariableRecord,
};
use serde_json::{json, Value};
use store::resources::{
    ELEMENT_INSTANCES, INCIDENTS, JOBS, MESSAGE_SUBSCRIPTIONS, PROCESS_DEFINITIONS,
    PROCESS_INSTANCES, USER_TASKS, VARIABLES,
};
use store::{ExportedEntry, SearchRequest, Store};

const DEFINITION: i64 = 2251799813685249;
const XML: &str = r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="order" name="Order"/></definitions>"#;

fn event(key: i64, intent: Intent, time_ms: i64, value: RecordValue) -> Record {
    let mut r = Record::command(key, intent, value, None);
    r.record_type = RecordType::Event;
    r.timestamp_ms = time_ms;
    r
}

fn definition() -> Record {
    event(
        DEFINITION,
        Intent::Created,
        1_000,
        RecordValue::Process(ProcessRecord {
            metadata: ProcessMetadata {
                bpmn_process_id: Arc::from("order"),
                version: 1,
                process_definition_key: DEFINITION,
                resource_name: "order.bpmn".into(),
                checksum: 7,
                duplicate: false,
            },
            resource: Arc::from(XML.as_bytes()),
        }),
    )
}

fn element(
    key: i64,
    instance: i64,
    id: &str,
    kind: BpmnElementType,
    intent: Intent,
    t: i64,
) -> Record {
    event(
        key,
        intent,
        t,
        RecordValue::ProcessInstance(ProcessInstanceRecord {
            bpmn_process_id: Arc::from("order"),
            version: 1,
            process_definition_key: DEFINITION,
            process_instance_key: instance,
            element_id: Arc::from(id),
            flow_scope_key: if key == instance { -1 } else { instance },
            bpmn_element_type: kind,
            bpmn_event_type: BpmnEventType::None,
            parent_process_instance_key: -1,
            parent_element_instance_key: -1,
        }),
    )
}

fn job(key: i64, instance: i64, task: i64, intent: Intent, retries: i32, t: i64) -> Record {
    let mut j = JobRecord::empty();
    j.job_type = Arc::from("pay");
    j.worker = "w1".into();
    j.retries = retries;
    j.custom_headers = Arc::from(r#"{"a":"b"}"#);
    j.element_id = Arc::from("task");
    j.element_instance_key = task;
    j.process_instance_key = instance;
    j.bpmn_process_id = Arc::from("order");
    j.process_definition_version = 1;
    j.process_definition_key = DEFINITION;
    event(key, intent, t, RecordValue::Job(Box::new(j)))
}

fn variable(key: i64, instance: i64, name: &str, value: &str, intent: Intent, t: i64) -> Record {
    event(
        key,
        intent,
        t,
        RecordValue::Variable(VariableRecord {
            name: name.into(),
            value: value.into(),
            scope_key: instance,
            process_instance_key: instance,
            process_definition_key: DEFINITION,
            bpmn_process_id: Arc::from("order"),
        }),
    )
}

fn incident(key: i64, instance: i64, task: i64, intent: Intent, t: i64) -> Record {
    event(
        key,
        intent,
        t,
        RecordValue::Incident(IncidentRecord {
            error_type: ErrorType::JobNoRetries,
            error_message: "no retries left".into(),
            bpmn_process_id: Arc::from("order"),
            process_definition_key: DEFINITION,
            process_instance_key: instance,
            element_id: Arc::from("task"),
            element_instance_key: task,
            job_key: 0,
            variable_scope_key: task,
        }),
    )
}

use BpmnElementType::{Process, ServiceTask};
use Intent::{ElementActivating, ElementCompleted, ElementTerminated};

/// Instance 10 runs to completion; instance 20 waits on an incident;
/// instance 30 is cancelled.
fn log() -> Vec<(u64, Vec<Record>)> {
    vec![
        (3, vec![definition()]),
        (
            5,
            vec![
                element(10, 10, "order", Process, ElementActivating, 2_000),
                variable(12, 10, "amount", "42", Intent::Created, 2_000),
                element(11, 10, "task", ServiceTask, ElementActivating, 2_000),
                job(13, 10, 11, Intent::Created, 3, 2_000),
            ],
        ),
        (
            6,
            vec![
                element(20, 20, "order", Process, ElementActivating, 2_500),
                element(21, 20, "task", ServiceTask, ElementActivating, 2_500),
                job(23, 20, 21, Intent::Created, 1, 2_500),
            ],
        ),
        (
            8,
            vec![
                job(13, 10, 11, Intent::Completed, 3, 3_000),
                variable(12, 10, "amount", "43", Intent::Updated, 3_000),
                element(11, 10, "task", ServiceTask, ElementCompleted, 3_000),
                element(10, 10, "order", Process, ElementCompleted, 3_000),
            ],
        ),
        (
            9,
            vec![
                job(23, 20, 21, Intent::Failed, 0, 3_500),
                incident(24, 20, 21, Intent::Created, 3_500),
            ],
        ),
        (
            11,
            vec![
                element(30, 30, "order", Process, ElementActivating, 4_000),
                element(30, 30, "order", Process, ElementTerminated, 4_100),
            ],
        ),
    ]
}

fn entries(log: &[(u64, Vec<Record>)]) -> Vec<ExportedEntry<'_>> {
    log.iter()
        .map(|(index, records)| ExportedEntry {
            index: *index,
            records,
        })
        .collect()
}

async fn search(store: &Store, resource: &'static store::Resource, body: Value) -> Value {
    let request = SearchRequest::parse(resource, &body).expect("a valid request");
    store.search(&request).await.expect("search").to_json()
}

fn keys(result: &Value, field: &str) -> Vec<String> {
    result["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i[field].as_str().expect("key").to_string())
        .collect()
}

async fn scenario(store: Store) {
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating again does nothing");
    let log = log();
    assert_eq!(store.write(1, &entries(&log)).await.expect("write"), 11);
    assert_eq!(store.exported_position(1).await.unwrap(), 11);
    assert_eq!(
        store.exporter_progress(1).await.unwrap(),
        Some((11, 4_100)),
        "the position and the time of the last record written"
    );
    assert_eq!(store.exporter_progress(2).await.unwrap(), None);

    let snapshot = |store: Store| async move {
        let mut all = Vec::new();
        for r in [
            &PROCESS_DEFINITIONS,
            &PROCESS_INSTANCES,
            &ELEMENT_INSTANCES,
            &VARIABLES,
            &JOBS,
            &INCIDENTS,
        ] {
            all.push(search(&store, r, json!({})).await);
        }
        all
    };
    let before = snapshot(store.clone()).await;
    // At least once delivery: the same records again, and an earlier part
    // again after later ones (a former leader's late batch).
    store.write(1, &entries(&log)).await.expect("rewrite");
    store
        .write(1, &entries(&log[1..2]))
        .await
        .expect("late batch");
    assert_eq!(
        snapshot(store.clone()).await,
        before,
        "writing again changes nothing"
    );
    assert_eq!(
        store.exported_position(1).await.unwrap(),
        11,
        "never goes back"
    );
    assert_eq!(
        store.exporter_progress(1).await.unwrap(),
        Some((11, 4_100)),
        "a late batch leaves the time of the newest record"
    );

    // Definitions, with the name from the BPMN and the XML.
    let d = store
        .get(&PROCESS_DEFINITIONS, DEFINITION)
        .await
        .unwrap()
        .expect("definition");
    assert_eq!(d["name"], "Order");
    assert_eq!(d["processDefinitionId"], "order");
    assert_eq!(d["version"], 1);
    assert_eq!(
        store
            .process_definition_xml(DEFINITION)
            .await
            .unwrap()
            .as_deref(),
        Some(XML)
    );
    assert_eq!(store.process_definition_xml(1).await.unwrap(), None);

    // Instances: states, dates, incident flag, filters, sort, pages.
    let all = search(&store, &PROCESS_INSTANCES, json!({})).await;
    assert_eq!(keys(&all, "processInstanceKey"), ["10", "20", "30"]);
    assert_eq!(all["page"]["totalItems"], 3);
    let done = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"filter": {"state": "COMPLETED"}}),
    )
    .await;
    assert_eq!(keys(&done, "processInstanceKey"), ["10"]);
    let item = &done["items"][0];
    assert_eq!(item["startDate"], "1970-01-01T00:00:02.000Z");
    assert_eq!(item["endDate"], "1970-01-01T00:00:03.000Z");
    assert_eq!(item["processDefinitionName"], "Order");
    assert_eq!(item["hasIncident"], false);
    assert_eq!(item["parentProcessInstanceKey"], Value::Null);
    let troubled = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"filter": {"hasIncident": true}}),
    )
    .await;
    assert_eq!(keys(&troubled, "processInstanceKey"), ["20"]);
    let cancelled = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"filter": {"state": "TERMINATED"}}),
    )
    .await;
    assert_eq!(keys(&cancelled, "processInstanceKey"), ["30"]);
    let newest = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"sort": [{"field": "startDate", "order": "DESC"}], "page": {"limit": 2}}),
    )
    .await;
    assert_eq!(keys(&newest, "processInstanceKey"), ["30", "20"]);
    assert_eq!(newest["page"]["totalItems"], 3);
    let next = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"sort": [{"field": "startDate", "order": "DESC"}],
               "page": {"limit": 2, "after": newest["page"]["endCursor"]}}),
    )
    .await;
    assert_eq!(keys(&next, "processInstanceKey"), ["10"]);
    let back = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"sort": [{"field": "startDate", "order": "DESC"}],
               "page": {"limit": 2, "before": next["page"]["startCursor"]}}),
    )
    .await;
    assert_eq!(keys(&back, "processInstanceKey"), ["30", "20"]);
    let ranged = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"filter": {"startDate": {"$gte": "1970-01-01T00:00:02.400Z"},
                          "processDefinitionId": {"$like": "ord*"}}}),
    )
    .await;
    assert_eq!(keys(&ranged, "processInstanceKey"), ["20", "30"]);
    let one = store
        .get(&PROCESS_INSTANCES, 20)
        .await
        .unwrap()
        .expect("instance 20");
    assert_eq!(one["state"], "ACTIVE");
    assert!(store.get(&PROCESS_INSTANCES, 99).await.unwrap().is_none());

    // Element instances, jobs, variables, incidents.
    let tasks = search(
        &store,
        &ELEMENT_INSTANCES,
        json!({"filter": {"elementId": "task"}}),
    )
    .await;
    assert_eq!(keys(&tasks, "elementInstanceKey"), ["11", "21"]);
    assert_eq!(tasks["items"][0]["state"], "COMPLETED");
    assert_eq!(tasks["items"][0]["type"], "SERVICE_TASK");
    assert_eq!(tasks["items"][1]["hasIncident"], true);
    assert_eq!(tasks["items"][1]["incidentKey"], "24");
    // The children of a scope; the scope key filters but is no result field.
    let children = search(
        &store,
        &ELEMENT_INSTANCES,
        json!({"filter": {"elementInstanceScopeKey": "20"}}),
    )
    .await;
    assert_eq!(keys(&children, "elementInstanceKey"), ["21"]);
    assert!(children["items"][0]
        .get("elementInstanceScopeKey")
        .is_none());
    let jobs = search(
        &store,
        &JOBS,
        json!({"filter": {"processInstanceKey": "10"}}),
    )
    .await;
    assert_eq!(jobs["items"][0]["state"], "COMPLETED");
    assert_eq!(jobs["items"][0]["customHeaders"], json!({"a": "b"}));
    assert_eq!(jobs["items"][0]["type"], "pay");
    // Sorting by a field waggle keeps as a constant (a job's priority) is
    // accepted and orders by the key, with the real sort fields around it.
    let sorted = search(
        &store,
        &JOBS,
        json!({"sort": [{"field": "priority", "order": "DESC"}, {"field": "jobKey", "order": "DESC"},
                        {"field": "priority"}]}),
    )
    .await;
    let by_key = keys(&sorted, "jobKey");
    assert!(by_key.len() > 1, "{sorted}");
    assert!(
        by_key
            .windows(2)
            .all(|w| w[0].parse::<i64>().unwrap() > w[1].parse::<i64>().unwrap()),
        "{by_key:?}"
    );
    let failed = search(&store, &JOBS, json!({"filter": {"state": "FAILED"}})).await;
    assert_eq!(keys(&failed, "jobKey"), ["23"]);
    assert_eq!(failed["items"][0]["retries"], 0);
    let vars = search(&store, &VARIABLES, json!({"filter": {"name": "amount"}})).await;
    assert_eq!(
        vars["items"][0]["value"], "43",
        "the update wins, also after the late batch"
    );
    let incidents = search(&store, &INCIDENTS, json!({"filter": {"state": "ACTIVE"}})).await;
    assert_eq!(keys(&incidents, "incidentKey"), ["24"]);
    assert_eq!(incidents["items"][0]["errorType"], "JOB_NO_RETRIES");
    let tasks = search(&store, &USER_TASKS, json!({})).await;
    assert_eq!(tasks["page"]["totalItems"], 0);

    // A user task: created, assigned (a late, earlier record changes nothing),
    // completed; the creation time stays the first.
    let user_task = |intent: Intent, t: i64, assignee: &str| {
        let mut v = engine::UserTaskRecord::empty();
        v.user_task_key = 40;
        v.assignee = assignee.into();
        v.candidate_groups = vec!["clerks".into(), "back_office".into()];
        v.element_id = Arc::from("review");
        v.element_instance_key = 41;
        v.process_instance_key = 20;
        v.process_definition_key = DEFINITION;
        v.bpmn_process_id = Arc::from("order");
        v.process_definition_version = 1;
        v.creation_timestamp = 6_000;
        event(40, intent, t, RecordValue::UserTask(Box::new(v)))
    };
    let created = [user_task(Intent::Created, 6_000, "")];
    let assigned = [user_task(Intent::Assigned, 6_100, "anna")];
    let completed = [user_task(Intent::Completed, 6_200, "anna")];
    for (index, records) in [
        (20, &completed[..]),
        (18, &created[..]),
        (19, &assigned[..]),
    ] {
        store
            .write(1, &[ExportedEntry { index, records }])
            .await
            .unwrap();
    }
    let task = store
        .get(&USER_TASKS, 40)
        .await
        .unwrap()
        .expect("user task 40");
    assert_eq!(task["state"], "COMPLETED");
    assert_eq!(task["assignee"], "anna");
    assert_eq!(task["candidateGroups"], json!(["clerks", "back_office"]));
    assert_eq!(task["elementId"], "review");
    assert_eq!(task["processInstanceKey"], "20");
    assert_eq!(task["completionDate"], "1970-01-01T00:00:06.200Z");
    assert_eq!(task["creationDate"], "1970-01-01T00:00:06.000Z");
    let by_group = search(
        &store,
        &USER_TASKS,
        json!({"filter": {"state": "COMPLETED"}}),
    )
    .await;
    assert_eq!(keys(&by_group, "userTaskKey"), ["40"]);
    // Candidate group filters: a member of the list, matched whole and
    // literally (no wildcard in `_`).
    for (filter, found) in [
        (json!({"candidateGroup": "clerks"}), true),
        (json!({"candidateGroup": "back_office"}), true),
        (
            json!({"candidateGroup": {"$in": ["auditors", "clerks"]}}),
            true,
        ),
        (json!({"candidateGroup": {"$eq": "clerk"}}), false),
        (json!({"candidateGroup": "backxoffice"}), false),
        (json!({"candidateGroup": "\"clerks\""}), false),
        (json!({"candidateUser": "clerks"}), false),
        (
            json!({"$or": [{"candidateGroup": "auditors"}, {"candidateGroup": "clerks"}]}),
            true,
        ),
    ] {
        let result = search(&store, &USER_TASKS, json!({ "filter": filter })).await;
        let expected: &[&str] = if found { &["40"] } else { &[] };
        assert_eq!(keys(&result, "userTaskKey"), expected, "{filter}");
    }

    // Statistics per element of one instance.
    let stats = store.element_statistics(20).await.unwrap();
    assert_eq!(
        stats,
        vec![
            json!({"elementId": "task", "active": 1, "canceled": 0, "incidents": 1, "completed": 0})
        ]
    );

    // Resolving the incident clears the flags.
    let resolve = [incident(24, 20, 21, Intent::Resolved, 5_000)];
    store
        .write(
            1,
            &[ExportedEntry {
                index: 12,
                records: &resolve,
            }],
        )
        .await
        .unwrap();
    let troubled = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"filter": {"hasIncident": true}}),
    )
    .await;
    assert_eq!(troubled["page"]["totalItems"], 0);

    // History cleanup: instances ended before the cut go with their rows.
    assert_eq!(
        store.cleanup(3_500).await.unwrap(),
        1,
        "instance 10 ended at 3000"
    );
    let left = search(&store, &PROCESS_INSTANCES, json!({})).await;
    assert_eq!(keys(&left, "processInstanceKey"), ["20", "30"]);
    for (resource, field) in [
        (&ELEMENT_INSTANCES, "processInstanceKey"),
        (&VARIABLES, "processInstanceKey"),
        (&JOBS, "processInstanceKey"),
    ] {
        let rows = search(&store, resource, json!({"filter": {field: "10"}})).await;
        assert_eq!(
            rows["page"]["totalItems"], 0,
            "{} of instance 10 are gone",
            resource.name
        );
    }
    assert_eq!(
        store.cleanup(10_000).await.unwrap(),
        1,
        "instance 30 ended at 4100"
    );
    assert_eq!(
        store.cleanup(10_000).await.unwrap(),
        0,
        "20 is still active"
    );

    // Text that needs escaping, and more rows than one statement takes
    // (1,000 per VALUES statement, 10,000 per JSON statement on PostgreSQL).
    let awkward = "{\"quote\":\"a \\\"b\\\" \\\\ c\",\"line\":\"x\\ny\ttab\",\"é\":\"ünï 😀\"}";
    let many: Vec<Record> = (0..10_050)
        .map(|i| {
            let value = if i == 7 {
                awkward.to_string()
            } else {
                i.to_string()
            };
            variable(
                1_000_000 + i,
                40,
                &format!("v{i}"),
                &value,
                Intent::Created,
                5_000,
            )
        })
        .collect();
    assert_eq!(
        store
            .write(
                1,
                &[ExportedEntry {
                    index: 12,
                    records: &many
                }]
            )
            .await
            .expect("many rows"),
        12
    );
    for (key, value) in [
        (1_000_000, "0".to_string()),
        (1_000_007, awkward.to_string()),
        (1_010_049, "10049".to_string()),
    ] {
        let row = store
            .get(&VARIABLES, key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("variable {key}"));
        assert_eq!(row["value"], value.as_str(), "{row:?}");
    }
    store.close().await;
}

#[tokio::test]
async fn sqlite_holds_searches_and_cleans_the_exported_records() {
    let dir = tempfile::tempdir().unwrap();
    scenario(Store::open_sqlite(&dir.path().join("secondary.db"), 2).unwrap()).await;
}

#[tokio::test]
async fn postgresql_holds_searches_and_cleans_the_exported_records() {
    let pg = support::postgres::Postgres::start();
    scenario(Store::open(&pg.url, 2).unwrap()).await;
}

/// Instance 20 of `log()` (waiting on an incident at `task`) migrated to
/// `order2`, whose `task2` its task maps to; then its job completes in the
/// same batch.
async fn migration(store: Store) {
    const TARGET: i64 = DEFINITION + 100;
    store.migrate().await.unwrap();
    store.write(1, &entries(&log())).await.unwrap();
    let subscription = |intent: Intent, process: &str, element: &str| {
        let value = MessageSubscriptionRecord {
            element_instance_key: 21,
            process_instance_key: 20,
            bpmn_process_id: Arc::from(process),
            element_id: Arc::from(element),
            message_name: "paid".into(),
            correlation_key: "o-20".into(),
            interrupting: true,
            message_key: -1,
            variables: "{}".into(),
            subscription_partition_id: 1,
        };
        event(
            25,
            intent,
            4_500,
            RecordValue::ProcessMessageSubscription(value),
        )
    };
    let waiting = [(
        11,
        vec![subscription(Intent::Created, "order", "paid_event")],
    )];
    store.write(1, &entries(&waiting)).await.unwrap();
    let to_target = |mut r: Record| {
        match &mut r.value {
            RecordValue::ProcessInstance(p) => {
                p.process_definition_key = TARGET;
                p.bpmn_process_id = Arc::from("order2");
                p.version = 3;
                if p.bpmn_element_type != Process {
                    p.element_id = Arc::from("task2");
                }
            }
            RecordValue::Job(j) => {
                j.process_definition_key = TARGET;
                j.bpmn_process_id = Arc::from("order2");
                j.process_definition_version = 3;
                j.element_id = Arc::from("task2");
            }
            RecordValue::Incident(i) => {
                i.process_definition_key = TARGET;
                i.bpmn_process_id = Arc::from("order2");
                i.element_id = Arc::from("task2");
            }
            _ => unreachable!(),
        }
        r
    };
    let migrated = vec![(
        12,
        vec![
            to_target(element(
                20,
                20,
                "order",
                Process,
                Intent::ElementMigrated,
                5_000,
            )),
            to_target(element(
                21,
                20,
                "task",
                ServiceTask,
                Intent::ElementMigrated,
                5_000,
            )),
            to_target(job(23, 20, 21, Intent::Migrated, 0, 5_000)),
            to_target(incident(24, 20, 21, Intent::Migrated, 5_000)),
            to_target(incident(24, 20, 21, Intent::Resolved, 5_100)),
            to_target(job(23, 20, 21, Intent::Completed, 0, 5_200)),
            subscription(Intent::Migrated, "order2", "paid_event2"),
        ],
    )];
    for _ in 0..2 {
        store.write(1, &entries(&migrated)).await.unwrap();
        let instance = store.get(&PROCESS_INSTANCES, 20).await.unwrap().unwrap();
        assert_eq!(instance["processDefinitionKey"], TARGET.to_string());
        assert_eq!(instance["processDefinitionId"], "order2");
        assert_eq!(instance["processDefinitionVersion"], 3);
        assert_eq!(instance["startDate"], "1970-01-01T00:00:02.500Z", "kept");
        let of_20 = json!({"filter": {"processInstanceKey": "20"}});
        for (resource, field) in [
            (&ELEMENT_INSTANCES, "elementId"),
            (&JOBS, "elementId"),
            (&INCIDENTS, "elementId"),
        ] {
            let found = search(&store, resource, of_20.clone()).await;
            let ids: Vec<&Value> = found["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| &i[field])
                .collect();
            assert_eq!(ids, [&json!("task2")], "{found}");
            assert_eq!(found["items"][0]["processDefinitionId"], "order2");
        }
        let job = search(&store, &JOBS, of_20.clone()).await;
        assert_eq!(job["items"][0]["state"], "COMPLETED", "the later record");
        let incident = search(&store, &INCIDENTS, of_20.clone()).await;
        assert_eq!(incident["items"][0]["state"], "RESOLVED");
        let waits = search(&store, &MESSAGE_SUBSCRIPTIONS, of_20.clone()).await;
        assert_eq!(waits["items"][0]["elementId"], "paid_event2", "{waits}");
        assert_eq!(waits["items"][0]["processDefinitionId"], "order2");
        assert_eq!(waits["items"][0]["correlationKey"], "o-20");
    }
    let untouched = store.get(&PROCESS_INSTANCES, 10).await.unwrap().unwrap();
    assert_eq!(untouched["processDefinitionId"], "order");
    store.close().await;
}

#[tokio::test]
async fn a_migrated_instance_names_its_target_definition_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    migration(Store::open_sqlite(&dir.path().join("secondary.db"), 2).unwrap()).await;
}

#[tokio::test]
async fn a_migrated_instance_names_its_target_definition_in_postgresql() {
    let pg = support::postgres::Postgres::start();
    migration(Store::open(&pg.url, 2).unwrap()).await;
}

#[tokio::test]
async fn a_database_that_is_down_is_named_in_the_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://waggle:secret@127.0.0.1:{port}/waggle");
    let err = Store::open(&url, 1)
        .unwrap()
        .migrate()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

#[tokio::test]
async fn counts_stop_at_the_cap_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("secondary.db"), 2).unwrap();
    store.migrate().await.unwrap();
    let n = store::MAX_COUNTED_ITEMS + 5;
    let records: Vec<Record> = (0..n)
        .map(|i| {
            element(
                1_000 + i,
                1_000 + i,
                "order",
                Process,
                ElementActivating,
                2_000,
            )
        })
        .collect();
    store
        .write(
            1,
            &[ExportedEntry {
                index: 1,
                records: &records,
            }],
        )
        .await
        .unwrap();
    let all = search(&store, &PROCESS_INSTANCES, json!({"page": {"limit": 3}})).await;
    assert_eq!(all["page"]["totalItems"], store::MAX_COUNTED_ITEMS);
    assert_eq!(all["page"]["hasMoreTotalItems"], true);
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    let few = search(
        &store,
        &PROCESS_INSTANCES,
        json!({"filter": {"processInstanceKey": {"$lt": "1005"}}}),
    )
    .await;
    assert_eq!(few["page"]["totalItems"], 5);
    assert_eq!(few["page"]["hasMoreTotalItems"], false);
    store.close().await;
}
