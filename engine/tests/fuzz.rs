//! Fuzzing (proptest) of what reaches the engine from outside: BPMN
//! resources (corpus files with random byte edits), log records and
//! snapshots (valid encodings with random edits, and arbitrary bytes).
//! Nothing may panic; a mutated model that still deploys also runs.
//!
//! `PROPTEST_CASES` sets the number of cases: the default (256) in the test
//! suite, many more in `perf/fuzz.sh`.

mod common;
#[path = "support/edits.rs"]
mod edits;
use ::engine::*;
use common::*;
use edits::{apply, Edit};
use proptest::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// Every corpus file's bytes.
fn corpus() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("the corpus folder sits beside the repository")
            .map(|e| e.expect("readable entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "bpmn"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                (name, std::fs::read(&p).unwrap())
            })
            .collect();
        files.sort();
        files
    })
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((any::<usize>(), 0u8..4, any::<u8>()), 1..8)
}

/// XML-shaped edits: a character that changes structure or meaning.
fn xml_byte() -> impl Strategy<Value = u8> {
    prop::sample::select(&b"<>/=\"' &;:-0123456789x"[..])
}

fn xml_edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((any::<usize>(), 0u8..3, xml_byte()), 1..6)
}

/// Deploys `bytes`; if that succeeds, starts each of its processes and
/// completes whatever jobs appear for a few rounds. True if it deployed.
fn deploy_and_run(name: &str, bytes: Vec<u8>) -> bool {
    let Ok(processes) = bpmn::parse_bpmn(name, &bytes) else {
        return false;
    };
    let mut h = Harness::new();
    if h.deploy_bytes(name, bytes).is_err() {
        return false;
    }
    for p in processes.iter().take(3) {
        let _ = h.request(create_command(&p.bpmn_process_id, -1, "{}", false));
    }
    h.auto_complete(5);
    let _ = Engine::restore(&h.engine.snapshot()).expect("own snapshot restores");
    true
}

fn encoded_log() -> &'static [Vec<u8>] {
    static LOG: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let mut h = Harness::new();
        h.deploy("one.bpmn", &one_task("one")).unwrap();
        h.create("one", r#"{"a": [1, 2, {"b": null}], "s": "text"}"#);
        let job = h.activate("work", 1).remove(0);
        h.complete(job.key, r#"{"r": 1.5}"#).unwrap();
        h.log
            .iter()
            .map(|r| {
                let mut bytes = Vec::new();
                r.encode(&mut bytes);
                bytes
            })
            .collect()
    })
}

fn snapshot() -> &'static [u8] {
    static SNAPSHOT: OnceLock<Vec<u8>> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let mut h = Harness::new();
        h.deploy("one.bpmn", &one_task("one")).unwrap();
        h.create("one", r#"{"a": 1}"#);
        h.engine.snapshot()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_corpus_models_never_panic(file in any::<prop::sample::Index>(), edits in edits()) {
        let (name, bytes) = file.get(corpus());
        let mut bytes = bytes.clone();
        apply(&mut bytes, &edits);
        let _ = deploy_and_run(name, bytes);
    }

    #[test]
    fn xml_edits_of_corpus_models_never_panic(file in any::<prop::sample::Index>(), edits in xml_edits()) {
        let (name, bytes) = file.get(corpus());
        let mut bytes = bytes.clone();
        apply(&mut bytes, &edits);
        let _ = deploy_and_run(name, bytes);
    }

    #[test]
    fn mutated_records_never_panic_the_decoder(record in any::<prop::sample::Index>(), edits in edits()) {
        let mut bytes = record.get(encoded_log()).clone();
        apply(&mut bytes, &edits);
        if let Ok(r) = Record::decode(&bytes) {
            // What decodes encodes again to something that decodes the same.
            let mut again = Vec::new();
            r.encode(&mut again);
            prop_assert_eq!(Record::decode(&again).expect("re-encoded"), r);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Record::decode(&bytes);
        let _ = Engine::restore(&bytes);
    }

    #[test]
    fn mutated_snapshots_never_panic_restore(edits in edits()) {
        let mut bytes = snapshot().to_vec();
        apply(&mut bytes, &edits);
        let _ = Engine::restore(&bytes);
    }
}

/// The XML edits are worth their name: a good share of the mutated models
/// still deploy, so the fuzzing reaches the engine and not only the parser.
#[test]
fn many_xml_edited_models_still_deploy() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = (any::<prop::sample::Index>(), xml_edits());
    let total = 300;
    let deployed = (0..total)
        .filter(|_| {
            let (file, edits) = strategy.new_tree(&mut runner).expect("a case").current();
            let (name, bytes) = file.get(corpus());
            let mut bytes = bytes.clone();
            apply(&mut bytes, &edits);
            deploy_and_run(name, bytes)
        })
        .count();
    assert!(deployed * 10 >= total, "{deployed} of {total} deploy");
}
