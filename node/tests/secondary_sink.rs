//! The secondary storage sink on a real SQLite file: an index is
//! acknowledged once its transaction committed, resends of what was queued
//! are dropped, and the history cleanup deletes instances past their time to
//! live while active ones stay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{
    BpmnElementType, BpmnEventType, Intent, ProcessInstanceRecord, Record, RecordType, RecordValue,
};
use node::exporter::secondary::{Cleanup, SecondarySink};
use node::exporter::{ExportEntry, Sink};
use serde_json::json;
use store::resources::PROCESS_INSTANCES;
use store::{SearchRequest, Store};

fn process(key: i64, intent: Intent, time_ms: i64) -> Record {
    let mut r = Record::command(
        key,
        intent,
        RecordValue::ProcessInstance(ProcessInstanceRecord {
            bpmn_process_id: Arc::from("p"),
            version: 1,
            process_definition_key: 7,
            process_instance_key: key,
            element_id: Arc::from("p"),
            flow_scope_key: -1,
            bpmn_element_type: BpmnElementType::Process,
            bpmn_event_type: BpmnEventType::None,
            parent_process_instance_key: -1,
            parent_element_instance_key: -1,
        }),
        None,
    );
    r.record_type = RecordType::Event;
    r.timestamp_ms = time_ms;
    r
}

fn entry(index: u64, records: Vec<Record>) -> ExportEntry {
    ExportEntry { index, records }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not within 20 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn instances(path: &std::path::Path) -> Vec<(String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = Store::open_sqlite(path, 1).expect("store");
        let request = SearchRequest::parse(&PROCESS_INSTANCES, &json!({})).expect("request");
        let result = store.search(&request).await.expect("search");
        store.close().await;
        result
            .items
            .iter()
            .map(|i| {
                (
                    i["processInstanceKey"].as_str().unwrap_or("").to_string(),
                    i["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    })
}

#[test]
fn indexes_are_acknowledged_after_commit_and_resends_change_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("secondary.db");
    let keep = Cleanup {
        ttl: None,
        interval: Duration::from_secs(3600),
    };
    let sink = SecondarySink::start(&format!("sqlite://{}?mode=rwc", path.display()), 2, keep)
        .expect("sink");
    assert!(sink.name().contains("secondary.db"), "{}", sink.name());
    let first = vec![
        entry(3, vec![process(10, Intent::ElementActivating, 1_000)]),
        entry(5, vec![process(11, Intent::ElementActivating, 1_100)]),
    ];
    assert!(sink.send(2, first.clone()));
    wait_for("index 5 acknowledged", || sink.acknowledged(2) == 5);
    assert_eq!(sink.acknowledged(1), 0, "other partitions are untouched");
    // A leader's resend of what it handed over, then new entries.
    assert!(sink.send(2, first));
    assert!(sink.send(
        2,
        vec![entry(7, vec![process(10, Intent::ElementCompleted, 2_000)])]
    ));
    wait_for("index 7 acknowledged", || sink.acknowledged(2) == 7);
    assert_eq!(
        instances(&path),
        vec![
            ("10".to_string(), "COMPLETED".to_string()),
            ("11".to_string(), "ACTIVE".to_string())
        ]
    );
}

#[test]
fn the_history_cleanup_deletes_instances_past_their_time_to_live() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("secondary.db");
    let cleanup = Cleanup {
        ttl: Some(Duration::from_secs(60)),
        interval: Duration::from_millis(50),
    };
    let sink = SecondarySink::start(&format!("sqlite://{}?mode=rwc", path.display()), 1, cleanup)
        .expect("sink");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let long_ago = now_ms - 3_600_000;
    assert!(sink.send(
        1,
        vec![
            entry(
                2,
                vec![
                    process(20, Intent::ElementActivating, long_ago),
                    process(20, Intent::ElementCompleted, long_ago),
                ]
            ),
            entry(
                3,
                vec![
                    process(21, Intent::ElementActivating, now_ms),
                    process(21, Intent::ElementCompleted, now_ms),
                ]
            ),
            entry(4, vec![process(22, Intent::ElementActivating, long_ago)]),
        ]
    ));
    wait_for("index 4 acknowledged", || sink.acknowledged(1) == 4);
    wait_for("instance 20 cleaned up", || {
        !instances(&path).iter().any(|(k, _)| k == "20")
    });
    let left: Vec<String> = instances(&path).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        left,
        ["21", "22"],
        "recently ended and active instances stay"
    );
}
