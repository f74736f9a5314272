//! The DNS side: it reads only the [`crate::index::Index`], never Kubernetes types.
//!
//! - [`answer`]: the zone logic (which records, which rcode) for one question;
//! - [`cookie`]: DNS Cookies (RFC 7873, server cookies as RFC 9018 makes them);
//! - [`fast`]: the lean UDP path for A/AAAA under a forward zone;
//! - [`general`]: every other request, on hickory-server's request and response types;
//! - [`mmsg`]: batched UDP receive and send on Linux (`recvmmsg`, `sendmmsg`), the one module
//!   with `unsafe` code;
//! - [`notify`]: NOTIFY to secondaries on each new serial, retried until acknowledged;
//! - [`names`]: the name grammar (label limits, dashed IPs, zone-relative keys);
//! - [`reverse`]: reverse-zone names;
//! - [`server`]: UDP and TCP transport, limits, shutdown;
//! - [`tsig`]: TSIG signatures (RFC 8945) and the key file;
//! - [`xfr`]: zone transfers (AXFR, IXFR) from the journal's snapshots, and who may ask;
//! - [`zone`]: what to serve (zones, TTLs, answer options), the DNS side's own settings types.

pub mod answer;
pub mod cookie;
pub mod fast;
pub mod general;
#[cfg(target_os = "linux")]
pub mod mmsg;
pub mod names;
pub mod notify;
pub mod reverse;
pub mod server;
pub mod tsig;
pub mod xfr;
pub mod zone;
