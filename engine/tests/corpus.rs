//! Every file of the shared BPMN corpus parses, except exactly those Zeebe
//! 8.8 refuses too, which are rejected with an error that names the
//! resource, an element and the problem.

use engine::bpmn::parse_bpmn;
use std::path::Path;

const CORPUS: &str = "../../shared/bpmn-corpus";

/// The corpus files Zeebe 8.8 refuses too, each with (a part of) the
/// problem the engine names; every other file deploys.
const REJECTED: &[(&str, &str)] = &[
    ("c8jssdk__Client-BrokenBpmn.bpmn", "empty job type"),
    ("miwg__A.1.0.bpmn", "no executable process"),
    ("miwg__A.2.0.bpmn", "no executable process"),
    ("miwg__A.3.0.bpmn", "no executable process"),
    ("miwg__A.4.0.bpmn", "no executable process"),
    ("miwg__B.1.0.bpmn", "no executable process"),
    ("miwg__B.2.0.bpmn", "no executable process"),
    // Camunda 7 expressions instead of job types.
    (
        "miwg__C.1.0.bpmn",
        "must have a zeebe:taskDefinition with a job type",
    ),
    // Zeebe's ProcessValidator: a process needs a start event.
    (
        "zeebemoddle__zeebe-adHoc.bpmn",
        "Must have at least one start event",
    ),
    (
        "zeebemoddle__zeebe-taskListeners.bpmn",
        "Must have at least one start event",
    ),
];

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
    let (mut ok, mut rejected) = (0, Vec::new());
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
                for e in &errors.0 {
                    assert_eq!(e.resource, name);
                    assert!(!e.problem.is_empty());
                }
                println!("REJECTED {errors}");
                let expected = REJECTED.iter().find(|(file, _)| *file == name);
                let Some((_, problem)) = expected else {
                    panic!("{name} is rejected, but Zeebe 8.8 deploys it: {errors}");
                };
                assert!(
                    errors.0.iter().any(|e| e.problem.contains(problem)),
                    "{name}: expected '{problem}', got {errors}"
                );
                rejected.push(name);
            }
        }
    }
    println!("{ok} parsed, {} rejected", rejected.len());
    let expected: Vec<&str> = REJECTED.iter().map(|(file, _)| *file).collect();
    assert_eq!(rejected, expected, "the rejected files are exactly Zeebe's");
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
