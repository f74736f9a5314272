//! Kubernetes objects as JSON, for the fake API server.

use serde_json::{Value, json};

/// A StatefulSet-style pod `name` of `app` in `ns` (hostname = name, subdomain = app, and the
/// labels the StatefulSet controller writes): `ip` None is a Pending pod without an IP; otherwise
/// Running, Ready as `ready` says.
pub fn statefulset_pod(ns: &str, name: &str, app: &str, ip: Option<&str>, ready: bool) -> Value {
    let mut status = json!({"phase": if ip.is_some() { "Running" } else { "Pending" },
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    if let Some(ip) = ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": app,
            "controller-revision-hash": format!("{app}-5d8f6c9b7"),
            "statefulset.kubernetes.io/pod-name": name,
            "apps.kubernetes.io/pod-index": name.rsplit_once('-').map_or("0", |(_, n)| n)}},
        "spec": {"hostname": name, "subdomain": app, "containers": [{"name": "c", "image": "x"}]},
        "status": status})
}
