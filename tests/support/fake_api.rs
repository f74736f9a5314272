//! A fake Kubernetes API server for end-to-end tests.
//!
//! It speaks real HTTP/1.1 on a real loopback TCP socket and serves the kinds the DNS server
//! watches: `Pod` (`/api/v1/pods`), `Service` (`/api/v1/services`), `Namespace`
//! (`/api/v1/namespaces`), `EndpointSlice` (`/apis/discovery.k8s.io/v1/endpointslices`) and
//! `StatefulSet` (`/apis/apps/v1/statefulsets`), cluster-wide and namespaced
//! (`.../namespaces/{ns}/...`), with list paging, label and field selectors, and watches that
//! replay history from a resourceVersion. Its wire behaviour follows
//! `shared/kube-api-wire.md` (what kube 5's `watcher` sends and expects):
//!
//! - list: `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":..,"continue":..},
//!   "items":[..]}`; items omit `kind`/`apiVersion` as the real server does; every page carries
//!   the snapshot's resourceVersion; paging runs over a snapshot kept with the continue token;
//!   an expired token (after [`FakeApi::compact`]) gets HTTP 410 with a `Status` body.
//! - watch: HTTP 200, chunked, one JSON event per line, `Connection: close` so the connection
//!   ends with the stream; a resourceVersion older than the last compaction gets HTTP 200 and
//!   then one in-stream `ERROR` event with a 410 `Expired` `Status`; `""`/`"0"` starts with
//!   synthetic `ADDED` events; BOOKMARK objects carry `kind` and `apiVersion`.
//! - streaming lists (KEP-3157 WatchList): a watch with `sendInitialEvents=true` (which, as the
//!   real server checks, needs `allowWatchBookmarks=true` and `resourceVersionMatch=NotOlderThan`,
//!   else 422) sends the current objects as `ADDED` and then a BOOKMARK annotated
//!   `k8s.io/initial-events-end`; [`FakeApi::set_streaming_lists`] makes the server refuse it
//!   (422, as Kubernetes 1.27 to 1.33 with the `WatchList` gate off) or ignore it (no bookmark).
//!
//! Faults are injected per call: [`FakeApi::disconnect_watches`], [`FakeApi::set_partitioned`],
//! [`FakeApi::fail_requests`], [`FakeApi::compact`], [`FakeApi::shutdown`]; narrower ones with
//! [`FakeApi::fail_lists`], [`FakeApi::fail_watches`], [`FakeApi::fail_kind`] and
//! [`FakeApi::disconnect_watches_of`]; [`FakeApi::start_on`] restarts the API on the same
//! address with a different state.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use futures::task::AtomicWaker;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

/// The first resourceVersion handed out is `INITIAL_RV + 1`.
const INITIAL_RV: u64 = 100;
/// Watch length when the request names no `timeoutSeconds` (the real server picks 30-60 min).
const DEFAULT_WATCH_TIMEOUT_S: u64 = 1800;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// Handle to a running fake API server. Cheap to clone; every clone drives the same server.
///
/// The server stops (as with [`FakeApi::shutdown`]) when the last clone is dropped.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Inner>,
    _stop_on_drop: Arc<StopOnDrop>,
}

impl FakeApi {
    /// Serves `inner` on `listener` in a spawned tokio task.
    fn serve(inner: Arc<Inner>, listener: TcpListener) -> FakeApi {
        let app = Router::new()
            .fallback(handle)
            .with_state(inner.clone())
            .into_make_service_with_connect_info::<ConnHandle>();
        let fake_listener = FakeListener { listener, inner: Arc::downgrade(&inner) };
        let task = tokio::spawn(async move {
            let _ = axum::serve(fake_listener, app).await;
        });
        *lock(&inner.server_task) = Some(task);
        FakeApi { _stop_on_drop: Arc::new(StopOnDrop(inner.clone())), inner }
    }

