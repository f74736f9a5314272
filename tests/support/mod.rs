//! Test support: the real binary as a process, DNS clients, and a protocol-faithful fake
//! Kubernetes API server.
#![allow(dead_code)]

pub mod bench;
pub mod dns;
pub mod fake_api;
pub mod objects;
pub mod resolvers;
pub mod secondaries;
pub mod server;
pub mod yaml;
