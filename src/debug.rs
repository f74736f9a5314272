//! The debug listener (`--debug-listen`), apart from `/healthz`, `/readyz` and `/metrics` so
//! that it can stay on loopback: `GET /debug/explain?name=<qname>&type=<qtype>` says what the
//! server answers for a name now, and why. The answer comes from the real answer path; the why
//! from the reconciler, asked between two batches of events (the DNS path holds no lock for it);
//! the objects' identities and states (uid, resourceVersion, phase, Ready and since when) from the
//! source; the watches' state from [`Health`]. Nothing is revealed about objects DNS itself would
//! not serve.
//!
//! `headless-dns explain <name> [<type>] [--server ADDR]` ([`cli`]) prints it for a person.
//!
//! Entry points: [`serve`], [`cli`].

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use hickory_proto::op::{Message, MessageType, OpCode, Query as DnsQuery};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::dns::answer::Located;
use crate::dns::general::{Responder, Transport};
use crate::health::Health;
use crate::reconcile::explain::{ExplainRequest, Question, Why};
use crate::source::Lookup;

/// What the explain endpoint reads.
#[derive(Clone)]
pub struct Explainer {
    /// The answer path.
    pub responder: Arc<Responder>,
    /// The reconciler's explanation requests.
    pub requests: mpsc::Sender<ExplainRequest>,
    /// Watch health.
    pub health: Arc<Health>,
    /// The source, for the objects' identities and states.
    pub lookup: Arc<dyn Lookup>,
}

/// Why an explanation could not be given.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The name is not a domain name.
    #[error("`{0}` is not a domain name")]
    Name(String),
    /// The type is not a DNS record type.
    #[error("`{0}` is not a record type")]
    Type(String),
}

fn rfc3339_age(text: &str) -> Option<f64> {
    let t: k8s_openapi::jiff::Timestamp = text.parse().ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis() as i64;
    Some(((now - t.as_millisecond()).max(0) as f64 / 1000.0).round())
}

/// The identity and state of an object, from its API or manifest form.
fn details(v: &Value) -> Value {
    let meta = &v["metadata"];
    let mut out = json!({
        "uid": meta["uid"],
        "resourceVersion": meta["resourceVersion"],
    });
    if let Some(created) = meta["creationTimestamp"].as_str() {
        out["created_s_ago"] = json!(rfc3339_age(created));
    }
    if let Some(deleting) = meta["deletionTimestamp"].as_str() {
        out["terminating_s"] = json!(rfc3339_age(deleting));
    }
    if let Some(phase) = v["status"]["phase"].as_str() {
        out["phase"] = json!(phase);
    }
    if let Some(ready) = v["status"]["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "Ready")) {
        out["ready"] = ready["status"].clone();
        if let Some(since) = ready["lastTransitionTime"].as_str() {
            out["ready_since_s"] = json!(rfc3339_age(since));
        }
    }
    if let Some(replicas) = v["spec"]["replicas"].as_i64() {
        out["replicas"] = json!(replicas);
    }
    out
}

/// The rcode's mnemonic, as dig prints it.
fn rcode_text(m: &Message) -> String {
    use hickory_proto::op::ResponseCode as R;
    match m.metadata.response_code {
        R::NoError => "NOERROR".into(),
        R::FormErr => "FORMERR".into(),
        R::ServFail => "SERVFAIL".into(),
        R::NXDomain => "NXDOMAIN".into(),
        R::NotImp => "NOTIMP".into(),
        R::Refused => "REFUSED".into(),
        other => other.to_str().to_ascii_uppercase(),
    }
}

