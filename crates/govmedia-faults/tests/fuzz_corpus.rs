//! Replays every input the fuzzers kept (`fuzz/corpus/<target>/`) and every crash they
//! found and were fixed (`fuzz/regressions/<target>/`) through the fuzz targets' bodies:
//! what a fuzzer once reached or broke is checked again in every test run.

use std::path::Path;

use govmedia_faults::fuzzing::TARGETS;

fn inputs(folder: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
    let mut out: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| (e.path().display().to_string(), std::fs::read(e.path()).expect("readable")))
        .collect();
    out.sort();
    out
}

#[test]
fn every_kept_fuzz_input_still_holds_its_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (target, body) in TARGETS {
        let corpus = inputs(&root.join("corpus").join(target));
        assert!(!corpus.is_empty(), "the {target} target keeps a corpus");
        for (name, data) in corpus.iter().chain(inputs(&root.join("regressions").join(target)).iter()) {
            let outcome = std::panic::catch_unwind(|| body(data));
            assert!(outcome.is_ok(), "{target}: {name} breaks a property again");
        }
    }
}

#[test]
fn the_token_target_knows_a_token_that_verifies() {
    // Without it in the corpus the fuzzer would only ever see refusals.
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/token/valid");
    let kept = std::fs::read_to_string(&seed).expect("the valid token is kept in the corpus");
    assert_eq!(kept, govmedia_faults::fuzzing::valid_token());
    govmedia_faults::fuzzing::token(kept.as_bytes());
}
