//! The DNS side: it reads only the [`crate::index::Index`], never Kubernetes types.
//!
//! - [`answer`]: the zone logic (which records, which rcode) for one question;
//! - [`server`]: UDP and TCP transport and the message-level rules (EDNS, truncation, opcodes).

pub mod answer;
pub mod reverse;
pub mod server;
