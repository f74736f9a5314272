//! Test support: the real binary as a process, DNS clients, and (in `fake_api`) a
//! protocol-faithful fake Kubernetes API server.
#![allow(dead_code)]

pub mod dns;
pub mod server;