impl Explainer {
    /// The explanation of `name` `qtype`, as JSON.
    pub async fn explain(&self, name: &str, qtype: &str) -> Result<Value, ExplainError> {
        let mut qname = Name::from_ascii(name).map_err(|_| ExplainError::Name(name.to_owned()))?;
        qname.set_fqdn(true);
        let rtype =
            RecordType::from_str(&qtype.to_ascii_uppercase()).map_err(|_| ExplainError::Type(qtype.to_owned()))?;
        // What the server answers now: the real answer path, over TCP so that nothing is cut.
        let mut q = Message::new(0, MessageType::Query, OpCode::Query);
        q.add_query(DnsQuery::query(qname.clone(), rtype));
        let raw = q.to_vec().map_err(|_| ExplainError::Name(name.to_owned()))?;
        let reply = self
            .responder
            .respond(&raw, SocketAddr::from(([127, 0, 0, 1], 0)), Transport::Tcp)
            .and_then(|r| Message::from_vec(&r.bytes).ok());
        let answer = match &reply {
            Some(m) => {
                let line =
                    |r: &hickory_proto::rr::Record| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data);
                let negative_ttl = m.authorities.iter().find_map(|r| match &r.data {
                    RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                    _ => None,
                });
                json!({
                    "rcode": rcode_text(m),
                    "authoritative": m.metadata.authoritative,
                    "answer": m.answers.iter().map(line).collect::<Vec<_>>(),
                    "authority": m.authorities.iter().map(line).collect::<Vec<_>>(),
                    "additional": m.additionals.iter().map(line).collect::<Vec<_>>(),
                    "ttl": m.answers.first().map(|r| r.ttl),
                    "negative_ttl": negative_ttl,
                })
            }
            None => json!({"rcode": "none (dropped)"}),
        };
        let zones = self.responder.zones();
        let located = zones.locate(&qname);
        let outside = located.is_none();
        let (zone, why) = match located {
            None => (Value::Null, Why { reason: "not one of our zones: REFUSED".into(), ..Why::default() }),
            Some(Located::Forward { apex, key }) => (json!(apex.to_string()), self.why(Question::Forward(key)).await),
            Some(Located::Multicluster { apex, key }) => {
                (json!(apex.to_string()), self.why(Question::Multicluster(key)).await)
            }
            Some(Located::Reverse { apex, ip: Some(ip) }) => {
                (json!(apex.to_string()), self.why(Question::Reverse(ip)).await)
            }
            Some(Located::Reverse { apex, ip: None }) => (
                json!(apex.to_string()),
                Why {
                    reason: "not a full PTR name: NODATA above served addresses, else NXDOMAIN".into(),
                    ..Why::default()
                },
            ),
        };
        let why = if zones.index().is_synced() || outside {
            why
        } else {
            Why {
                reason: "not every watch has completed its first list: SERVFAIL, never a premature NXDOMAIN".into(),
                ..why
            }
        };
        let mut objects = Vec::new();
        for o in &why.objects {
            let found = self.lookup.object(o.kind, &o.namespace, &o.name).await;
            objects.push(json!({
                "kind": o.kind, "namespace": o.namespace, "name": o.name,
                "details": found.as_ref().map(details),
            }));
        }
        let watches: serde_json::Map<String, Value> = self
            .health
            .snapshot()
            .into_iter()
            .map(|(kind, w)| {
                (
                    kind.to_owned(),
                    json!({
                        "synced": w.synced,
                        "optional": w.optional,
                        "last_event_s_ago": w.last_event.map(|t| t.elapsed().as_secs()),
                        "last_error": w.last_error,
                    }),
                )
            })
            .collect();
        Ok(json!({
            "name": qname.to_string(),
            "type": rtype.to_string(),
            "zone": zone,
            "serial": zones.index().serial(),
            "answer": answer,
            "why": {
                "reason": why.reason,
                "expected_by": why.expected_by,
                "endpoints": why.endpoints,
                "names_changed_s_ago": why.names_changed_s_ago.map(f64::round),
            },
            "objects": objects,
            "watches": watches,
        }))
    }

    async fn why(&self, question: Question) -> Why {
        let (reply, answer) = oneshot::channel();
        if self.requests.send(ExplainRequest { question, reply }).await.is_err() {
            return Why { reason: "the reconciler has stopped".into(), ..Why::default() };
        }
        match tokio::time::timeout(Duration::from_secs(5), answer).await {
            Ok(Ok(why)) => why,
            _ => Why { reason: "the reconciler did not answer in time".into(), ..Why::default() },
        }
    }
}

