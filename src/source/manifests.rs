//! The manifests source: Services, Pods, EndpointSlices, Namespaces and StatefulSets read from a
//! YAML file or a folder of
//! them (recursively: `*.yaml`, `*.yml`, `*.json`), as `kubectl get -o yaml` prints them:
//! multi-document files and `kind: List` included. Pod IPs and conditions come from `status`.
//!
//! The path is watched; after a change settles, everything is re-read and sent as one
//! [`Change::Reset`] per kind, so saving a file changes the answers within a second. A bad document
//! is reported with its file and line, counted in `/metrics`, and skipped; while a file has one,
//! the objects that file held at its last read stay (the broken document may be one of them: a
//! typo must not turn names that were fine into cached NXDOMAINs). A deleted file takes its
//! objects with it. Parsing is serde-saphyr's (YAML 1.2, with budgets against alias bombs).
//!
//! Entry points: [`load`] (pure read), [`Reader`] (reads that remember each file's last good
//! objects) and [`run`] (read, then watch).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use notify::{RecursiveMode, Watcher};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::SourceError;
use crate::metrics::{WatchEventLabels, metrics};
use crate::model::selector::LabelFilter;
use crate::model::{
    NamespaceInfo, NodeInfo, ObjectKey, PodInfo, ServiceImportInfo, ServiceInfo, SliceInfo, StatefulSetInfo,
};
use crate::reconcile::{
    Change, KIND_NAMESPACES, KIND_NODES, KIND_PODS, KIND_SERVICE_IMPORTS, KIND_SERVICES, KIND_SLICES,
    KIND_STATEFULSETS, SourceEvent,
};

/// One document that could not be used, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: document {document}: {reason}")]
pub struct ManifestError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line where the problem is (or where the document starts).
    pub line: usize,
    /// 1-based index of the document in the file.
    pub document: usize,
    /// What is wrong.
    pub reason: String,
}

/// Everything read from the manifests.
#[derive(Debug, Default, Clone)]
pub struct Loaded {
    /// Services.
    pub services: Vec<ServiceInfo>,
    /// Pods.
    pub pods: Vec<PodInfo>,
    /// EndpointSlices.
    pub slices: Vec<SliceInfo>,
    /// Namespaces.
    pub namespaces: Vec<NamespaceInfo>,
    /// StatefulSets.
    pub statefulsets: Vec<StatefulSetInfo>,
    /// Nodes (their topology zones).
    pub nodes: Vec<NodeInfo>,
    /// ServiceImports (multicluster).
    pub imports: Vec<ServiceImportInfo>,
    /// Documents that were skipped, and why.
    pub errors: Vec<ManifestError>,
    /// Objects a file held at its last read that this read lacks, while the file has a bad
    /// document: they stay as the reconciler holds them ([`Change::Kept`]).
    pub kept: Kept,
}

/// Keys of objects that stay as they are, by kind.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Kept {
    /// Services.
    pub services: Vec<ObjectKey>,
    /// Pods.
    pub pods: Vec<ObjectKey>,
    /// EndpointSlices.
    pub slices: Vec<ObjectKey>,
    /// Namespaces.
    pub namespaces: Vec<ObjectKey>,
    /// StatefulSets.
    pub statefulsets: Vec<ObjectKey>,
}

