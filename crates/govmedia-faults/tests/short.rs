//! The short version of each fault scenario, in the normal test run: the same code as the
//! full run (`cargo run -p govmedia-faults -- <scenario>`), fewer cases.

/// R1.3.5: every tampered copy of a real log is found with its first bad event named,
/// and no untampered copy raises an alarm (150 cases over every kind of change).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_always_found_and_named_r1_3_5() {
    let work = tempfile::tempdir().expect("work");
    let options =
        govmedia_faults::tampering::Options { cases: 150, events: 600, checkpoint_every: 50, seed: rand::random() };
    let report = govmedia_faults::tampering::run(work.path(), &options).await.expect("the scenario runs");
    eprintln!("{report}");
    assert!(report.holds(), "{report}");
    assert_eq!(report.value("untampered copies verified intact"), Some("15 of 15"), "{report}");
    for kind in
        ["alter a column", "delete an event", "swap two events", "cut the end off", "forge a checkpoint signature"]
    {
        assert!(report.figures.iter().any(|f| f.name.trim() == kind), "no case of {kind:?}: {report}");
    }
}
