//! Kubernetes objects as JSON, for the fake API server.

use serde_json::{Value, json};

/// A StatefulSet-style pod `name` of `app` in `ns` (hostname = name, subdomain = app): `ip` None is
/// a Pending pod without an IP; otherwise Running, Ready as `ready` says.
pub fn statefulset_pod(ns: &str, name: &str, app: &str, ip: Option<&str>, ready: bool) -> Value {
    let mut status = json!({"phase": if ip.is_some() { "Running" } else { "Pending" },
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app}},
        "spec": {"hostname": name, "subdomain": app, "containers": [{"name": "c", "image": "x"}]},
        "status": status})
}