    /// Binds 127.0.0.1:0 (loopback only) and serves in a spawned tokio task.
    ///
    /// Must be called inside a tokio runtime.
    pub async fn start() -> FakeApi {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("fake api: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake api: local_addr");
        let inner = Inner::new(addr, u64::from(addr.port()));
        Self::serve(inner, listener)
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The socket address the server listens on (127.0.0.1:PORT).
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Writes a kubeconfig into `dir` (file `kubeconfig`) whose cluster server is [`FakeApi::url`],
    /// with no authentication, one context and `current-context` set; returns its path.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: fake\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: fake\n  user: {{}}\n\
             contexts:\n\
             - name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             current-context: fake\n\
             preferences: {{}}\n",
            url = self.url()
        );
        std::fs::write(&path, text).expect("fake api: write kubeconfig");
        path
    }

    /// Creates or replaces an object given as JSON.
    ///
    /// The kind comes from `obj["kind"]`: `"Pod"`, `"Service"` or `"EndpointSlice"`. `apiVersion`
    /// is filled in when absent, `metadata.namespace` defaults to `"default"`. Bumps the global
    /// resourceVersion and stores it in `metadata.resourceVersion`; sets `metadata.uid` and
    /// `metadata.creationTimestamp` when absent (a replace keeps the stored object's). Emits
    /// `ADDED` (new key) or `MODIFIED` to open watches.
    ///
    /// # Panics
    /// On an unknown or missing kind, a mismatched `apiVersion`, or a missing `metadata.name`.
    pub fn apply(&self, obj: Value) {
        self.inner.apply(obj);
    }

    /// Deletes by kind/namespace/name (no-op if absent): a `DELETED` event carrying the last
    /// state with `metadata.resourceVersion` set to the deletion's resourceVersion.
    ///
    /// # Panics
    /// On an unknown kind.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        self.inner.delete(Kind::parse(kind), namespace, name);
    }

    /// Forgets event history: a watch resuming from any resourceVersion older than the current
    /// one gets HTTP 200 and one in-stream `ERROR` 410 (reason `Expired`), and every outstanding
    /// continue token becomes expired (HTTP 410 on the next page). Open watches are unaffected.
    pub fn compact(&self) {
        let mut st = self.inner.state();
        st.compacted_rv = st.rv;
        st.history.clear();
        st.snapshots.clear();
    }

    /// Ends every open watch stream now with a clean end of stream (as a server-side timeout or
    /// a load-balancer reset would); kube re-watches from its last resourceVersion. Streams
    /// frozen by a partition are left alone (they end when the partition ends).
    pub fn disconnect_watches(&self) {
        let mut st = self.inner.state();
        let ids: Vec<u64> =
            st.watches.iter().filter(|(_, w)| !w.frozen.load(Ordering::SeqCst)).map(|(id, _)| *id).collect();
        for id in ids {
            if let Some(w) = st.watches.remove(&id) {
                let _ = w.tx.send(WatchMsg::End);
            }
        }
    }

    /// Silent partition.
    ///
    /// While on, open watch streams stay open but deliver nothing (events still go into the
    /// history), and every new request gets no response at all: it is held until the partition
    /// ends and then its connection is dropped without a response. Turning it off also ends
    /// every watch stream that was open during the partition, by dropping its connection
    /// (the client sees a broken stream and re-watches from its last resourceVersion).
    pub fn set_partitioned(&self, on: bool) {
        let mut st = self.inner.state();
        if on && !st.partitioned {
            st.partitioned = true;
            for w in st.watches.values() {
                w.frozen.store(true, Ordering::SeqCst);
            }
        } else if !on && st.partitioned {
            st.partitioned = false;
            self.inner.partition_epoch.send_modify(|e| *e += 1);
            let frozen: Vec<u64> =
                st.watches.iter().filter(|(_, w)| w.frozen.load(Ordering::SeqCst)).map(|(id, _)| *id).collect();
            for id in frozen {
                if let Some(w) = st.watches.remove(&id) {
                    let _ = w.tx.send(WatchMsg::Abort);
                    if let Some(conn) = &w.conn {
                        conn.kill();
                    }
                }
            }
        }
    }

    /// While `Some(code)`, every request (list, watch, get) gets that HTTP status with a proper
    /// `Status` JSON body (500 `InternalError`, 403 `Forbidden`, ...). `None` restores normal
    /// service. Watch streams already open are not affected.
    ///
    /// Note: kube's client itself retries 429, 503 and 504 (up to 15 times, with backoff) before
    /// the caller sees an error.
    pub fn fail_requests(&self, status: Option<u16>) {
        self.inner.state().failing = status;
    }

    /// Sends a `BOOKMARK` with the current resourceVersion on every open watch that asked for
    /// bookmarks (`allowWatchBookmarks=true`, kube's default) and is not frozen by a partition.
    pub fn bookmark(&self) {
        let st = self.inner.state();
        for w in st.watches.values() {
            if w.bookmarks && !w.frozen.load(Ordering::SeqCst) {
                let _ = w.tx.send(WatchMsg::Line(bookmark_line(w.kind, st.rv, false)));
            }
        }
    }

    /// Number of currently open watch streams for a kind (`"Pod"`, `"Service"`,
    /// `"EndpointSlice"`), frozen ones included: lets a test wait until the client is watching.
    pub fn open_watches(&self, kind: &str) -> usize {
        let kind = Kind::parse(kind);
        self.inner.state().watches.values().filter(|w| w.kind == kind).count()
    }

    /// Number of list requests answered with HTTP 200 so far for a kind, every page counted (a
    /// relist shows up as an increase). Failed, held and expired-token requests do not count.
    pub fn list_count(&self, kind: &str) -> usize {
        let kind = Kind::parse(kind);
        self.inner.state().counters(kind).lists
    }

    /// Number of watch requests answered with HTTP 200 so far for a kind (including ones that
    /// were answered with an in-stream 410).
    pub fn watch_count(&self, kind: &str) -> usize {
        let kind = Kind::parse(kind);
        self.inner.state().counters(kind).watches
    }

    /// Number of streaming lists (watches with `sendInitialEvents=true`) answered with HTTP 200
    /// so far for a kind.
    pub fn stream_count(&self, kind: &str) -> usize {
        let kind = Kind::parse(kind);
        self.inner.state().counters(kind).streams
    }

    /// Requests received so far (every verb and outcome), and octets sent as list bodies and watch
    /// events: what the clients cost the API server.
    pub fn traffic(&self) -> (u64, u64) {
        (self.inner.requests.load(Ordering::Relaxed), self.inner.bytes_out.load(Ordering::Relaxed))
    }

    /// Sets how `sendInitialEvents=true` is treated from now on (see [`StreamingLists`]).
    pub fn set_streaming_lists(&self, mode: StreamingLists) {
        self.inner.state().streaming = mode;
    }

    /// Sets the page size cap of list responses (the client asks `limit=500`; the server then
    /// returns at most `n` items plus a continue token). `0` (the default) honours `limit`.
    pub fn set_max_page(&self, n: usize) {
        self.inner.state().max_page = n;
    }

    /// Stops the server: closes the listener and drops every connection (open watches and
    /// held requests included). The stored objects remain readable through this handle, but
    /// nothing is served any more.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Number of requests currently held (unanswered) by a partition: lets a test wait until a
    /// client is stuck on one.
    pub fn held_requests(&self) -> usize {
        self.inner.state().held
    }

    /// The current (latest) global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.state().rv
    }

    /// The stored object of a kind/namespace/name (as watch events carry it), if present.
    ///
    /// # Panics
    /// On an unknown kind.
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let kind = Kind::parse(kind);
        self.inner.state().objects(kind).get(&(namespace.to_string(), name.to_string())).cloned()
    }
}

