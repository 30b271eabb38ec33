//! Searches beyond plain field filters, against the embedded SQLite and a
//! PostgreSQL this test starts: `$or` alternatives, the `variables` filter
//! of process instances, NULLs last in both sort directions, the incident
//! flags kept by the writer (set, cleared, written twice), the call
//! hierarchy and root of a called instance, and keyset cursors.

mod support {
    pub mod postgres;
}

use std::sync::Arc;

use engine::{
    BpmnElementType, BpmnEventType, ErrorType, IncidentRecord, Intent, ProcessInstanceRecord,
    ProcessMetadata, ProcessRecord, Record, RecordType, RecordValue, VariableRecord,
};
use serde_json::{json, Value};
use store::resources::{ELEMENT_INSTANCES, PROCESS_INSTANCES};
use store::{ExportedEntry, SearchRequest, Store};

const ORDER: i64 = 2251799813685249;
const PAYMENT: i64 = 2251799813685250;

fn event(key: i64, intent: Intent, time_ms: i64, value: RecordValue) -> Record {
    let mut r = Record::command(key, intent, value, None);
    r.record_type = RecordType::Event;
    r.timestamp_ms = time_ms;
    r
}

fn definition(key: i64, id: &str, name: Option<&str>) -> Record {
    let name = name.map_or(String::new(), |n| format!(r#" name="{n}""#));
    let xml = format!(
        r#"<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="{id}"{name}/></definitions>"#
    );
    event(
        key,
        Intent::Created,
        1_000,
        RecordValue::Process(ProcessRecord {
            metadata: ProcessMetadata {
                bpmn_process_id: Arc::from(id),
                version: 1,
                process_definition_key: key,
                resource_name: format!("{id}.bpmn"),
                checksum: key as u64,
                duplicate: false,
            },
            resource: Arc::from(xml.as_bytes()),
        }),
    )
}

/// An element (or, when `key == instance`, the process instance) event;
/// `parent` is the calling instance and call activity.
#[allow(clippy::too_many_arguments)]
fn element(
    key: i64,
    instance: i64,
    definition: (i64, &str),
    kind: BpmnElementType,
    intent: Intent,
    t: i64,
    parent: (i64, i64),
) -> Record {
    event(
        key,
        intent,
        t,
        RecordValue::ProcessInstance(ProcessInstanceRecord {
            bpmn_process_id: Arc::from(definition.1),
            version: 1,
            process_definition_key: definition.0,
            process_instance_key: instance,
            element_id: Arc::from(if key == instance {
                definition.1
            } else {
                "task"
            }),
            flow_scope_key: if key == instance { -1 } else { instance },
            bpmn_element_type: kind,
            bpmn_event_type: BpmnEventType::None,
            parent_process_instance_key: if key == instance { parent.0 } else { -1 },
            parent_element_instance_key: if key == instance { parent.1 } else { -1 },
        }),
    )
}

fn variable(key: i64, instance: i64, name: &str, value: &str) -> Record {
    event(
        key,
        Intent::Created,
        2_000,
        RecordValue::Variable(VariableRecord {
            name: name.into(),
            value: value.into(),
            scope_key: instance,
            process_instance_key: instance,
            process_definition_key: ORDER,
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
            process_definition_key: ORDER,
            process_instance_key: instance,
            element_id: Arc::from("task"),
            element_instance_key: task,
            job_key: 0,
            variable_scope_key: task,
        }),
    )
}

use BpmnElementType::{CallActivity, Process, ServiceTask};
use Intent::{ElementActivating, ElementCompleted};

const NO_PARENT: (i64, i64) = (-1, -1);
const O: (i64, &str) = (ORDER, "order");
const P: (i64, &str) = (PAYMENT, "payment");

/// Instances 10 (completed, amount 5, customer "anna") and 20 (active,
/// amount 50, customer "bob", an incident on its task 21). Instance 20's
/// call activity 22 called instance 30 (payment, no name in its BPMN),
/// whose call activity 32 called instance 40 (order).
fn log() -> Vec<(u64, Vec<Record>)> {
    vec![
        (
            1,
            vec![
                definition(ORDER, "order", Some("Order")),
                definition(PAYMENT, "payment", None),
            ],
        ),
        (
            2,
            vec![
                element(10, 10, O, Process, ElementActivating, 2_000, NO_PARENT),
                variable(13, 10, "amount", "5"),
                variable(14, 10, "customer", "\"anna\""),
                element(20, 20, O, Process, ElementActivating, 2_500, NO_PARENT),
                variable(23, 20, "amount", "50"),
                variable(24, 20, "customer", "\"bob\""),
                element(21, 20, O, ServiceTask, ElementActivating, 2_500, NO_PARENT),
                element(22, 20, O, CallActivity, ElementActivating, 2_500, NO_PARENT),
                element(30, 30, P, Process, ElementActivating, 2_600, (20, 22)),
                element(32, 30, P, CallActivity, ElementActivating, 2_600, NO_PARENT),
                element(40, 40, O, Process, ElementActivating, 2_700, (30, 32)),
            ],
        ),
        (
            3,
            vec![
                element(10, 10, O, Process, ElementCompleted, 3_000, NO_PARENT),
                incident(25, 20, 21, Intent::Created, 3_500),
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

async fn instances(store: &Store, body: Value) -> Vec<String> {
    keys(
        &search(store, &PROCESS_INSTANCES, body).await,
        "processInstanceKey",
    )
}

fn keys(result: &Value, field: &str) -> Vec<String> {
    result["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i[field].as_str().expect("key").to_string())
        .collect()
}

fn refused(body: Value) -> String {
    SearchRequest::parse(&PROCESS_INSTANCES, &body)
        .expect_err("refused")
        .to_string()
}

async fn scenario(store: Store) {
    store.migrate().await.expect("migrate");
    let log = log();
    store.write(1, &entries(&log)).await.expect("write");

    // $or: either alternative, ANDed with the other fields.
    let either = json!({"filter": {"$or": [
        {"state": "COMPLETED"},
        {"processDefinitionId": "payment"},
    ]}});
    assert_eq!(instances(&store, either).await, ["10", "30"]);
    let narrowed = json!({"filter": {"state": "ACTIVE", "$or": [
        {"state": "COMPLETED"},
        {"processDefinitionId": "payment"},
        {"hasIncident": true, "processDefinitionKey": ORDER.to_string()},
    ]}});
    assert_eq!(instances(&store, narrowed).await, ["20", "30"]);
    let none = json!({"filter": {"$or": []}});
    assert_eq!(instances(&store, none).await, ["10", "20", "30", "40"]);
    let everything = json!({"filter": {"$or": [{}], "state": "COMPLETED"}});
    assert_eq!(instances(&store, everything).await, ["10"]);
    let e = refused(json!({"filter": {"$or": [{"$or": []}]}}));
    assert!(e.contains("$or"), "{e}");
    let e = refused(json!({"filter": {"$or": {"state": "ACTIVE"}}}));
    assert!(e.contains("$or"), "{e}");
    let e = refused(json!({"filter": {"$or": [{"colour": "red"}]}}));
    assert!(e.contains("colour"), "{e}");

    // variables: name and serialized JSON value, or value operators.
    let anna = json!({"filter": {"variables": [{"name": "customer", "value": "\"anna\""}]}});
    assert_eq!(instances(&store, anna).await, ["10"]);
    let both = json!({"filter": {"variables": [
        {"name": "customer", "value": {"$in": ["\"anna\"", "\"bob\""]}},
        {"name": "amount", "value": "50"},
    ]}});
    assert_eq!(instances(&store, both).await, ["20"]);
    let like = json!({"filter": {"variables": [{"name": "customer", "value": {"$like": "\"b*"}}]}});
    assert_eq!(instances(&store, like).await, ["20"]);
    let has = json!({"filter": {"variables": [{"name": "amount", "value": {"$exists": true}}]}});
    assert_eq!(instances(&store, has).await, ["10", "20"]);
    let other_name = json!({"filter": {"variables": [{"name": "amount", "value": "\"anna\""}]}});
    assert_eq!(instances(&store, other_name).await, Vec::<String>::new());
    let in_or = json!({"filter": {"$or": [
        {"variables": [{"name": "amount", "value": "5"}]},
        {"processDefinitionId": "payment"},
    ]}});
    assert_eq!(instances(&store, in_or).await, ["10", "30"]);
    let e = refused(json!({"filter": {"variables": [{"name": "amount"}]}}));
    assert!(e.contains("value"), "{e}");
    let e = refused(json!({"filter": {"variables": {"name": "amount", "value": "5"}}}));
    assert!(e.contains("variables"), "{e}");
    assert!(
        SearchRequest::parse(
            &ELEMENT_INSTANCES,
            &json!({"filter": {"variables": [{"name": "amount", "value": "5"}]}})
        )
        .is_err(),
        "element instances take no variables filter"
    );

    // NULLs (an active instance has no end date) come last both ways.
    let by_end = |order: &str| json!({"sort": [{"field": "endDate", "order": order}]});
    assert_eq!(
        instances(&store, by_end("ASC")).await,
        ["10", "20", "30", "40"]
    );
    assert_eq!(
        instances(&store, by_end("DESC")).await,
        ["10", "20", "30", "40"]
    );
    let newest = json!({"filter": {"processDefinitionId": "order", "state": "ACTIVE"},
                        "sort": [{"field": "startDate", "order": "DESC"}]});
    assert_eq!(instances(&store, newest).await, ["40", "20"]);
    let oldest = json!({"sort": [{"field": "startDate", "order": "ASC"}], "page": {"limit": 2}});
    assert_eq!(instances(&store, oldest).await, ["10", "20"]);

    // Incident flags: set with the incident, for the instance and the
    // element; written twice, still set; cleared when resolved.
    let flagged = json!({"filter": {"hasIncident": true}});
    assert_eq!(instances(&store, flagged.clone()).await, ["20"]);
    let unflagged = json!({"filter": {"hasIncident": false}});
    assert_eq!(instances(&store, unflagged).await, ["10", "30", "40"]);
    let elements = search(&store, &ELEMENT_INSTANCES, flagged.clone()).await;
    assert_eq!(keys(&elements, "elementInstanceKey"), ["21"]);
    store.write(1, &entries(&log)).await.expect("write again");
    assert_eq!(instances(&store, flagged.clone()).await, ["20"]);
    let resolved = [(4, vec![incident(25, 20, 21, Intent::Resolved, 4_000)])];
    store.write(1, &entries(&resolved)).await.unwrap();
    assert_eq!(
        instances(&store, flagged.clone()).await,
        Vec::<String>::new()
    );
    let elements = search(&store, &ELEMENT_INSTANCES, flagged.clone()).await;
    assert_eq!(elements["page"]["totalItems"], 0);
    let item = store.get(&PROCESS_INSTANCES, 20).await.unwrap().unwrap();
    assert_eq!(item["hasIncident"], false);
    // The late creation after the resolution changes nothing.
    store.write(1, &entries(&log[2..])).await.unwrap();
    assert_eq!(
        instances(&store, flagged.clone()).await,
        Vec::<String>::new()
    );
    // A second incident of the element sets both flags again.
    let again = [(5, vec![incident(26, 20, 21, Intent::Created, 5_000)])];
    store.write(1, &entries(&again)).await.unwrap();
    assert_eq!(instances(&store, flagged.clone()).await, ["20"]);
    let element = store.get(&ELEMENT_INSTANCES, 21).await.unwrap().unwrap();
    assert_eq!(element["hasIncident"], true);
    assert_eq!(element["incidentKey"], "26");

    // Call hierarchy: the callers, root first; a root has none.
    let chain = store
        .call_hierarchy(40)
        .await
        .unwrap()
        .expect("instance 40");
    assert_eq!(
        chain,
        vec![
            json!({"processInstanceKey": "20", "processDefinitionKey": ORDER.to_string(),
                   "processDefinitionName": "Order"}),
            json!({"processInstanceKey": "30", "processDefinitionKey": PAYMENT.to_string(),
                   "processDefinitionName": "payment"}),
        ]
    );
    let chain = store
        .call_hierarchy(30)
        .await
        .unwrap()
        .expect("instance 30");
    assert_eq!(keys(&json!({"items": chain}), "processInstanceKey"), ["20"]);
    assert_eq!(store.call_hierarchy(20).await.unwrap(), Some(vec![]));
    assert_eq!(store.call_hierarchy(99).await.unwrap(), None);
    let children = json!({"filter": {"parentProcessInstanceKey": "30"}});
    assert_eq!(instances(&store, children).await, ["40"]);

    // Roots: the top of the call chain, for instances and their elements.
    let chain = json!({"filter": {"rootProcessInstanceKey": "20"}});
    assert_eq!(instances(&store, chain.clone()).await, ["20", "30", "40"]);
    let root = |item: Option<serde_json::Map<String, Value>>| {
        item.unwrap()["rootProcessInstanceKey"].clone()
    };
    assert_eq!(root(store.get(&PROCESS_INSTANCES, 40).await.unwrap()), "20");
    assert_eq!(root(store.get(&PROCESS_INSTANCES, 10).await.unwrap()), "10");
    assert_eq!(root(store.get(&ELEMENT_INSTANCES, 32).await.unwrap()), "20");
    let elements = search(&store, &ELEMENT_INSTANCES, chain).await;
    assert_eq!(keys(&elements, "elementInstanceKey"), ["21", "22", "32"]);

    keyset_pages(&store).await;
    store.close().await;
}

/// Keyset cursors walk the sort order with its NULLs forwards and back, and
/// an instance written between two pages neither repeats an item nor hides
/// one (an offset would show instance 10 again).
async fn keyset_pages(store: &Store) {
    let page = |cursor: Option<(&str, &Value)>, limit: u32| {
        let mut page = json!({"limit": limit});
        if let Some((name, cursor)) = cursor {
            page[name] = cursor.clone();
        }
        json!({"sort": [{"field": "endDate", "order": "DESC"}], "page": page})
    };
    let first = search(store, &PROCESS_INSTANCES, page(None, 1)).await;
    assert_eq!(keys(&first, "processInstanceKey"), ["10"]);
    let newest_end = [(
        6,
        vec![
            element(50, 50, O, Process, ElementActivating, 2_800, NO_PARENT),
            element(50, 50, O, Process, ElementCompleted, 9_000, NO_PARENT),
        ],
    )];
    store.write(1, &entries(&newest_end)).await.unwrap();
    let mut walked = Vec::new();
    let mut result = first;
    loop {
        walked.extend(keys(&result, "processInstanceKey"));
        let end = &result["page"]["endCursor"];
        let next = search(store, &PROCESS_INSTANCES, page(Some(("after", end)), 1)).await;
        if next["items"].as_array().unwrap().is_empty() {
            assert_eq!(next["page"]["endCursor"], Value::Null);
            assert_eq!(
                next["page"]["totalItems"], 5,
                "the count ignores the cursor"
            );
            break;
        }
        result = next;
    }
    assert_eq!(walked, ["10", "20", "30", "40"]);
    let last = result["page"]["startCursor"].clone();
    let back = search(store, &PROCESS_INSTANCES, page(Some(("before", &last)), 2)).await;
    assert_eq!(keys(&back, "processInstanceKey"), ["20", "30"]);
    let start = back["page"]["startCursor"].clone();
    let back = search(store, &PROCESS_INSTANCES, page(Some(("before", &start)), 5)).await;
    assert_eq!(keys(&back, "processInstanceKey"), ["50", "10"]);
    let other_sort = json!({"page": {"after": last}});
    let e = SearchRequest::parse(&PROCESS_INSTANCES, &other_sort)
        .expect_err("a cursor of another sort")
        .to_string();
    assert!(e.contains("another search"), "{e}");
}

#[tokio::test]
async fn sqlite_answers_or_variables_flags_and_call_hierarchies() {
    let dir = tempfile::tempdir().unwrap();
    scenario(Store::open_sqlite(&dir.path().join("secondary.db"), 2).unwrap()).await;
}

#[tokio::test]
async fn postgresql_answers_or_variables_flags_and_call_hierarchies() {
    let pg = support::postgres::Postgres::start();
    scenario(Store::open(&pg.url, 2).unwrap()).await;
}
