//! Every corpus process whose elements are all in this issue runs to
//! completion with a worker that completes every job.

mod common;
use ::engine::*;
use common::*;
use std::path::Path;

/// Variables the corpus processes' conditions read.
const VARIABLES: &str = r#"{"conditionVariable": true, "remainingAmount": 0, "errorResolved": true, "approved": true, "progress": "ready", "validateDataType": "validate-data", "saveDataType": "save-data", "totalLoops": 3}"#;

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
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut h = Harness::new();
        let Ok(ResponseValue::Deployment { processes, .. }) =
            h.deploy_bytes(&name, std::fs::read(&path).unwrap())
        else {
            continue;
        };
        for p in processes {
            let pi = h.create(&p.bpmn_process_id, VARIABLES);
            h.auto_complete(50);
            assert!(
                h.incidents().is_empty(),
                "{name}: incidents {:?}",
                h.incidents()
            );
            assert!(
                h.is_completed(pi),
                "{name}: {} did not complete",
                p.bpmn_process_id
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "only {ran} corpus processes ran");
}