impl FakeApi {
    /// Starts a fresh fake API server on `addr`, the address of an earlier one that was
    /// [`FakeApi::shutdown`] (it retries the bind for a few seconds while the old listener goes):
    /// the API server restarted, as a client that keeps its kubeconfig sees it.
    ///
    /// It already holds `objects` (applied as with [`FakeApi::apply`]) before it accepts the first
    /// connection, so no client can observe it half-filled. Its resourceVersion is at least
    /// `resource_version` and it has no history up to it: a restarted API server's watch cache
    /// starts at the store's current revision, so a client resuming a watch from an older
    /// version gets the in-stream 410 and relists. Pass something above the old server's
    /// [`FakeApi::resource_version`] to model that.
    ///
    /// Must be called inside a tokio runtime.
    pub async fn start_on(addr: SocketAddr, objects: Vec<Value>, resource_version: u64) -> FakeApi {
        let inner = Inner::new(addr, u64::from(addr.port()).rotate_left(17));
        for obj in objects {
            inner.apply(obj);
        }
        {
            let mut st = inner.state();
            st.rv = st.rv.max(resource_version);
            st.compacted_rv = st.rv;
            st.history.clear();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("fake api: bind {addr} again: {e}"),
            }
        };
        Self::serve(inner, listener)
    }

    /// While `Some(code)`, every list request (not watches, not gets) gets that HTTP status with a
    /// `Status` body: a relist fails (kube's `InitialListFailed`) while watches still start.
    /// `None` restores normal service.
    pub fn fail_lists(&self, status: Option<u16>) {
        self.inner.state().failing_lists = status;
    }

    /// While `Some(code)`, every watch request (not lists) gets that HTTP status with a `Status`
    /// body, as when RBAC grants `list` but not `watch`: a watch cannot (re)start while lists,
    /// and so relists, succeed. Watch streams already open are not affected. `None` restores
    /// normal service.
    pub fn fail_watches(&self, status: Option<u16>) {
        self.inner.state().failing_watches = status;
    }

    /// While `Some(code)`, every list and watch request for one kind (`"Pod"`, `"Service"`,
    /// `"EndpointSlice"`) gets that HTTP status; the other kinds are served normally. Watch
    /// streams already open are not affected. `None` restores normal service for that kind.
    pub fn fail_kind(&self, kind: &str, status: Option<u16>) {
        let kind = Kind::parse(kind);
        let mut st = self.inner.state();
        match status {
            Some(code) => st.failing_kinds.insert(kind, code),
            None => st.failing_kinds.remove(&kind),
        };
    }

    /// As [`FakeApi::disconnect_watches`], for the watches of one kind only.
    pub fn disconnect_watches_of(&self, kind: &str) {
        let kind = Kind::parse(kind);
        let mut st = self.inner.state();
        let ids: Vec<u64> = st
            .watches
            .iter()
            .filter(|(_, w)| w.kind == kind && !w.frozen.load(Ordering::SeqCst))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(w) = st.watches.remove(&id) {
                let _ = w.tx.send(WatchMsg::End);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Kinds
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Pod,
    Service,
    EndpointSlice,
    /// Cluster-scoped; stored under namespace "default" like the others, which nothing reads.
    Namespace,
    StatefulSet,
    /// Cluster-scoped, as Namespace.
    Node,
    /// The mcs-api CRD (`multicluster.x-k8s.io/v1alpha1`); `fail_kind("ServiceImport", Some(404))`
    /// is a cluster without the CRD (its discovery answers 404 too).
    ServiceImport,
}

impl Kind {
    fn from_name(s: &str) -> Option<Kind> {
        match s {
            "Pod" => Some(Kind::Pod),
            "Service" => Some(Kind::Service),
            "EndpointSlice" => Some(Kind::EndpointSlice),
            "Namespace" => Some(Kind::Namespace),
            "StatefulSet" => Some(Kind::StatefulSet),
            "Node" => Some(Kind::Node),
            "ServiceImport" => Some(Kind::ServiceImport),
            _ => None,
        }
    }

    fn parse(s: &str) -> Kind {
        Kind::from_name(s).unwrap_or_else(|| {
            panic!("fake api: unknown kind {s:?} (want Pod, Service, EndpointSlice, Namespace or StatefulSet)")
        })
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Namespace => "Namespace",
            Kind::StatefulSet => "StatefulSet",
            Kind::Node => "Node",
            Kind::ServiceImport => "ServiceImport",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Service => "services",
            Kind::EndpointSlice => "endpointslices",
            Kind::Namespace => "namespaces",
            Kind::StatefulSet => "statefulsets",
            Kind::Node => "nodes",
            Kind::ServiceImport => "serviceimports",
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::Service | Kind::Namespace | Kind::Node => "v1",
            Kind::EndpointSlice => "discovery.k8s.io/v1",
            Kind::StatefulSet => "apps/v1",
            Kind::ServiceImport => "multicluster.x-k8s.io/v1alpha1",
        }
    }

    fn group(self) -> &'static str {
        match self {
            Kind::Pod | Kind::Service | Kind::Namespace | Kind::Node => "",
            Kind::EndpointSlice => "discovery.k8s.io",
            Kind::StatefulSet => "apps",
            Kind::ServiceImport => "multicluster.x-k8s.io",
        }
    }

    const ALL: [Kind; 7] = [
        Kind::Pod,
        Kind::Service,
        Kind::EndpointSlice,
        Kind::Namespace,
        Kind::StatefulSet,
        Kind::Node,
        Kind::ServiceImport,
    ];

    fn version(self) -> &'static str {
        self.api_version().rsplit('/').next().unwrap_or("v1")
    }

    fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }

    fn from_group_plural(group: &str, plural: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.group() == group && k.plural() == plural)
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

