//! Smoke test over the real GitOps repositories in `../shared/corpora`: every one scans
//! without a crash or an error exit. Skips (and says so) when the folder is absent, so that
//! a plain clone of the project still passes.

mod common;

use common::{corpora, envfence, json_report};

#[test]
fn every_corpus_scans() {
    let Some(dir) = corpora() else {
        eprintln!("skipped: ../shared/corpora is not present");
        return;
    };
    let mut scanned = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpora readable")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let out = envfence()
            .args(["scan", "--format", "json", "--fail-on", "never"])
            .arg(entry.path())
            .output()
            .expect("runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            entry.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report = json_report(&out);
        assert!(
            report["summary"]["files"].as_u64().unwrap_or(0) > 0,
            "{}",
            entry.path().display()
        );
        scanned += 1;
    }
    assert!(scanned > 0, "../shared/corpora holds no repository");
}
