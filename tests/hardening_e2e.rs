//! Regression tests for defects found by careful reading and real resolvers, each through the
//! real binary over real sockets: names claimed by two objects, reloads in a row, a typo in a
//! manifest, a zone too long for its SOA, TCP answers over 64 KiB and the SOA TTL of negative
//! answers.

mod support;

use std::process::Command;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use support::dns::{query, udp_message};
use support::server::{ServerProcess, eventually};

const WAIT: Duration = Duration::from_secs(20);

async fn ask(server: std::net::SocketAddr, name: &str, rtype: RecordType) -> Message {
    udp_message(server, &query(name, rtype, None)).await.0
}

/// Reloads compare with the running configuration: a second SIGHUP asking for a change that needs
/// a restart keeps what the first one applied, never the start-up value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sighup_keeps_what_the_first_applied() {
    let dir = tempfile::tempdir().unwrap();
    support::yaml::write(
        dir.path(),
        "a.yaml",
        &[support::yaml::headless_service("nginx"), support::yaml::pod("web-0", "nginx", "10.244.1.5", true)],
    );
    let cfg = dir.path().join("c.toml");
    let manifests = dir.path().to_str().unwrap().to_owned();
    let write_cfg = |pods: &str| {
        std::fs::write(&cfg, format!("manifests = \"{manifests}\"\npods = \"{pods}\"\n")).unwrap();
    };
    write_cfg("disabled");
    let s = tokio::task::block_in_place(|| {
        let s = ServerProcess::start(&["--config", cfg.to_str().unwrap()]);
        s.wait_for_log("first full sync complete", WAIT);
        s
    });
    const POD: &str = "10-9-9-9.default.pod.cluster.local.";
    let hup = || assert!(Command::new("kill").args(["-HUP", &s.pid().to_string()]).status().unwrap().success());
    assert_eq!(ask(s.dns, POD, RecordType::A).await.metadata.response_code, ResponseCode::NXDomain);

    write_cfg("insecure");
    hup();
    eventually("insecure pod records applied", WAIT, || async {
        (support::dns::addresses(&ask(s.dns, POD, RecordType::A).await) == ["10.9.9.9"]).then_some(())
    })
    .await;

    // `verified` needs the pod records published by the reconciler: a restart.
    write_cfg("verified");
    hup();
    tokio::task::block_in_place(|| s.wait_for_log("need a restart", WAIT));
    let reloads = || s.logs().iter().filter(|l| l.contains("configuration reloaded")).count();
    eventually("the second reload done", WAIT, || async { (reloads() >= 2).then_some(()) }).await;
    let m = ask(s.dns, POD, RecordType::A).await;
    assert_eq!(support::dns::addresses(&m), ["10.9.9.9"], "the running `insecure` stays: {m:?}");
}