type Key = (String, String);

struct HistEntry {
    rv: u64,
    kind: Kind,
    etype: &'static str,
    obj: Value,
    /// The previous state, for `MODIFIED` (selector transitions).
    prev: Option<Value>,
}

enum WatchMsg {
    Line(String),
    /// Clean end of stream.
    End,
    /// Broken stream: the body errors, the connection is dropped.
    Abort,
}

struct WatchReg {
    kind: Kind,
    filter: Filter,
    bookmarks: bool,
    frozen: Arc<AtomicBool>,
    tx: mpsc::UnboundedSender<WatchMsg>,
    conn: Option<Arc<ConnCtl>>,
}

struct Snapshot {
    kind: Kind,
    rv: u64,
    items: Arc<Vec<Value>>,
}

#[derive(Default, Clone, Copy)]
struct Counters {
    lists: usize,
    watches: usize,
    /// Watches with `sendInitialEvents=true` (streaming lists) answered with HTTP 200.
    streams: usize,
}

/// How the server treats `sendInitialEvents=true` (streaming lists).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum StreamingLists {
    /// Served: the state as `ADDED` events, then the `k8s.io/initial-events-end` BOOKMARK
    /// (Kubernetes 1.34 and later by default).
    #[default]
    Offered,
    /// HTTP 422 `Invalid`, as Kubernetes 1.27 to 1.33 answer while the `WatchList` feature gate
    /// is off (the default on 1.33).
    Refused,
    /// Ignored: the state as `ADDED` events for a watch from "0", and never the bookmark (a
    /// server or proxy that drops the parameter).
    Ignored,
}

struct ApiState {
    rv: u64,
    compacted_rv: u64,
    objects: HashMap<Kind, BTreeMap<Key, Value>>,
    history: Vec<HistEntry>,
    watches: BTreeMap<u64, WatchReg>,
    snapshots: HashMap<u64, Snapshot>,
    conns: HashMap<u64, Arc<ConnCtl>>,
    counters: HashMap<Kind, Counters>,
    next_id: u64,
    uid_seed: u64,
    partitioned: bool,
    held: usize,
    failing: Option<u16>,
    max_page: usize,
    stopped: bool,
    /// Injected status for list requests only (see [`FakeApi::fail_lists`]).
    failing_lists: Option<u16>,
    /// Injected status for watch requests only (see [`FakeApi::fail_watches`]).
    failing_watches: Option<u16>,
    /// Injected status per kind (see [`FakeApi::fail_kind`]).
    failing_kinds: HashMap<Kind, u16>,
    /// How `sendInitialEvents` is treated.
    streaming: StreamingLists,
}

impl ApiState {
    fn new(uid_seed: u64) -> ApiState {
        ApiState {
            rv: INITIAL_RV,
            compacted_rv: 0,
            objects: HashMap::new(),
            history: Vec::new(),
            watches: BTreeMap::new(),
            snapshots: HashMap::new(),
            conns: HashMap::new(),
            counters: HashMap::new(),
            next_id: 1,
            uid_seed,
            partitioned: false,
            held: 0,
            failing: None,
            max_page: 0,
            stopped: false,
            failing_lists: None,
            failing_watches: None,
            failing_kinds: HashMap::new(),
            streaming: StreamingLists::Offered,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn objects(&self, kind: Kind) -> &BTreeMap<Key, Value> {
        static EMPTY: BTreeMap<Key, Value> = BTreeMap::new();
        self.objects.get(&kind).unwrap_or(&EMPTY)
    }

    fn counters(&self, kind: Kind) -> Counters {
        self.counters.get(&kind).copied().unwrap_or_default()
    }

    fn new_uid(&mut self) -> String {
        let id = self.id();
        let a = splitmix64(self.uid_seed ^ id);
        let b = splitmix64(a);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            (b >> 48) & 0xfff,
            b & 0xffff_ffff_ffff
        )
    }

    /// Sends a history entry to every live watch it concerns, then records it.
    fn publish(&mut self, h: HistEntry) {
        for w in self.watches.values() {
            if w.kind == h.kind
                && !w.frozen.load(Ordering::SeqCst)
                && let Some(line) = w.filter.event_line(&h)
            {
                let _ = w.tx.send(WatchMsg::Line(line));
            }
        }
        self.history.push(h);
    }
}

struct Inner {
    addr: SocketAddr,
    state: Mutex<ApiState>,
    /// Bumped each time a partition ends (held requests wait for a change).
    partition_epoch: watch::Sender<u64>,
    /// Set once by `shutdown`.
    stopped: watch::Sender<bool>,
    server_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Requests received, and octets of list bodies and watch events sent ([`FakeApi::traffic`]).
    requests: AtomicU64,
    bytes_out: Arc<AtomicU64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// A fresh state for a server on `addr`; `salt` varies the seed of its object uids.
    fn new(addr: SocketAddr, salt: u64) -> Arc<Inner> {
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0) ^ salt;
        Arc::new(Inner {
            addr,
            state: Mutex::new(ApiState::new(seed)),
            partition_epoch: watch::channel(0u64).0,
            stopped: watch::channel(false).0,
            server_task: Mutex::new(None),
            requests: AtomicU64::new(0),
            bytes_out: Arc::new(AtomicU64::new(0)),
        })
    }

