//! Real secondary servers (Knot DNS, BIND, NSD) on loopback high ports, configured to transfer
//! zones from headless-dns and to accept its NOTIFY. Hermetic: each talks only to the primary on
//! 127.0.0.1 and answers only on its own loopback port. Facts about each: `shared/resolvers.md`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;

use super::resolvers::{find_binary_named, start_daemon};

/// Which secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Knot DNS (`knotd`).
    Knot,
    /// BIND 9 (`named`).
    Bind,
    /// NSD (`nsd`).
    Nsd,
}

impl Kind {
    fn binary(self) -> &'static str {
        match self {
            Kind::Knot => "knotd",
            Kind::Bind => "named",
            Kind::Nsd => "nsd",
        }
    }

    fn package(self) -> &'static str {
        match self {
            Kind::Knot => "knot",
            Kind::Bind => "bind9",
            Kind::Nsd => "nsd",
        }
    }
}

/// A TSIG key as the secondary's configuration names it.
#[derive(Debug, Clone)]
pub struct TsigKey {
    /// Its name.
    pub name: String,
    /// Its base64 secret.
    pub secret: String,
}

/// How a secondary reaches its primary.
#[derive(Debug, Clone)]
pub struct Primary {
    /// The primary's DNS address.
    pub addr: SocketAddr,
    /// The local address transfers come from (the primary's `allow-transfer` sees it).
    pub source: Ipv4Addr,
    /// The key transfers and NOTIFY are signed with.
    pub key: Option<TsigKey>,
}

/// The text of `kind`'s configuration for `zones`, listening on `port` in `dir`.
fn configure(kind: Kind, dir: &Path, port: u16, primary: &Primary, zones: &[&str]) -> (String, Vec<String>) {
    let d = dir.display();
    let (pip, pport) = (primary.addr.ip(), primary.addr.port());
    let src = primary.source;
    match kind {
        Kind::Knot => {
            let mut c = format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: \"{d}\"\ndatabase:\n    storage: \"{d}\"\n\
                 control:\n    listen: \"{d}/knot.sock\"\nlog:\n  - target: stderr\n    any: info\n"
            );
            let key_line = primary.key.as_ref().map(|k| format!("    key: {}\n", k.name)).unwrap_or_default();
            if let Some(k) = &primary.key {
                c += &format!("key:\n  - id: {}\n    algorithm: hmac-sha256\n    secret: {}\n", k.name, k.secret);
            }
            c += &format!("remote:\n  - id: primary\n    address: {pip}@{pport}\n    via: {src}\n{key_line}");
            c += &format!(
                "acl:\n  - id: notify\n    address: {pip}\n    action: notify\n{key_line}  - id: local\n    address: 127.0.0.1\n    action: transfer\n"
            );
            // Zone contents live in memory and the journal only; refresh comes from the SOA (2 h).
            c += &format!(
                "template:\n  - id: default\n    storage: \"{d}\"\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: all\nzone:\n"
            );
            for z in zones {
                c += &format!("  - domain: {z}\n    master: primary\n    acl: [notify, local]\n");
            }
            (c, vec!["-c".into(), format!("{d}/knot.conf")])
        }
        Kind::Bind => {
            let mut c = format!(
                "options {{\n  directory \"{d}\";\n  listen-on port {port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n  \
                 pid-file \"{d}/named.pid\";\n  session-keyfile \"{d}/session.key\";\n  recursion no;\n  notify no;\n  \
                 dnssec-validation no;\n  max-records-per-type 0;\n  allow-transfer {{ 127.0.0.1; }};\n  transfer-source {src};\n  notify-source {src};\n}};\ncontrols {{ }};\n"
            );
            let key = match &primary.key {
                Some(k) => {
                    c += &format!("key \"{}\" {{ algorithm hmac-sha256; secret \"{}\"; }};\n", k.name, k.secret);
                    format!(" key \"{}\"", k.name)
                }
                None => String::new(),
            };
            for z in zones {
                c += &format!(
                    "zone \"{z}\" {{ type secondary; primaries {{ {pip} port {pport}{key}; }}; file \"{z}.db\"; }};\n"
                );
            }
            // -d 3: named tells incremental from full transfers only at debug level 3.
            (c, vec!["-g".into(), "-d".into(), "3".into(), "-c".into(), format!("{d}/named.conf")])
        }
        Kind::Nsd => {
            let mut c = format!(
                "server:\n  ip-address: 127.0.0.1@{port}\n  zonesdir: \"{d}\"\n  database: \"\"\n  pidfile: \"{d}/nsd.pid\"\n  \
                 xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n  xfrdir: \"{d}\"\n  username: \"\"\n  \
                 chroot: \"\"\n  verbosity: 2\nremote-control:\n  control-enable: no\n"
            );
            let key = match &primary.key {
                Some(k) => {
                    c += &format!("key:\n  name: {}\n  algorithm: hmac-sha256\n  secret: \"{}\"\n", k.name, k.secret);
                    k.name.clone()
                }
                None => "NOKEY".into(),
            };
            for z in zones {
                c += &format!(
                    "zone:\n  name: {z}\n  outgoing-interface: {src}\n  request-xfr: {pip}@{pport} {key}\n  allow-notify: {pip} {key}\n  \
                     provide-xfr: 127.0.0.1 NOKEY\n"
                );
            }
            (c, vec!["-d".into(), "-c".into(), format!("{d}/nsd.conf")])
        }
    }
}

/// A running secondary; killed by its PID when dropped.
pub struct Secondary {
    /// Which one.
    pub kind: Kind,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

/// The path of `kind`'s binary, or a failed test saying what to install.
fn binary(kind: Kind) -> PathBuf {
    find_binary_named(kind.binary()).unwrap_or_else(|| {
        panic!(
            "secondary `{}` is not installed: install the Debian package `{}` (bash .ci/run does)",
            kind.binary(),
            kind.package()
        )
    })
}

impl Secondary {
    /// Starts `kind` (as `nobody` when root) on a free loopback port as a secondary of `zones`
    /// from `primary`, and waits until it accepts connections.
    pub fn start(kind: Kind, primary: &Primary, zones: &[&str]) -> Secondary {
        let binary = binary(kind);
        let d = start_daemon(&format!("{kind:?}"), &binary, |dir, port| {
            let (text, args) = configure(kind, dir, port, primary, zones);
            let file = match kind {
                Kind::Knot => "knot.conf",
                Kind::Bind => "named.conf",
                Kind::Nsd => "nsd.conf",
            };
            std::fs::write(dir.join(file), text).unwrap();
            args
        });
        Secondary { kind, addr: d.addr, child: d.child, dir: d.dir }
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        // setpriv execs the server, so the child's PID is the server's.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {:?} log ---\n{}", self.kind, self.log());
        }
    }
}
