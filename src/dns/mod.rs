//! The DNS side: it reads only the [`crate::index::Index`], never Kubernetes types.
//!
//! - [`answer`]: the zone logic (which records, which rcode) for one question;
//! - [`fast`]: the lean UDP path for A/AAAA under a forward zone;
//! - [`general`]: every other request, on hickory-server's request and response types;
//! - [`reverse`]: reverse-zone names;
//! - [`server`]: UDP and TCP transport, limits, shutdown.

pub mod answer;
pub mod fast;
pub mod general;
pub mod reverse;
pub mod server;
