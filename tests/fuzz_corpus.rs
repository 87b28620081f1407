//! The fuzz corpus, replayed: every file of `fuzz/corpus/<target>/` (the inputs coverage-guided
//! fuzzing kept, minimized) and of `fuzz/regressions/<target>/` (inputs that once crashed a
//! target, kept forever) goes through the target's body, the same function the fuzz target
//! runs (`fuzz/src/lib.rs`, included here). A panic fails the test naming the file. The long runs
//! that grow the corpus are `scripts/fuzz` (see docs/fuzzing.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every file of `kind/<target>/` through its target; the failures, each naming its file.
fn replay(kind: &str) -> (usize, Vec<String>) {
    let (mut count, mut failures) = (0, Vec::new());
    for (name, body) in targets::TARGETS {
        for file in files_in(&fuzz_dir().join(kind).join(name)) {
            let data = std::fs::read(&file).unwrap();
            count += 1;
            if let Err(panic) = std::panic::catch_unwind(|| body(&data)) {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                failures.push(format!("{}: {why}", file.display()));
            }
        }
    }
    (count, failures)
}

/// The directories under `kind/` name targets that exist (a renamed target leaves no corpus
/// that nothing replays).
fn dirs_are_targets(kind: &str) {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !path.is_dir() || targets::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/{kind}/{name} is not a fuzz target's directory"
        );
    }
}

#[test]
fn every_corpus_input_runs_through_its_target_without_a_failure() {
    dirs_are_targets("corpus");
    let (count, failures) = replay("corpus");
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every target has a corpus to replay.
    for (name, _) in targets::TARGETS {
        assert!(
            !files_in(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty"
        );
    }
    assert!(count > 0);
}

#[test]
fn every_regression_input_stays_fixed() {
    dirs_are_targets("regressions");
    let (_, failures) = replay("regressions");
    assert!(
        failures.is_empty(),
        "{} failing:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
