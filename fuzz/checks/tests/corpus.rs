//! Corpus replay: every file of `fuzz/corpus/<target>/` (the starting corpora, what runs added
//! and the reproducers of past findings) through its target's check, on the stable toolchain.
//! A check that panics fails the test, which names the file. This is the fuzzing guard of
//! every `cargo test --workspace`; the libFuzzer runs themselves are `fuzz/run.sh`
//! (RELIABILITY.md).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use amps_fuzz_checks::{Check, TARGETS};

fn corpus_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("fuzz/checks is in fuzz/")
        .join("corpus")
}

/// The files of `dir`, sorted by name.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Run `check` over every file of `dir`; returns how many files ran and, for each file whose
/// check panicked, its path and the panic message.
fn replay(dir: &Path, check: Check) -> (usize, Vec<String>) {
    let mut failed = Vec::new();
    let all = files(dir);
    for path in &all {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            eprintln!("FAILED: {} ({msg})", path.display());
            failed.push(format!("{}: {msg}", path.display()));
        }
    }
    (all.len(), failed)
}

#[test]
fn every_corpus_file_passes_its_check() {
    let root = corpus_root();
    // Every corpus directory belongs to a target, and every target has a corpus.
    let mut dirs: Vec<String> = fs::read_dir(&root)
        .expect("fuzz/corpus")
        .map(|e| e.expect("a directory entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    dirs.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    names.sort();
    assert_eq!(dirs, names, "corpus directories and targets differ");

    let mut failed = Vec::new();
    for (name, check) in TARGETS {
        let (n, f) = replay(&root.join(name), *check);
        assert!(n > 0, "the corpus of {name} is empty");
        println!("{name}: {n} files");
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "checks failed on:\n{}",
        failed.join("\n")
    );
}

fn panics_on_x(data: &[u8]) {
    assert!(!data.contains(&b'x'), "an x");
}

#[test]
fn a_check_that_panics_fails_the_replay_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("amps-fuzz-replay-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a-fine"), b"abc").unwrap();
    fs::write(dir.join("b-bad"), b"axc").unwrap();
    let (n, failed) = replay(&dir, panics_on_x);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(n, 2);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("b-bad") && failed[0].contains("an x"));
}
