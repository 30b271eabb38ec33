//! Every file of the shared BPMN corpus either parses or is rejected with an
//! error that names the resource and an element.

use engine::bpmn::parse_bpmn;
use std::path::Path;

const CORPUS: &str = "../../shared/bpmn-corpus";

#[test]
fn every_corpus_file_parses_or_is_rejected_clearly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus folder sits beside the repository")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpmn"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "corpus too small: {}", files.len());
    let (mut ok, mut rejected) = (0, 0);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = std::fs::read(path).unwrap();
        match parse_bpmn(&name, &bytes) {
            Ok(processes) => {
                assert!(!processes.is_empty(), "{name}: parsed but no process");
                ok += 1;
                println!("OK       {name}: {} process(es)", processes.len());
            }
            Err(errors) => {
                rejected += 1;
                for e in &errors.0 {
                    assert_eq!(e.resource, name);
                    assert!(!e.problem.is_empty());
                }
                println!("REJECTED {errors}");
            }
        }
    }
    println!("{ok} parsed, {rejected} rejected");
    assert!(ok >= 6, "too few corpus files parse: {ok}");
}

#[test]
fn broken_bpmn_is_rejected_naming_the_task() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CORPUS)
        .join("c8jssdk__Client-BrokenBpmn.bpmn");
    let bytes = std::fs::read(path).unwrap();
    let errors = parse_bpmn("c8jssdk__Client-BrokenBpmn.bpmn", &bytes).unwrap_err();
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.element_id == "ServiceTask_0g6tf5f" && e.problem.contains("empty job type")),
        "{errors}"
    );
}

/// The corpus's ad-hoc model has no start event in its process: Zeebe 8.8
/// refuses it for that ("Must have at least one start event"), and so does
/// the engine; its ad-hoc sub-process itself is accepted (corpus_run.rs runs
/// it inside a start and an end event).
#[test]
fn ad_hoc_corpus_model_is_rejected_only_for_its_missing_start_event() {
    let name = "zeebemoddle__zeebe-adHoc.bpmn";
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(CORPUS)
            .join(name),
    )
    .unwrap();
    let errors = parse_bpmn(name, &bytes).unwrap_err();
    let problems: Vec<(&str, &str)> = errors
        .0
        .iter()
        .map(|e| (e.element_id.as_str(), e.problem.as_str()))
        .collect();
    assert_eq!(
        problems,
        [("ZeebeAdHocTest", "Must have at least one start event")]
    );
}
