//! Kubernetes objects as YAML text, for the manifests source, and a safe way to write them.

use std::path::Path;

/// A headless Service `name` in `default` selecting `app: name`.
pub fn headless_service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{clusterIP: None, selector: {{app: {name}}}}}\n"
    )
}

/// A StatefulSet-style pod of `app` in `default` (hostname = name, subdomain = app).
pub fn pod(name: &str, app: &str, ip: &str, ready: bool) -> String {
    let ready = if ready { "True" } else { "False" };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default, labels: {{app: {app}}}}}\n\
         spec: {{hostname: {name}, subdomain: {app}, containers: [{{name: c, image: x}}]}}\n\
         status: {{phase: Running, podIP: {ip}, conditions: [{{type: Ready, status: '{ready}'}}]}}\n"
    )
}

/// Writes `docs` as one multi-document file: write then rename, as editors do, so the server
/// never reads a half-written file.
pub fn write(dir: &Path, file: &str, docs: &[String]) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, docs.join("---\n")).unwrap();
    std::fs::rename(tmp, dir.join(file)).unwrap();
}
