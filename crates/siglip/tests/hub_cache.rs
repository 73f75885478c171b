//! Hub ids resolve through the Hugging Face cache layout (`HF_HOME`, `HF_HUB_OFFLINE`,
//! revisions), and an unreachable hub gives an error that says what to do.
//! One test function: these cases change process-wide environment variables.

use siglip_test_support as common;

use std::path::Path;

use siglip::files::resolve;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Lays out `<home>/hub/models--test-org--tiny-p14/{refs/main, snapshots/<commit>/...}`.
fn make_cache(home: &Path) {
    let repo = home.join("hub/models--test-org--tiny-p14");
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    for entry in std::fs::read_dir(common::fixture("models/tiny-p14")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), snapshot.join(entry.file_name())).unwrap();
    }
}

#[test]
fn hub_ids_resolve_through_the_cache() {
    let home = std::env::temp_dir().join(format!("siglip-hub-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    make_cache(&home);
    std::env::set_var("HF_HOME", &home);
    // Nothing listens on port 1: the "hub" is unreachable at once.
    std::env::set_var("HF_ENDPOINT", "http://127.0.0.1:1");

    // Offline: the cache alone, by branch or by commit.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let files = resolve("test-org/tiny-p14", None).unwrap();
    assert_eq!(files.weights.len(), 2, "both shards of the index");
    assert!(files.config.starts_with(&home));
    resolve("test-org/tiny-p14", Some(COMMIT)).unwrap();
    let error = format!("{:#}", resolve("test-org/absent", None).unwrap_err());
    assert!(
        error.contains("test-org/absent")
            && error.contains("HF_HUB_OFFLINE")
            && error.contains("--model"),
        "{error}"
    );
    let error = format!(
        "{:#}",
        resolve("test-org/tiny-p14", Some("v9")).unwrap_err()
    );
    assert!(error.contains("revision v9"), "{error}");

    // Online with the hub unreachable: a complete cached copy is used, else a clear error.
    std::env::remove_var("HF_HUB_OFFLINE");
    assert_eq!(resolve("test-org/tiny-p14", None).unwrap().weights.len(), 2);
    let error = format!("{:#}", resolve("test-org/absent", None).unwrap_err());
    assert!(
        error.contains("cannot reach the Hugging Face hub") && error.contains("--model"),
        "{error}"
    );

    // A path that does not exist is not taken for a hub id.
    let error = format!("{:#}", resolve("./no/such/model", None).unwrap_err());
    assert!(error.contains("does not exist"), "{error}");
    std::fs::remove_dir_all(&home).unwrap();
}
