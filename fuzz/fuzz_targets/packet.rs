//! The request path under libFuzzer: each input is a DNS message, answered as the server's UDP
//! loop answers it (`fast::answer`, else `Responder::respond` over UDP) and as a TCP connection
//! does (`Responder::respond` over TCP), and must keep the invariants of `tests/corpus/mod.rs`
//! (`check`): no panic, a reply for every query and none for runts and responses, the query's ID,
//! within the UDP size limit, decodable, OPT and question echoed, the fast path's bytes equal to
//! the general path's, the same rcode over UDP and TCP. With `HEADLESS_DNS_FUZZ_CORE_ONLY=1` only
//! the core of them (`check_core`: no panic, reply or not, ID, QR, size).
#![no_main]

#[path = "../../tests/corpus/mod.rs"]
mod corpus;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

static FIXTURE: LazyLock<corpus::Fixture> = LazyLock::new(corpus::Fixture::new);
static CORE_ONLY: LazyLock<bool> = LazyLock::new(|| std::env::var_os("HEADLESS_DNS_FUZZ_CORE_ONLY").is_some());

fuzz_target!(|data: &[u8]| {
    let result = if *CORE_ONLY { corpus::check_core(&FIXTURE, data) } else { corpus::check(&FIXTURE, data).map(drop) };
    if let Err(e) = result {
        panic!("{e}");
    }
});
