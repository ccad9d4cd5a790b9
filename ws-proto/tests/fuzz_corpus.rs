//! Replays the fuzz corpus without cargo-fuzz: every file under
//! `fuzz/corpus/<target>/` (and every hand-made seed) goes through the same
//! check functions the fuzz targets run (`fuzz/src/checks.rs`, included by
//! path), with the same counting allocator for the memory bounds.
//!
//! `WS_FUZZ_WRITE_SEEDS=1 cargo test -p ws-proto --test fuzz_corpus write_seeds`
//! (re)writes the hand-made seeds as `fuzz/corpus/<target>/seed-<name>`.

#[path = "../../fuzz/src/checks.rs"]
mod checks;
#[path = "../../fuzz/src/seeds.rs"]
mod seeds;

use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Live heap bytes of the process.
fn live() -> usize {
    let s = GLOBAL.stats();
    // Growth by realloc is already counted in `bytes_allocated`.
    s.bytes_allocated.saturating_sub(s.bytes_deallocated)
}

/// The memory checks read a process-wide counter: one replay at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

type Check = fn(&[u8], checks::Live);

const TARGETS: [(&str, Check); 6] = [
    ("frame_decoder", checks::frame_decoder),
    ("handshake_request", checks::handshake_request),
    ("handshake_response", checks::handshake_response),
    ("deflate", checks::deflate),
    ("pair_ops", checks::pair_ops),
    ("client_proxy", checks::client_proxy),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

fn files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir().join(target);
    let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

fn check_of(target: &str) -> Check {
    TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .map(|(_, f)| *f)
        .expect("a known target")
}

/// Runs one input, naming it if the check panics.
fn replay(target: &str, name: &str, data: &[u8]) {
    let check = check_of(target);
    let r = std::panic::catch_unwind(|| check(data, Some(live)));
    if let Err(e) = r {
        let msg = e
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| e.downcast_ref::<&str>().copied())
            .unwrap_or("?");
        panic!("{target}: {name} fails: {msg}");
    }
}

fn replay_target(target: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let files = files(target);
    for f in &files {
        let data = std::fs::read(f).expect("read a corpus file");
        replay(target, &f.display().to_string(), &data);
    }
    let seeds: Vec<_> = seeds::all()
        .into_iter()
        .filter(|(t, _, _)| *t == target)
        .collect();
    for (_, name, data) in &seeds {
        replay(target, name, data);
    }
    assert!(!seeds.is_empty(), "{target}: no seeds");
    // The committed corpus holds at least the seeds.
    assert!(
        files.len() >= seeds.len(),
        "{target}: {} corpus files for {} seeds; run with WS_FUZZ_WRITE_SEEDS=1",
        files.len(),
        seeds.len()
    );
}

#[test]
fn corpus_frame_decoder() {
    replay_target("frame_decoder");
}

#[test]
fn corpus_handshake_request() {
    replay_target("handshake_request");
}

#[test]
fn corpus_handshake_response() {
    replay_target("handshake_response");
}

#[test]
fn corpus_deflate() {
    replay_target("deflate");
}

#[test]
fn corpus_pair_ops() {
    replay_target("pair_ops");
}

#[test]
fn corpus_client_proxy() {
    replay_target("client_proxy");
}

/// Writes the hand-made seeds into the corpus when asked to.
#[test]
fn write_seeds_when_asked() {
    if std::env::var_os("WS_FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    for (target, name, data) in seeds::all() {
        let dir = corpus_dir().join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write a seed");
    }
}
