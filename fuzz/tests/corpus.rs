//! Replays every seed and regression input in `fuzz/corpus/<target>/` through its target
//! body, so a crash found once by the fuzzer stays fixed.

use std::path::Path;

#[test]
fn replay_every_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut total = 0usize;
    for (name, target) in sockeye_fuzz::TARGETS {
        let dir = root.join(name);
        // A target whose corpus folder went missing would replay nothing and pass.
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|error| panic!("no corpus for target {name} at {dir:?}: {error}"));
        let mut replayed = 0usize;
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            if path.is_file() {
                let data = std::fs::read(&path).expect("corpus file");
                target(&data);
                replayed += 1;
            }
        }
        assert!(
            replayed > 0,
            "the corpus of target {name} is empty ({dir:?})"
        );
        total += replayed;
    }
    eprintln!("replayed {total} corpus inputs");
}