    fn state(&self) -> MutexGuard<'_, ApiState> {
        lock(&self.state)
    }

    fn apply(&self, mut obj: Value) {
        let kind_name = obj
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("fake api: apply: object has no \"kind\": {obj}"))
            .to_string();
        let kind = Kind::parse(&kind_name);
        match obj.get("apiVersion").and_then(Value::as_str) {
            None => obj["apiVersion"] = json!(kind.api_version()),
            Some(v) => assert_eq!(v, kind.api_version(), "fake api: apply: wrong apiVersion for {kind_name}"),
        }
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        let name = obj["metadata"]
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| panic!("fake api: apply: object has no metadata.name: {obj}"))
            .to_string();
        let namespace = match obj["metadata"].get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() => ns.to_string(),
            _ => {
                obj["metadata"]["namespace"] = json!("default");
                "default".to_string()
            }
        };
        let key = (namespace, name);

        let mut st = self.state();
        st.rv += 1;
        let rv = st.rv;
        let prev = st.objects(kind).get(&key).cloned();
        let prev_meta = |field: &str| prev.as_ref().and_then(|p| p["metadata"].get(field).cloned());
        if !has_text(&obj["metadata"], "uid") {
            obj["metadata"]["uid"] = prev_meta("uid").unwrap_or_else(|| json!(st.new_uid()));
        }
        if !has_text(&obj["metadata"], "creationTimestamp") {
            obj["metadata"]["creationTimestamp"] =
                prev_meta("creationTimestamp").unwrap_or_else(|| json!(now_rfc3339()));
        }
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());

        st.objects.entry(kind).or_default().insert(key, obj.clone());
        let etype = if prev.is_some() { "MODIFIED" } else { "ADDED" };
        st.publish(HistEntry { rv, kind, etype, obj, prev });
    }

    fn delete(&self, kind: Kind, namespace: &str, name: &str) {
        let mut st = self.state();
        let key = (namespace.to_string(), name.to_string());
        let Some(mut obj) = st.objects.get_mut(&kind).and_then(|m| m.remove(&key)) else {
            return;
        };
        st.rv += 1;
        let rv = st.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        st.publish(HistEntry { rv, kind, etype: "DELETED", obj, prev: None });
    }

    fn shutdown(&self) {
        let conns: Vec<Arc<ConnCtl>> = {
            let mut st = self.state();
            if st.stopped {
                return;
            }
            st.stopped = true;
            for (_, w) in std::mem::take(&mut st.watches) {
                let _ = w.tx.send(WatchMsg::Abort);
            }
            st.conns.drain().map(|(_, c)| c).collect()
        };
        if let Some(task) = lock(&self.server_task).take() {
            task.abort();
        }
        for c in conns {
            c.kill();
        }
        self.stopped.send_replace(true);
    }

    /// Waits until the partition that was current at `epoch` ends, or the server stops.
    async fn wait_partition_end(&self, epoch: u64) {
        let mut ep = self.partition_epoch.subscribe();
        let mut stop = self.stopped.subscribe();
        let partition_over = async move {
            loop {
                if *ep.borrow_and_update() != epoch {
                    return;
                }
                if ep.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        let stopped = async move {
            loop {
                if *stop.borrow_and_update() {
                    return;
                }
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = partition_over => {}
            () = stopped => {}
        }
    }

    fn list(&self, kind: Kind, filter: &Filter, q: &HashMap<String, String>) -> Response {
        let mut st = self.state();
        let limit = q.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|&l| l > 0);
        let cap = match (limit, st.max_page) {
            (Some(l), 0) => Some(l),
            (Some(l), m) => Some(l.min(m)),
            (None, 0) => None,
            (None, m) => Some(m),
        };
        let token = q.get("continue").filter(|t| !t.is_empty());
        let (snap_id, items, rv, offset) = match token {
            Some(token) => {
                let Some((id, offset)) = parse_continue(token) else {
                    return status_response(400, "BadRequest", "invalid continue token");
                };
                let Some(snap) = st.snapshots.get(&id) else {
                    return status_response(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent \
                         list result. You can start a new list without the continue parameter.",
                    );
                };
                if snap.kind != kind {
                    return status_response(400, "BadRequest", "continue token of another list");
                }
                (Some(id), snap.items.clone(), snap.rv, offset)
            }
            None => {
                let items: Vec<Value> = st
                    .objects(kind)
                    .values()
                    .filter(|o| filter.matches(o))
                    .map(|o| {
                        let mut o = o.clone();
                        if let Some(m) = o.as_object_mut() {
                            m.remove("kind");
                            m.remove("apiVersion");
                        }
                        o
                    })
                    .collect();
                (None, Arc::new(items), st.rv, 0)
            }
        };
        let len = items.len();
        let offset = offset.min(len);
        let end = cap.map_or(len, |c| offset.saturating_add(c).min(len));
        let page: Vec<Value> = items[offset..end].to_vec();
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if end < len {
            let id = match snap_id {
                Some(id) => id,
                None => {
                    let id = st.id();
                    st.snapshots.insert(id, Snapshot { kind, rv, items });
                    id
                }
            };
            metadata["continue"] = json!(format!("c{id}-{end}"));
            metadata["remainingItemCount"] = json!(len - end);
        } else if let Some(id) = snap_id {
            st.snapshots.remove(&id);
        }
        st.counters.entry(kind).or_default().lists += 1;
        drop(st);
        let body = if filter.meta_only {
            json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
                "items": page.iter().map(partial).collect::<Vec<_>>(),
            })
        } else {
            json!({
                "kind": format!("{}List", kind.name()),
                "apiVersion": kind.api_version(),
                "metadata": metadata,
                "items": page,
            })
        };
        let bytes = serde_json::to_vec(&body).expect("serialise JSON");
        self.bytes_out.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let mut resp = Response::new(Body::from(bytes));
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        resp
    }

    fn get_one(&self, kind: Kind, namespace: &str, name: &str) -> Response {
        let st = self.state();
        match st.objects(kind).get(&(namespace.to_string(), name.to_string())) {
            Some(obj) => json_response(StatusCode::OK, obj),
            None => status_response(404, "NotFound", &format!("{} \"{name}\" not found", kind.plural())),
        }
    }

    fn watch(
        self: &Arc<Self>,
        kind: Kind,
        filter: Filter,
        q: &HashMap<String, String>,
        conn: Option<Arc<ConnCtl>>,
    ) -> Response {
        let rv_param = q.get("resourceVersion").map_or("", String::as_str);
        let bookmarks = q_bool(q, "allowWatchBookmarks");
        let send_initial = q_bool(q, "sendInitialEvents");
        let timeout = q
            .get("timeoutSeconds")
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|&t| t > 0)
            .unwrap_or(DEFAULT_WATCH_TIMEOUT_S);
        let from = if rv_param.is_empty() || rv_param == "0" {
            None
        } else {
            match rv_param.parse::<u64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    return status_response(400, "BadRequest", &format!("invalid resource version: {rv_param:?}"));
                }
            }
        };

        let (tx, rx) = mpsc::unbounded_channel();
        let mut st = self.state();
        let send_initial = send_initial && st.streaming != StreamingLists::Ignored;
        if send_initial {
            // The real server's checks (apimachinery `ValidateListOptions`).
            let forbidden = if st.streaming == StreamingLists::Refused {
                Some(
                    "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled",
                )
            } else if q.get("resourceVersionMatch").map(String::as_str) != Some("NotOlderThan") {
                Some(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            } else if !bookmarks {
                Some(
                    "allowWatchBookmarks: Required value: sendInitialEvents requires setting allowWatchBookmarks to true",
                )
            } else {
                None
            };
            if let Some(why) = forbidden {
                drop(st);
                return status_response(422, "Invalid", &format!("ListOptions.meta.k8s.io \"\" is invalid: {why}"));
            }
            st.counters.entry(kind).or_default().streams += 1;
        }
        st.counters.entry(kind).or_default().watches += 1;
        // A streaming list sends the state (at a version not older than the one asked), never
        // history.
        match if send_initial { None } else { from } {
            Some(v) if v < st.compacted_rv => {
                let status =
                    status_json(410, "Expired", &format!("too old resource version: {v} ({})", st.compacted_rv));
                drop(st);
                let line = event_line("ERROR", &status);
                let body = Body::from_stream(futures::stream::once(async move { Ok::<String, io::Error>(line) }));
                return watch_response(body);
            }
            Some(v) => {
                for h in st.history.iter().filter(|h| h.kind == kind && h.rv > v) {
                    if let Some(line) = filter.event_line(h) {
                        let _ = tx.send(WatchMsg::Line(line));
                    }
                }
            }
            None => {
                for obj in st.objects(kind).values().filter(|o| filter.matches(o)) {
                    let _ = tx.send(WatchMsg::Line(filter.line("ADDED", obj)));
                }
                if send_initial && bookmarks {
                    let _ = tx.send(WatchMsg::Line(bookmark_line(kind, st.rv, true)));
                }
            }
        }
        let id = st.id();
        let frozen = Arc::new(AtomicBool::new(false));
        st.watches.insert(id, WatchReg { kind, filter, bookmarks, frozen: frozen.clone(), tx, conn });
        drop(st);

        let guard = WatchGuard { inner: Arc::downgrade(self), id };
        let bytes_out = self.bytes_out.clone();
        let stream = async_stream::stream! {
            let _guard = guard;
            let mut rx = rx;
            let deadline = tokio::time::sleep(Duration::from_secs(timeout));
            tokio::pin!(deadline);
            let mut timer_live = true;
            loop {
                let step = tokio::select! {
                    m = rx.recv() => Step::Msg(m),
                    () = &mut deadline, if timer_live => Step::Timeout,
                };
                match step {
                    Step::Msg(Some(WatchMsg::Line(line))) => {
                        bytes_out.fetch_add(line.len() as u64, Ordering::Relaxed);
                        yield Ok::<String, io::Error>(line)
                    }
                    Step::Msg(Some(WatchMsg::Abort)) => {
                        yield Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "fake api: watch aborted",
                        ));
                        break;
                    }
                    Step::Msg(Some(WatchMsg::End) | None) => break,
                    // A partition keeps the stream silent past its timeout; it is aborted
                    // when the partition ends.
                    Step::Timeout if frozen.load(Ordering::SeqCst) => timer_live = false,
                    Step::Timeout => break,
                }
            }
        };
        watch_response(Body::from_stream(stream))
    }
}

