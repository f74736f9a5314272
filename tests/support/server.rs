//! Runs the real `headless-dns` binary on loopback with free ports and reads its JSON logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fake_api::FakeApi;

/// A running server process; killed (by its PID) when dropped.
pub struct ServerProcess {
    child: Child,
    /// DNS address (UDP and TCP).
    pub dns: SocketAddr,
    /// HTTP address.
    pub http: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    /// Files the process reads (a kubeconfig), removed after it is killed.
    _files: Option<tempfile::TempDir>,
}

/// The path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_headless-dns")
}

impl ServerProcess {
    /// Starts the binary with `args` plus loopback listeners on free ports and JSON logs, and
    /// waits until it reports both listeners.
    pub fn start(args: &[&str]) -> ServerProcess {
        Self::start_with_env(args, &[])
    }

    /// Starts the binary watching `api` through a kubeconfig (written to a temporary folder that
    /// lives as long as the process), with `args` and extra environment variables `env`.
    pub fn watching(api: &FakeApi, args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path());
        let mut full = vec!["--kubeconfig", kubeconfig.to_str().expect("utf-8 path")];
        full.extend_from_slice(args);
        let mut server = Self::start_with_env(&full, env);
        server._files = Some(dir);
        server
    }

    /// As [`ServerProcess::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let mut cmd = Command::new(binary());
        cmd.args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--log-format", "json"])
            .args(args)
            .env("RUST_LOG", "info,headless_dns=debug,hickory_server=warn")
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start headless-dns");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let mut proc = ServerProcess {
            child,
            dns: "0.0.0.0:0".parse().unwrap(),
            http: "0.0.0.0:0".parse().unwrap(),
            logs,
            _files: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(addr) = proc.log_field("dns listening", "udp") {
                proc.dns = addr.parse().unwrap();
            }
            if let Some(addr) = proc.log_field("http listening", "addr") {
                proc.http = addr.parse().unwrap();
            }
            if proc.dns.port() != 0 && proc.http.port() != 0 {
                return proc;
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("headless-dns exited early with {status}; logs:\n{}", proc.logs().join("\n"));
            }
            assert!(Instant::now() < deadline, "server did not start; logs:\n{}", proc.logs().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The string value of `field` in the first log line whose message is `message`.
    pub fn log_field(&self, message: &str, field: &str) -> Option<String> {
        self.logs().iter().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = v.get("fields")?;
            (fields.get("message")?.as_str()? == message).then(|| fields.get(field)?.as_str().map(str::to_owned))?
        })
    }

    /// Waits until a log line contains `needle` (panics after `timeout`).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?}; logs:\n{}", self.logs().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GETs `path` from the HTTP endpoint: (status code, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET over a plain socket: (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect http");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let code = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

/// Runs the binary with `args` to completion (for configuration errors): (exit code, stderr).
pub fn run_to_exit(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary()).args(args).env_remove("KUBECONFIG").stdin(Stdio::null()).output().expect("run");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl ServerProcess {
    /// Sends SIGTERM (by PID) and waits for the exit status, at most `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the process in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl ServerProcess {
    /// The value of one `/metrics` series, named with its labels exactly as exposed (for example
    /// `headless_dns_watch_events_total{kind="pods",event="list"}`); `None` while it is absent.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (code, text) = self.http_get("/metrics");
        if code != 200 {
            return None;
        }
        metric_in(&text, series)
    }
}

/// The value of the Prometheus series `series` (name and labels, exactly) in `text`.
pub fn metric_in(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}
