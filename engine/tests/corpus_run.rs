//! Every corpus process the engine accepts runs to completion: a worker
//! completes every job, a user completes every user task, and the test publishes a message for every open
//! message subscription, broadcasts every awaited signal and moves the clock
//! past every timer, round after round.

mod common;
use ::engine::*;
use common::*;
use std::path::Path;

/// Variables the corpus processes' conditions, correlation keys and
/// collections read.
const VARIABLES: &str = r#"{"conditionVariable": true, "remainingAmount": 0, "errorResolved": true, "approved": true, "progress": "ready", "validateDataType": "validate-data", "saveDataType": "save-data", "totalLoops": 3, "reviewResult": "approved", "orderId": "order-1", "prId": "pr-1", "uniqueId": "u-1", "correlationKey": "c-1", "itemList": [1, 2], "boss": "demo", "requestId": "r-1"}"#;

/// Processes the corpus calls but does not contain: stand-ins that start and end.
const CALLED_ELSEWHERE: &[&str] = &["letterProcess", "automatedTestsProcess", "start-end"];

/// Most rounds of driving one instance.
const MAX_ROUNDS: usize = 20;
/// How far the clock moves per round (beyond the longest corpus timer, 30 days).
const ROUND_MS: i64 = 31 * 86_400_000;

/// Corpus processes that cannot complete here, and why.
const CANNOT_COMPLETE: &[(&str, &str)] = &[(
    "camunda__callActivity.bpmn",
    "its child uses Camunda's FEEL built-in assert(), which dsntk lacks",
)];

fn drive(h: &mut Harness, pi: i64) -> bool {
    for _ in 0..MAX_ROUNDS {
        if h.is_completed(pi) {
            return true;
        }
        h.auto_complete(10);
        let user_tasks: Vec<i64> = h.engine.state().user_tasks.keys().copied().collect();
        for key in user_tasks {
            let mut task = UserTaskRecord::empty();
            task.variables = "{}".into();
            h.request(Record::command(
                key,
                Intent::Complete,
                RecordValue::UserTask(Box::new(task)),
                None,
            ))
            .expect("complete the user task");
        }
        let messages: Vec<(String, String)> = h
            .engine
            .state()
            .message_subscriptions
            .values()
            .map(|s| {
                (
                    s.record.message_name.clone(),
                    s.record.correlation_key.clone(),
                )
            })
            .collect();
        for (name, key) in messages {
            h.publish(&name, &key, 0, "", "{}").expect("publish");
        }
        let signals: Vec<String> = h
            .engine
            .state()
            .signal_subscriptions
            .values()
            .map(|s| s.signal_name.clone())
            .collect();
        for name in signals {
            h.broadcast(&name, "{}").expect("broadcast");
        }
        h.advance(ROUND_MS);
    }
    h.is_completed(pi)
}

/// Starts process `id` through its message, signal or timer start event.
fn start_by_event(h: &mut Harness, models: &[::engine::model::Process], id: &str) {
    let Some(model) = models.iter().find(|m| &*m.bpmn_process_id == id) else {
        return;
    };
    for &start in &model.element(0).event_starts {
        match &model.element(start).event {
            Some(::engine::model::EventDefinition::Message { name, .. }) => {
                h.publish(&name.source(), "start-key", 0, "", VARIABLES)
                    .expect("publish");
            }
            Some(::engine::model::EventDefinition::Signal { name }) => {
                h.broadcast(&name.source(), VARIABLES).expect("broadcast");
            }
            _ => h.advance(ROUND_MS),
        }
    }
}

#[test]
fn deployable_corpus_processes_run_to_completion() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpmn"))
        .collect();
    files.sort();
    let mut ran = 0;
    let mut failed = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut h = Harness::new();
        for id in CALLED_ELSEWHERE {
            let stand_in = bpmn(
                id,
                &format!(
                    r#"<bpmn:startEvent id="s"/><bpmn:endEvent id="e"/>{}"#,
                    flow("f", "s", "e")
                ),
            );
            h.deploy(&format!("{id}.bpmn"), &stand_in).unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        let Ok(ResponseValue::Deployment { processes, .. }) = h.deploy_bytes(&name, bytes.clone())
        else {
            continue;
        };
        let models = ::engine::bpmn::parse_bpmn(&name, &bytes).expect("deployed, so it parses");
        for p in processes {
            let id = p.bpmn_process_id.to_string();
            let pi = match h.request(create_command(&id, -1, VARIABLES, false)) {
                Ok(ResponseValue::ProcessInstanceCreated {
                    process_instance_key,
                    ..
                }) => process_instance_key,
                // Only event start events: a timer, message or signal starts it.
                Err(e) if e.rejection_type == RejectionType::InvalidState => {
                    let before = h.instances_of(&id).len();
                    start_by_event(&mut h, &models, &id);
                    match h.instances_of(&id).get(before) {
                        Some(&pi) => pi,
                        None => {
                            failed.push(format!("{name}: {id}: no start event fired"));
                            continue;
                        }
                    }
                }
                Err(e) => panic!("{name}: {id}: {}", e.reason),
                Ok(other) => panic!("{name}: {id}: {other:?}"),
            };
            let done = drive(&mut h, pi);
            let incidents = h.incidents();
            if !done || !incidents.is_empty() {
                failed.push(format!(
                    "{name}: {id}: completed {done}, incidents {incidents:?}"
                ));
                continue;
            }
            ran += 1;
        }
    }
    let unexpected: Vec<&String> = failed
        .iter()
        .filter(|f| !CANNOT_COMPLETE.iter().any(|(file, _)| f.starts_with(file)))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    for (file, why) in CANNOT_COMPLETE {
        assert!(
            failed.iter().any(|f| f.starts_with(file)),
            "{file} is listed as unable to complete ({why}) but completed"
        );
    }
    println!("{ran} corpus processes ran to completion");
    assert!(ran >= 15, "only {ran} corpus processes ran");
}

/// The corpus's ad-hoc sub-process, between a start and an end event (the
/// file itself has none, which Zeebe refuses too; see corpus.rs): both of its
/// tasks are activated through `activeElementsCollection`, run, and the
/// instance completes.
#[test]
fn corpus_ad_hoc_sub_process_runs_to_completion() {
    let name = "zeebemoddle__zeebe-adHoc.bpmn";
    let xml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(CORPUS)
            .join(name),
    )
    .unwrap();
    let opening = r#"<bpmn:adHocSubProcess id="AdHocSubProcess_1">"#;
    assert!(xml.contains(opening), "the corpus file changed");
    let wrapped = xml.replace(
        opening,
        &format!(
            r#"<bpmn:startEvent id="start"/><bpmn:endEvent id="end"/>{}{}{opening}"#,
            flow("to_ad_hoc", "start", "AdHocSubProcess_1"),
            flow("to_end", "AdHocSubProcess_1", "end"),
        ),
    );
    let mut h = Harness::new();
    h.deploy(name, &wrapped)
        .expect("the ad-hoc sub-process deploys");
    let pi = h.create(
        "ZeebeAdHocTest",
        r#"{"activeElements": ["Activity_0dggw2z", "Activity_1e1z8gb"]}"#,
    );
    assert!(drive(&mut h, pi), "completes");
    assert!(h.incidents().is_empty());
    for task in ["Activity_0dggw2z", "Activity_1e1z8gb"] {
        assert_eq!(
            h.element_intents(pi, task).last(),
            Some(&"ELEMENT_COMPLETED"),
            "{task} ran"
        );
    }
}