/// `name` and `type` from the query string (percent-decoded; `type` defaults to A).
fn params(query: &str) -> (Option<String>, String) {
    let (mut name, mut qtype) = (None, "A".to_owned());
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "name" => name = Some(v.into_owned()),
            "type" => qtype = v.into_owned(),
            _ => {}
        }
    }
    (name, qtype)
}

async fn explain_handler(
    State(explainer): State<Explainer>,
    RawQuery(query): RawQuery,
) -> (StatusCode, [(axum::http::HeaderName, &'static str); 1], String) {
    let json_type = [(axum::http::header::CONTENT_TYPE, "application/json")];
    let (Some(name), qtype) = params(query.as_deref().unwrap_or("")) else {
        let body = json!({"error": "ask /debug/explain?name=<name>&type=<type>"});
        return (StatusCode::BAD_REQUEST, json_type, format!("{body:#}\n"));
    };
    match explainer.explain(&name, &qtype).await {
        Ok(v) => (StatusCode::OK, json_type, format!("{v:#}\n")),
        Err(e) => (StatusCode::BAD_REQUEST, json_type, format!("{:#}\n", json!({"error": e.to_string()}))),
    }
}

/// Serves the debug endpoints on an already bound listener until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, explainer: Explainer) -> std::io::Result<()> {
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    info!(addr, "debug listening");
    let app = Router::new().route("/debug/explain", get(explain_handler)).with_state(explainer);
    axum::serve(listener, app).await
}

/// `headless-dns explain`: asks a running server's debug listener and prints the explanation.
#[derive(Debug, clap::Parser)]
#[command(name = "headless-dns explain", about = "Say what a running headless-dns answers for a name, and why")]
pub struct ExplainArgs {
    /// The name to explain (web-0.nginx.default.svc.cluster.local).
    pub name: String,
    /// The query type. Default A.
    #[arg(default_value = "A")]
    pub qtype: String,
    /// The server's debug listener (`--debug-listen`); in a cluster, reach it with
    /// `kubectl -n headless-dns port-forward deploy/headless-dns 8081`.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub server: SocketAddr,
    /// Print the JSON as the server sent it.
    #[arg(long)]
    pub json: bool,
}

/// Why `headless-dns explain` failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The debug listener could not be reached or answered badly.
    #[error("cannot ask {server} (is the server running with --debug-listen {server}?): {reason}")]
    Request {
        /// The address asked.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// The server refused the question.
    #[error("{0}")]
    Refused(String),
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Fetches the explanation over plain HTTP/1.1 from `args.server`.
pub fn fetch(args: &ExplainArgs) -> Result<Value, CliError> {
    use std::io::{Read, Write};
    let err = |reason: String| CliError::Request { server: args.server, reason };
    let mut s =
        std::net::TcpStream::connect_timeout(&args.server, Duration::from_secs(5)).map_err(|e| err(e.to_string()))?;
    s.set_read_timeout(Some(Duration::from_secs(15))).map_err(|e| err(e.to_string()))?;
    write!(
        s,
        "GET /debug/explain?name={}&type={} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        percent_encode(&args.name),
        percent_encode(&args.qtype),
        args.server
    )
    .map_err(|e| err(e.to_string()))?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| err(e.to_string()))?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| err("not an HTTP response".into()))?;
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    let v: Value = serde_json::from_str(&body).map_err(|e| err(format!("not JSON: {e}")))?;
    if let Some(e) = v["error"].as_str() {
        return Err(CliError::Refused(e.to_owned()));
    }
    Ok(v)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The explanation for a person.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    let s = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    out.push_str(&format!("{} {}   (zone {}, serial {})\n", s(&v["name"]), s(&v["type"]), s(&v["zone"]), v["serial"]));
    let a = &v["answer"];
    let mut head = format!("answer:  {}", s(&a["rcode"]));
    if a["authoritative"] == true {
        head.push_str(", authoritative");
    }
    if let Some(t) = a["ttl"].as_u64() {
        head.push_str(&format!(", TTL {t} s"));
    }
    if let Some(t) = a["negative_ttl"].as_u64() {
        head.push_str(&format!(", negative TTL {t} s"));
    }
    out.push_str(&head);
    out.push('\n');
    for section in ["answer", "authority", "additional"] {
        for line in a[section].as_array().into_iter().flatten() {
            out.push_str(&format!("  {}{}\n", if section == "answer" { "" } else { "; " }, s(line)));
        }
    }
    let why = &v["why"];
    out.push_str(&format!("why:     {}\n", s(&why["reason"])));
    if let Some(ago) = why["names_changed_s_ago"].as_f64() {
        out.push_str(&format!("         the Service's names last changed {ago} s ago\n"));
    }
    if why["expected_by"].is_object() {
        let x = &why["expected_by"];
        out.push_str(&format!(
            "expected: by StatefulSet {} (replicas {}, ordinals {}..{}): pod {} is {}",
            s(&x["statefulset"]),
            x["replicas"],
            x["ordinals"][0],
            x["ordinals"][1],
            s(&x["pod"]),
            s(&x["pod_state"])
        ));
        if let Some(gap) = x["gap_s"].as_f64() {
            out.push_str(&format!("; no address for {gap} s"));
        }
        if let Some(longest) = x["longest_gap_s"].as_f64() {
            out.push_str(&format!("; {} of its names without an address, the longest for {longest} s", x["missing"]));
        }
        out.push('\n');
    }
    let endpoints = why["endpoints"].as_array().cloned().unwrap_or_default();
    if !endpoints.is_empty() {
        out.push_str("endpoints:\n");
        for e in &endpoints {
            out.push_str(&format!(
                "  {:<16} {:<24} {} by {}; {}{}\n",
                s(&e["ip"]),
                s(&e["label"]),
                match (e["published"] == true, e["named"] == true) {
                    (true, true) => "published",
                    (true, false) => "address published, name NOT served",
                    _ => "NOT published",
                },
                s(&e["rule"]),
                s(&e["state"]),
                e["pod"].as_str().map(|p| format!(" (pod {p})")).unwrap_or_default()
            ));
        }
    }
    let objects = v["objects"].as_array().cloned().unwrap_or_default();
    if !objects.is_empty() {
        out.push_str("objects:\n");
        for o in &objects {
            let d = &o["details"];
            let mut line = format!("  {} {}/{}", s(&o["kind"]), s(&o["namespace"]), s(&o["name"]));
            if d.is_null() {
                line.push_str("  (not found in the source now)");
            } else {
                if let Some(p) = d["phase"].as_str() {
                    line.push_str(&format!("  phase {p}"));
                }
                if let Some(created) = d["created_s_ago"].as_f64() {
                    line.push_str(&format!(" (created {created} s ago)"));
                }
                if let Some(r) = d["ready"].as_str() {
                    line.push_str(&format!(", Ready {r}"));
                    if let Some(since) = d["ready_since_s"].as_f64() {
                        line.push_str(&format!(" for {since} s"));
                    }
                }
                if let Some(t) = d["terminating_s"].as_f64() {
                    line.push_str(&format!(", terminating for {t} s"));
                }
                if let Some(r) = d["replicas"].as_i64() {
                    line.push_str(&format!("  replicas {r}"));
                }
                if let Some(uid) = d["uid"].as_str() {
                    line.push_str(&format!("  uid {uid}"));
                }
                if let Some(rv) = d["resourceVersion"].as_str() {
                    line.push_str(&format!("  resourceVersion {rv}"));
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str("watches:\n");
    for (kind, w) in v["watches"].as_object().into_iter().flatten() {
        let mut line = format!("  {kind}: {}", if w["synced"] == true { "synced" } else { "not listed yet" });
        if w["optional"] == true {
            line.push_str(" (optional)");
        }
        if let Some(ago) = w["last_event_s_ago"].as_u64() {
            line.push_str(&format!(", last event {ago} s ago"));
        }
        if let Some(e) = w["last_error"].as_str() {
            line.push_str(&format!(", last error: {e}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Runs `headless-dns explain` with `args` (the words after `explain`): prints the
/// explanation, or the error.
pub fn cli(args: &ExplainArgs) -> Result<String, CliError> {
    let v = fetch(args)?;
    Ok(if args.json { format!("{v:#}\n") } else { render(&v) })
}