impl Kept {
    /// How many objects are kept.
    pub fn len(&self) -> usize {
        self.services.len() + self.pods.len() + self.slices.len() + self.namespaces.len() + self.statefulsets.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The keys of the objects one file held at its last read, one text per kind (`namespace/name`
/// lines): enough to keep its objects while it has a bad document, at a few octets per object
/// (the objects themselves are held once, by the reconciler).
#[derive(Debug, Default)]
struct FileKeys([Box<str>; 5]);

impl FileKeys {
    fn of(loaded: &Loaded) -> Self {
        fn text<'a>(keys: impl Iterator<Item = &'a ObjectKey>) -> Box<str> {
            let mut lines: Vec<String> = keys.map(|k| format!("{}/{}", k.namespace, k.name)).collect();
            lines.sort();
            lines.dedup();
            lines.join("\n").into_boxed_str()
        }
        let (l, k) = (loaded, &loaded.kept);
        Self([
            text(l.services.iter().map(|s| &s.key).chain(&k.services)),
            text(l.pods.iter().map(|p| &p.key).chain(&k.pods)),
            text(l.slices.iter().map(|s| &s.key).chain(&k.slices)),
            text(l.namespaces.iter().map(|n| &n.key).chain(&k.namespaces)),
            text(l.statefulsets.iter().map(|s| &s.key).chain(&k.statefulsets)),
        ])
    }
}

impl Loaded {
    fn extend(&mut self, other: Loaded) {
        self.services.extend(other.services);
        self.pods.extend(other.pods);
        self.slices.extend(other.slices);
        self.namespaces.extend(other.namespaces);
        self.statefulsets.extend(other.statefulsets);
        self.nodes.extend(other.nodes);
        self.imports.extend(other.imports);
        self.errors.extend(other.errors);
        self.kept.services.extend(other.kept.services);
        self.kept.pods.extend(other.kept.pods);
        self.kept.slices.extend(other.kept.slices);
        self.kept.namespaces.extend(other.kept.namespaces);
        self.kept.statefulsets.extend(other.kept.statefulsets);
    }

    /// Keeps the objects `last` names that this read lacks: what a file held at its last read
    /// stays while the file has a bad document.
    fn keep_missing_from(&mut self, last: &FileKeys) {
        fn missing(now: Vec<&ObjectKey>, last: &str) -> Vec<ObjectKey> {
            let now: HashSet<&ObjectKey> = now.into_iter().collect();
            last.lines()
                .filter_map(|l| l.split_once('/'))
                .map(|(ns, name)| ObjectKey::new(ns, name))
                .filter(|k| !now.contains(k))
                .collect()
        }
        let [services, pods, slices, namespaces, statefulsets] = &last.0;
        self.kept = Kept {
            services: missing(self.services.iter().map(|s| &s.key).collect(), services),
            pods: missing(self.pods.iter().map(|p| &p.key).collect(), pods),
            slices: missing(self.slices.iter().map(|s| &s.key).collect(), slices),
            namespaces: missing(self.namespaces.iter().map(|n| &n.key).collect(), namespaces),
            statefulsets: missing(self.statefulsets.iter().map(|s| &s.key).collect(), statefulsets),
        };
    }
}

/// The files under `path` (itself if it is a file), sorted; hidden files and folders (editor swap
/// files, `..data` links of a ConfigMap volume are followed through their target) are skipped.
fn files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let p = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Splits a YAML stream into documents at `---` lines, with each document's first line number
/// (1-based). Splitting ourselves lets one broken document be skipped without losing the rest.
fn documents(text: &str) -> Vec<(usize, String)> {
    // YAML 1.2 section 5.4: CR LF, CR and LF all break lines; count them as an editor does.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_separator = line.starts_with("---") && line[3..].trim().is_empty();
        if is_separator {
            docs.push((start, std::mem::take(&mut current)));
            start = i + 2;
        } else if line.trim_end() == "..." {
            // YAML document end marker.
            continue;
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    docs.push((start, current));
    docs
}

/// Reads every manifest under `path`, without memory of earlier reads.
pub fn load(path: &Path) -> Result<Loaded, SourceError> {
    Reader::default().read(path)
}

/// Reads the manifests again and again, remembering which objects each file held at its last
/// read, so that a file with a bad document keeps serving them.
#[derive(Debug, Default)]
pub struct Reader {
    last: BTreeMap<PathBuf, FileKeys>,
}

impl Reader {
    /// Reads every manifest under `path`. A file with a bad document also names, as kept, the
    /// objects it held at its last read that this read lacks; a file that is gone yields nothing.
    pub fn read(&mut self, path: &Path) -> Result<Loaded, SourceError> {
        let list = files(path).map_err(|e| SourceError::Manifests { path: path.to_owned(), reason: e.to_string() })?;
        let mut all = Loaded::default();
        let mut now = BTreeMap::new();
        for file in list {
            let mut read = load_file(&file);
            if !read.errors.is_empty()
                && let Some(last) = self.last.get(&file)
            {
                read.keep_missing_from(last);
            }
            now.insert(file, FileKeys::of(&read));
            all.extend(read);
        }
        self.last = now;
        Ok(all)
    }
}

/// Reads one file.
fn load_file(file: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            loaded.errors.push(ManifestError {
                file: file.to_owned(),
                line: 1,
                document: 1,
                reason: format!("cannot read: {e}"),
            });
            return loaded;
        }
    };
    for (n, (start, doc)) in documents(&text).into_iter().enumerate() {
        let err = |line: usize, reason: String| ManifestError { file: file.to_owned(), line, document: n + 1, reason };
        if doc.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
            continue; // an empty document
        }
        // YAML 1.2 booleans only (`true`/`false`): read untyped first, `namespace: y` must stay
        // the string it is to Kubernetes, not YAML 1.1's `true`.
        let options = serde_saphyr::options! { strict_booleans: true };
        let value: Value = match serde_saphyr::from_str_with_options(&doc, options) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map_or(start, |l| start + (l.line() as usize).max(1) - 1);
                let reason = e.to_string().lines().next().unwrap_or("").trim().to_owned();
                loaded.errors.push(err(line, format!("invalid YAML: {reason}")));
                continue;
            }
        };
        if let Err(reason) = add_object(&mut loaded, value) {
            loaded.errors.push(err(start, reason));
        }
    }
    loaded
}