enum Step {
    Msg(Option<WatchMsg>),
    Timeout,
}

/// Removes a watch from the registry when its body stream is dropped.
struct WatchGuard {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.state().watches.remove(&self.id);
        }
    }
}

/// Counts a request held by a partition while it lives.
struct HeldGuard(Arc<Inner>);

impl Drop for HeldGuard {
    fn drop(&mut self) {
        let mut st = self.0.state();
        st.held = st.held.saturating_sub(1);
    }
}

/// Stops the server when the last `FakeApi` handle goes away.
struct StopOnDrop(Arc<Inner>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP handling
// ---------------------------------------------------------------------------------------------

enum Gate {
    Hold(u64),
    Fail(u16),
    Pass,
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    inner.requests.fetch_add(1, Ordering::Relaxed);
    let conn = req.extensions().get::<ConnectInfo<ConnHandle>>().map(|c| c.0.0.clone());
    let gate = {
        let mut st = inner.state();
        if st.partitioned {
            st.held += 1;
            Gate::Hold(*inner.partition_epoch.borrow())
        } else if let Some(code) = st.failing {
            Gate::Fail(code)
        } else {
            Gate::Pass
        }
    };
    match gate {
        Gate::Hold(epoch) => {
            let _held = HeldGuard(inner.clone());
            inner.wait_partition_end(epoch).await;
            // Drop the connection without a response: the kill makes hyper's write fail.
            if let Some(conn) = conn {
                conn.kill();
            }
            return status_response(503, "ServiceUnavailable", "partitioned");
        }
        Gate::Fail(code) => {
            return status_response(code, reason_for(code), &format!("fake api: injected failure (HTTP {code})"));
        }
        Gate::Pass => {}
    }

    if req.method() != Method::GET {
        return status_response(405, "MethodNotAllowed", "fake api: only GET (list, watch, get) is served");
    }
    let path = req.uri().path();
    let q = parse_query(req.uri().query().unwrap_or(""));
    if path == "/version" {
        return json_response(
            StatusCode::OK,
            &json!({
                "major": "1", "minor": "33", "gitVersion": "v1.33.0-fake",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z",
                "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64",
            }),
        );
    }
    if let Some(body) = discovery(path, &inner) {
        return body;
    }
    let Some(route) = parse_path(path) else {
        return status_response(404, "NotFound", &format!("the server could not find the requested resource ({path})"));
    };
    if let Some(name) = &route.name {
        let ns = route.namespace.as_deref().unwrap_or("");
        return inner.get_one(route.kind, ns, name);
    }
    let mut filter = match Filter::new(
        route.namespace.clone(),
        q.get("labelSelector").map_or("", String::as_str),
        q.get("fieldSelector").map_or("", String::as_str),
    ) {
        Ok(f) => f,
        Err(msg) => return status_response(400, "BadRequest", &msg),
    };
    filter.meta_only = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("as=PartialObjectMetadata"));
    let is_watch = route.watch || q_bool(&q, "watch");
    let injected = {
        let st = inner.state();
        st.failing_kinds.get(&route.kind).copied().or(if is_watch { st.failing_watches } else { st.failing_lists })
    };
    if let Some(code) = injected {
        return status_response(code, reason_for(code), &format!("fake api: injected failure (HTTP {code})"));
    }
    if is_watch { inner.watch(route.kind, filter, &q, conn) } else { inner.list(route.kind, &filter, &q) }
}

