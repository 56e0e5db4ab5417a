//! A damaged embedded store file: opening it is a clear error that names the file and what to do,
//! never a panic.

use valine_store::embedded::EmbeddedStore;

fn open_outcome(path: &std::path::Path) -> Result<(), String> {
    let path = path.to_path_buf();
    // A panic inside the store would be a crash at start-up; catch it to fail the test clearly.
    match std::panic::catch_unwind(move || EmbeddedStore::open(&path).map(|_| ()).map_err(|e| e.to_string())) {
        Ok(result) => result,
        Err(_) => panic!("opening a damaged store panicked"),
    }
}

#[test]
fn garbage_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valine.redb");
    std::fs::write(&path, vec![0xA5u8; 64 * 1024]).unwrap();
    let err = open_outcome(&path).expect_err("garbage must not open");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("move it aside"), "{err}");
}

#[test]
fn a_truncated_store_opens_or_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("valine.redb");
    drop(EmbeddedStore::open(&path).unwrap());
    let full = std::fs::read(&path).unwrap();
    for keep in [0, 16, full.len() / 3, full.len() / 2, full.len().saturating_sub(1)] {
        std::fs::write(&path, &full[..keep]).unwrap();
        if let Err(err) = open_outcome(&path) {
            assert!(err.contains(&path.display().to_string()) && err.contains("move it aside"), "{keep}: {err}");
        }
    }
}