/// Looks objects up in the manifests, reading them again (for explanations only).
#[derive(Debug, Clone)]
pub struct FileLookup {
    path: PathBuf,
}

impl FileLookup {
    /// A lookup in the file or folder `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The last document under the path (or item of a `List`) of that kind, namespace and name.
    pub fn find(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        fn matching(v: &Value, kind: &str, namespace: &str, name: &str, out: &mut Option<Value>) {
            let k = v.get("kind").and_then(Value::as_str).unwrap_or("");
            if k.ends_with("List") {
                for item in v.get("items").and_then(Value::as_array).into_iter().flatten() {
                    matching(item, kind, namespace, name, out);
                }
                return;
            }
            let meta = v.get("metadata");
            let n = meta.and_then(|m| m.get("name")).and_then(Value::as_str);
            let ns = meta.and_then(|m| m.get("namespace")).and_then(Value::as_str).unwrap_or("default");
            if k == kind && n == Some(name) && ns == namespace {
                *out = Some(v.clone());
            }
        }
        let mut found = None;
        for file in files(&self.path).ok()? {
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            for (_, doc) in documents(&text) {
                let options = serde_saphyr::options! { strict_booleans: true };
                if let Ok(v) = serde_saphyr::from_str_with_options::<Value>(&doc, options) {
                    matching(&v, kind, namespace, name, &mut found);
                }
            }
        }
        found
    }
}

impl super::Lookup for FileLookup {
    fn object<'a>(
        &'a self,
        kind: &'a str,
        namespace: &'a str,
        name: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Value>> + Send + 'a>> {
        let this = self.clone();
        let (kind, namespace, name) = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || this.find(&kind, &namespace, &name)).await.ok().flatten()
        })
    }
}

