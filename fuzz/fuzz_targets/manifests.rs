//! The manifests loader under libFuzzer: each input is written to a `.yaml` file and read with
//! `manifests::load`, which must not panic, and every skipped document must name that file and a
//! line within it (`check_manifests` in `tests/corpus/mod.rs`).
#![no_main]

#[path = "../../tests/corpus/mod.rs"]
mod corpus;

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

/// One file per fuzzing process, rewritten for every input.
static FILE: LazyLock<PathBuf> =
    LazyLock::new(|| std::env::temp_dir().join(format!("headless-dns-fuzz-{}.yaml", std::process::id())));

fuzz_target!(|data: &[u8]| {
    std::fs::write(&*FILE, data).expect("write the input");
    if let Err(e) = corpus::check_manifests(&FILE, &[(&FILE, data)]) {
        panic!("{e}");
    }
});