/// API discovery, as kube's `discovery` module reads it: `/api`, `/apis` (the groups) and
/// `/api/v1`, `/apis/<group>/<version>` (the resources). A kind failing with 404
/// ([`FakeApi::fail_kind`]) is not installed: its group-version answers 404.
fn discovery(path: &str, inner: &Inner) -> Option<Response> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let missing = |k: Kind| inner.state().failing_kinds.get(&k) == Some(&404);
    let resources = |group: &str, version: &str| -> Vec<Value> {
        Kind::ALL
            .into_iter()
            .filter(|k| k.group() == group && k.version() == version && !missing(*k))
            .map(|k| {
                json!({"name": k.plural(), "singularName": k.name().to_ascii_lowercase(), "namespaced": k.namespaced(),
                "kind": k.name(), "verbs": ["get", "list", "watch"]})
            })
            .collect()
    };
    let list = |group_version: String, resources: Vec<Value>| {
        json_response(
            StatusCode::OK,
            &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
        )
    };
    match segs.as_slice() {
        ["api"] => Some(json_response(StatusCode::OK, &json!({"kind": "APIVersions", "versions": ["v1"]}))),
        ["api", "v1"] => Some(list("v1".into(), resources("", "v1"))),
        ["apis"] => {
            let mut groups: Vec<(&str, &str)> = Kind::ALL
                .into_iter()
                .filter(|k| !k.group().is_empty() && !missing(*k))
                .map(|k| (k.group(), k.version()))
                .collect();
            groups.sort();
            groups.dedup();
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(g, v)| {
                    let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                    json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                })
                .collect();
            Some(json_response(StatusCode::OK, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})))
        }
        ["apis", group, version] => {
            let found = resources(group, version);
            if found.is_empty() {
                Some(status_response(
                    404,
                    "NotFound",
                    &format!("the server could not find the requested resource ({path})"),
                ))
            } else {
                Some(list(format!("{group}/{version}"), found))
            }
        }
        _ => None,
    }
}

struct Route {
    kind: Kind,
    namespace: Option<String>,
    name: Option<String>,
    watch: bool,
}

fn parse_path(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let (namespace, plural, name) = match rest {
        [plural] => (None, *plural, None),
        ["namespaces", ns, plural] => (Some(ns.to_string()), *plural, None),
        ["namespaces", ns, plural, name] => (Some(ns.to_string()), *plural, Some(name.to_string())),
        _ => return None,
    };
    let kind = Kind::from_group_plural(group, plural).filter(|k| k.version() == version)?;
    Some(Route { kind, namespace, name, watch })
}