/// Adds one object (or every item of a `List`) to `loaded`. Kinds we do not serve are ignored.
fn add_object(loaded: &mut Loaded, value: Value) -> Result<(), String> {
    if value.is_null() {
        return Ok(()); // an empty document
    }
    let kind = value.get("kind").and_then(Value::as_str).ok_or("no `kind` field")?.to_owned();
    let mut errors = Vec::new();
    match kind.as_str() {
        "Service" => {
            let svc: Service = serde_json::from_value(value).map_err(|e| format!("bad Service: {e}"))?;
            loaded.services.push(ServiceInfo::from_k8s(&svc).map_err(|e| format!("bad Service: {e}"))?);
        }
        "Pod" => {
            let pod: Pod = serde_json::from_value(value).map_err(|e| format!("bad Pod: {e}"))?;
            loaded.pods.push(PodInfo::from_k8s(&pod).map_err(|e| format!("bad Pod: {e}"))?);
        }
        "EndpointSlice" => {
            let s: EndpointSlice = serde_json::from_value(value).map_err(|e| format!("bad EndpointSlice: {e}"))?;
            loaded.slices.push(SliceInfo::from_k8s(&s).map_err(|e| format!("bad EndpointSlice: {e}"))?);
        }
        "ServiceImport" => {
            loaded.imports.push(ServiceImportInfo::from_json(&value).map_err(|e| format!("bad ServiceImport: {e}"))?);
        }
        "Node" => {
            let n: k8s_openapi::api::core::v1::Node =
                serde_json::from_value(value).map_err(|e| format!("bad Node: {e}"))?;
            loaded.nodes.push(NodeInfo::from_k8s(&n).map_err(|e| format!("bad Node: {e}"))?);
        }
        "StatefulSet" => {
            let s: StatefulSet = serde_json::from_value(value).map_err(|e| format!("bad StatefulSet: {e}"))?;
            loaded.statefulsets.push(StatefulSetInfo::from_k8s(&s).map_err(|e| format!("bad StatefulSet: {e}"))?);
        }
        "Namespace" => {
            let n: Namespace = serde_json::from_value(value).map_err(|e| format!("bad Namespace: {e}"))?;
            loaded.namespaces.push(NamespaceInfo::from_k8s(&n).map_err(|e| format!("bad Namespace: {e}"))?);
        }
        k if k == "List" || k.ends_with("List") => {
            let items = value.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                if let Err(e) = add_object(loaded, item) {
                    errors.push(format!("item {i}: {e}"));
                }
            }
        }
        other => debug!(kind = other, "ignoring a kind that is not served"),
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

/// Loads `path`, applies the `labels` selector to Services, EndpointSlices and ServiceImports (the API server
/// would do it for a cluster), sends the result and logs bad documents.
async fn reload(
    path: &Path,
    reader: &Arc<Mutex<Reader>>,
    labels: Option<&LabelFilter>,
    tx: &mpsc::Sender<SourceEvent>,
) -> bool {
    let (path, shared) = (path.to_owned(), reader.clone());
    let read = move || shared.lock().unwrap_or_else(|e| e.into_inner()).read(&path);
    let loaded = match tokio::task::spawn_blocking(read).await {
        Ok(Ok(l)) => l,
        Ok(Err(error)) => {
            warn!(%error, "cannot read manifests; keeping the last good answers");
            return true;
        }
        Err(_) => return true,
    };
    for error in &loaded.errors {
        warn!(file = %error.file.display(), line = error.line, document = error.document, reason = %error.reason, "skipping manifest document");
    }
    metrics().manifest_errors.inc_by(loaded.errors.len() as u64);
    if !loaded.kept.is_empty() {
        warn!(objects = loaded.kept.len(), "keeping objects from the last read of files that now have a bad document");
    }
    info!(
        services = loaded.services.len(),
        pods = loaded.pods.len(),
        endpointslices = loaded.slices.len(),
        statefulsets = loaded.statefulsets.len(),
        skipped = loaded.errors.len(),
        kept = loaded.kept.len(),
        "manifests loaded"
    );
    let Loaded { mut services, pods, mut slices, mut namespaces, statefulsets, nodes, mut imports, kept, .. } = loaded;
    // A cluster has a Namespace for everything that lives in one; a folder of manifests seldom
    // spells them out. Every namespace an object lives in exists, without labels unless a
    // Namespace document gives them.
    let named: HashSet<Arc<str>> = namespaces.iter().map(|n| n.key.name.clone()).collect();
    let used: std::collections::BTreeSet<Arc<str>> = services
        .iter()
        .map(|s| &s.key)
        .chain(pods.iter().map(|p| &p.key))
        .chain(slices.iter().map(|s| &s.key))
        .chain(statefulsets.iter().map(|s| &s.key))
        .chain(kept.services.iter().chain(&kept.pods).chain(&kept.slices).chain(&kept.statefulsets))
        .map(|k| k.namespace.clone())
        .filter(|ns| !named.contains(ns))
        .collect();
    namespaces.extend(
        used.into_iter().map(|ns| NamespaceInfo { key: ObjectKey::new(ns.clone(), ns), labels: Default::default() }),
    );
    if let Some(f) = labels {
        services.retain(|s| f.matches(&s.labels));
        slices.retain(|s| f.matches(&s.labels));
        imports.retain(|s| f.matches(&s.labels));
    }
    let sent = send_list(tx, namespaces, kept.namespaces, SourceEvent::Namespace).await
        && send_list(tx, services, kept.services, SourceEvent::Service).await
        && send_list(tx, pods, kept.pods, SourceEvent::Pod).await
        && send_list(tx, slices, kept.slices, SourceEvent::Slice).await
        && send_list(tx, statefulsets, kept.statefulsets, SourceEvent::StatefulSet).await
        && send_list(tx, nodes, Vec::new(), SourceEvent::Node).await
        && send_list(tx, imports, Vec::new(), SourceEvent::ServiceImport).await;
    if !sent {
        return false;
    }
    for kind in
        [KIND_NAMESPACES, KIND_SERVICES, KIND_PODS, KIND_SLICES, KIND_STATEFULSETS, KIND_NODES, KIND_SERVICE_IMPORTS]
    {
        metrics().watch_events.get_or_create(&WatchEventLabels { kind, event: "list" }).inc();
    }
    true
}

/// Sends one kind's complete set: one [`Change::Reset`], or, when objects are kept, the list
/// framed as `ListBegin`, `Listed`..., `Kept`..., `ListEnd`. False when the receiver is gone.
async fn send_list<T>(
    tx: &mpsc::Sender<SourceEvent>,
    objects: Vec<T>,
    kept: Vec<ObjectKey>,
    wrap: fn(Change<T>) -> SourceEvent,
) -> bool {
    if kept.is_empty() {
        return tx.send(wrap(Change::Reset(objects))).await.is_ok();
    }
    let events = std::iter::once(Change::ListBegin)
        .chain(objects.into_iter().map(Change::Listed))
        .chain(kept.into_iter().map(Change::Kept))
        .chain(std::iter::once(Change::ListEnd));
    for change in events {
        if tx.send(wrap(change)).await.is_err() {
            return false;
        }
    }
    true
}

/// How long the folder must be quiet after a change before it is re-read (an editor's save is
/// often several events).
const SETTLE: Duration = Duration::from_millis(100);

/// Loads `path` and keeps watching it, re-sending everything after each change.
pub async fn run(path: PathBuf, labels: Option<LabelFilter>, tx: mpsc::Sender<SourceEvent>) -> Result<(), SourceError> {
    if !path.exists() {
        return Err(SourceError::Manifests { path, reason: "no such file or folder".into() });
    }
    let (change_tx, mut change_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && !ev.kind.is_access()
        {
            let _ = change_tx.send(());
        }
    })
    .map_err(|e| SourceError::Manifests { path: path.clone(), reason: e.to_string() })?;
    // Watch the folder (a single file's parent, so that editors' rename-on-save is seen).
    let watched = if path.is_dir() {
        path.clone()
    } else {
        path.parent().map(Path::to_path_buf).filter(|p| !p.as_os_str().is_empty()).unwrap_or_else(|| PathBuf::from("."))
    };
    watcher
        .watch(&watched, RecursiveMode::Recursive)
        .map_err(|e| SourceError::Manifests { path: watched.clone(), reason: e.to_string() })?;
    info!(path = %path.display(), "serving from manifests; watching for changes");
    let reader = Arc::new(Mutex::new(Reader::default()));
    if !reload(&path, &reader, labels.as_ref(), &tx).await {
        return Ok(());
    }
    while change_rx.recv().await.is_some() {
        // Let a burst of events settle, then read once.
        while let Ok(Some(())) = tokio::time::timeout(SETTLE, change_rx.recv()).await {}
        if !reload(&path, &reader, labels.as_ref(), &tx).await {
            return Ok(());
        }
    }
    drop(watcher);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_files_lists_and_bad_documents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: v1
kind: Service
metadata: {name: nginx}
spec: {clusterIP: None, selector: {app: nginx}}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, labels: {app: nginx}}
spec: {containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: List
items:
- kind: Pod
  metadata: {name: web-1, labels: {app: nginx}}
  status: {podIP: 10.0.0.2}
- kind: ConfigMap
  metadata: {name: ignored}
",
        )
        .unwrap();
        std::fs::write(dir.path().join(".swap.yaml"), "not: [valid").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let loaded = load(dir.path()).unwrap();
        assert_eq!(loaded.services.len(), 1);
        assert_eq!(loaded.pods.len(), 1, "web-1 from the List; web-0's document is broken");
        assert_eq!(&*loaded.pods[0].key.name, "web-1");
        assert_eq!(loaded.errors.len(), 1, "{:?}", loaded.errors);
        let e = &loaded.errors[0];
        assert_eq!(e.document, 2);
        assert!(e.file.ends_with("a.yaml"));
        assert!((6..=10).contains(&e.line), "line {} should point into document 2", e.line);
        assert!(e.to_string().contains("a.yaml:"), "{e}");
    }

    #[test]
    fn cr_and_crlf_line_breaks_split_documents_and_count_lines() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cr.yaml");
        let text = "kind: Service\rmetadata: {name: a}\rspec: {clusterIP: None}\r---\r\nkind: Pod\r\nmetadata: {name: [1]}\r\n";
        std::fs::write(&f, text).unwrap();
        let loaded = load(&f).unwrap();
        assert_eq!(loaded.services.len(), 1, "{:?}", loaded.errors);
        assert_eq!(loaded.errors.len(), 1);
        assert_eq!((loaded.errors[0].document, loaded.errors[0].line), (2, 5));
    }

    #[test]
    fn documents_without_kind_or_with_wrong_shape_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.yml");
        std::fs::write(&f, "metadata: {name: a}\n---\nkind: Pod\nmetadata: {name: [1]}\n---\n").unwrap();
        let loaded = load(&f).unwrap();
        assert_eq!(loaded.errors.len(), 2, "{:?}", loaded.errors);
        assert!(loaded.errors[0].reason.contains("kind"));
        assert_eq!(loaded.errors[1].line, 3);
    }

    #[test]
    fn a_file_with_a_bad_document_keeps_the_objects_of_its_last_read() {
        let dir = tempfile::tempdir().unwrap();
        let pod = |name: &str, ip: &str| {
            format!("kind: Pod\nmetadata: {{name: {name}, labels: {{app: web}}}}\nstatus: {{podIP: {ip}}}\n")
        };
        let f = dir.path().join("pods.yaml");
        let g = dir.path().join("other.yaml");
        std::fs::write(&f, [pod("web-0", "10.0.0.1"), pod("web-1", "10.0.0.2")].join("---\n")).unwrap();
        std::fs::write(&g, pod("db-0", "10.0.1.1")).unwrap();
        let mut reader = Reader::default();
        let names = |l: &Loaded| {
            let mut v: Vec<String> =
                l.pods.iter().map(|p| format!("{}={:?}", p.key.name, p.facts.ips.iter().next())).collect();
            v.sort();
            v
        };
        assert_eq!(reader.read(dir.path()).unwrap().pods.len(), 3);
        // web-0's document breaks and web-1 moves: web-1's new IP, web-0's last good record.
        let broken = pod("web-0", "10.0.0.1").replace("labels: {app: web}}", "labels: {app: web");
        std::fs::write(&f, [broken.clone(), pod("web-1", "10.0.0.9")].join("---\n")).unwrap();
        let l = reader.read(dir.path()).unwrap();
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.kept.pods, [ObjectKey::new("default", "web-0")], "web-0's last good record stays");
        assert_eq!(l.kept.len(), 1);
        assert_eq!(names(&l), ["db-0=Some(10.0.1.1)", "web-1=Some(10.0.0.9)"]);
        // Still broken at the next read: still kept. A stateless load has nothing to keep.
        assert_eq!(reader.read(dir.path()).unwrap().kept.len(), 1);
        assert!(load(dir.path()).unwrap().kept.is_empty());
        // Fixed: exactly what the file says.
        std::fs::write(&f, pod("web-1", "10.0.0.9")).unwrap();
        let l = reader.read(dir.path()).unwrap();
        assert_eq!((l.errors.len(), l.kept.len()), (0, 0));
        assert_eq!(names(&l), ["db-0=Some(10.0.1.1)", "web-1=Some(10.0.0.9)"]);
        // Broken, then deleted: its objects go.
        std::fs::write(&f, broken).unwrap();
        assert_eq!(reader.read(dir.path()).unwrap().kept.len(), 1);
        std::fs::remove_file(&f).unwrap();
        assert_eq!(names(&reader.read(dir.path()).unwrap()), ["db-0=Some(10.0.1.1)"]);
    }
}
