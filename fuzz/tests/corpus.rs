//! Replays every seed and regression input in `fuzz/corpus/<target>/` through its target
//! body, so a crash found once by the fuzzer stays fixed.

use std::path::Path;

#[test]
fn replay_every_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut replayed = 0usize;
    for (name, target) in sockeye_fuzz::TARGETS {
        let dir = root.join(name);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            if path.is_file() {
                let data = std::fs::read(&path).expect("corpus file");
                target(&data);
                replayed += 1;
            }
        }
    }
    eprintln!("replayed {replayed} corpus inputs");
}