fn q_bool(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| v == "true" || v == "1")
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_continue(token: &str) -> Option<(u64, usize)> {
    let (id, offset) = token.strip_prefix('c')?.split_once('-')?;
    Some((id.parse().ok()?, offset.parse().ok()?))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(serde_json::to_vec(body).expect("serialise JSON")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn watch_response(body: Body) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

fn status_json(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

fn status_response(code: u16, reason: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &status_json(status.as_u16(), reason, message))
}

fn event_line(etype: &str, obj: &Value) -> String {
    let mut line = serde_json::to_string(&json!({ "type": etype, "object": obj })).expect("serialise JSON");
    line.push('\n');
    line
}

fn bookmark_line(kind: Kind, rv: u64, initial_events_end: bool) -> String {
    let mut metadata = json!({ "resourceVersion": rv.to_string() });
    if initial_events_end {
        metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    event_line("BOOKMARK", &json!({ "kind": kind.name(), "apiVersion": kind.api_version(), "metadata": metadata }))
}

// ---------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------

enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

struct FieldReq {
    path: String,
    value: String,
    negate: bool,
}

struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
    /// The client asked for metadata only (`Accept: application/json;as=PartialObjectMetadata...`):
    /// objects are sent as `meta.k8s.io/v1` `PartialObjectMetadata`, lists as
    /// `PartialObjectMetadataList`, as the real API server does.
    meta_only: bool,
}

/// An object as a metadata-only request gets it.
fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

fn parse_set(s: &str) -> Result<Vec<String>, String> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| format!("invalid label selector set: {s:?}"))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

impl Filter {
    fn new(namespace: Option<String>, labels: &str, fields: &str) -> Result<Filter, String> {
        let mut lr = Vec::new();
        for part in split_top(labels) {
            let req = if let Some(k) = part.strip_prefix('!') {
                LabelReq::NotExists(k.trim().to_string())
            } else if let Some((k, set)) = part.split_once(" notin ") {
                LabelReq::NotIn(k.trim().to_string(), parse_set(set)?)
            } else if let Some((k, set)) = part.split_once(" in ") {
                LabelReq::In(k.trim().to_string(), parse_set(set)?)
            } else if let Some((k, v)) = part.split_once("!=") {
                LabelReq::NotEq(k.trim().to_string(), v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
            } else if part.contains(|c: char| c.is_whitespace() || "<>()".contains(c)) {
                return Err(format!("unsupported label selector: {part:?}"));
            } else {
                LabelReq::Exists(part.to_string())
            };
            lr.push(req);
        }
        let mut fr = Vec::new();
        for part in split_top(fields) {
            let (path, value, negate) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, v, false)
            } else {
                return Err(format!("invalid field selector: {part:?}"));
            };
            fr.push(FieldReq { path: path.trim().to_string(), value: value.trim().to_string(), negate });
        }
        Ok(Filter { namespace, labels: lr, fields: fr, meta_only: false })
    }

    fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        if let Some(ns) = &self.namespace
            && meta.get("namespace").and_then(Value::as_str) != Some(ns.as_str())
        {
            return false;
        }
        let label = |k: &str| meta.get("labels").and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, set) => label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            LabelReq::NotIn(k, set) => !label(k).is_some_and(|l| set.iter().any(|v| v == l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|f| {
                let mut v = obj;
                for seg in f.path.split('.') {
                    v = v.get(seg).unwrap_or(&Value::Null);
                }
                let actual = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (actual == f.value) != f.negate
            })
    }

    /// The line a watch with this filter gets for a history entry, if any. A modification that
    /// moves an object into (out of) the selection shows up as ADDED (DELETED), as on a real
    /// API server.
    fn event_line(&self, h: &HistEntry) -> Option<String> {
        let now = self.matches(&h.obj);
        let etype = match h.etype {
            "MODIFIED" => {
                let before = h.prev.as_ref().is_some_and(|p| self.matches(p));
                match (before, now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            other if now => other,
            _ => return None,
        };
        Some(self.line(etype, &h.obj))
    }

    /// A watch event line for `obj`, as this request wants objects.
    fn line(&self, etype: &str, obj: &Value) -> String {
        if self.meta_only { event_line(etype, &partial(obj)) } else { event_line(etype, obj) }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections that can be dropped from outside
// ---------------------------------------------------------------------------------------------

/// Per-connection kill switch. Once killed, every read and write on the connection fails, so
/// hyper drops it (the client sees the connection close, without a response if none was sent).
struct ConnCtl {
    id: u64,
    killed: AtomicBool,
    read_waker: AtomicWaker,
    write_waker: AtomicWaker,
}

impl ConnCtl {
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.read_waker.wake();
        self.write_waker.wake();
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct ConnHandle(Arc<ConnCtl>);

impl Connected<IncomingStream<'_, FakeListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, FakeListener>) -> Self {
        ConnHandle(stream.io().ctl.clone())
    }
}

struct FakeListener {
    listener: TcpListener,
    inner: Weak<Inner>,
}

impl Listener for FakeListener {
    type Io = KillableIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (KillableIo, SocketAddr) {
        loop {
            let (stream, addr) = match self.listener.accept().await {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Some(inner) = self.inner.upgrade() else {
                continue;
            };
            let ctl = {
                let mut st = inner.state();
                if st.stopped {
                    continue;
                }
                let id = st.id();
                let ctl = Arc::new(ConnCtl {
                    id,
                    killed: AtomicBool::new(false),
                    read_waker: AtomicWaker::new(),
                    write_waker: AtomicWaker::new(),
                });
                st.conns.insert(id, ctl.clone());
                ctl
            };
            let io = KillableIo { stream, ctl, inner: self.inner.clone() };
            return (io, addr);
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

struct KillableIo {
    stream: TcpStream,
    ctl: Arc<ConnCtl>,
    inner: Weak<Inner>,
}

fn killed_err() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "fake api: connection dropped")
}

impl KillableIo {
    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> Result<(), io::Error> {
        if self.ctl.is_killed() {
            return Err(killed_err());
        }
        waker.register(cx.waker());
        if self.ctl.is_killed() {
            return Err(killed_err());
        }
        Ok(())
    }
}

impl Drop for KillableIo {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.state().conns.remove(&self.ctl.id);
        }
    }
}

impl AsyncRead for KillableIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(&this.ctl.read_waker, cx)?;
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(&this.ctl.write_waker, cx)?;
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check(&this.ctl.write_waker, cx)?;
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(&this.ctl.write_waker, cx)?;
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check(&this.ctl.write_waker, cx)?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// Whether `v[field]` is a non-empty string.
fn has_text(v: &Value, field: &str) -> bool {
    v.get(field).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, sod) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}
