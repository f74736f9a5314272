//! The cluster add-on in deploy/ agrees with the binary it runs: the Deployment's arguments are
//! flags the binary has, the config file it mounts is one the binary starts with, its probes are
//! paths the binary answers 200 on, and the ports of the config, the container, the Service and
//! the optional NetworkPolicy line up. Also the locked-down pod and read-only RBAC the README
//! promises. Plain YAML parsing: no kustomize or cluster needed (`.ci/manifests` renders and
//! validates the kustomization itself).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::server::{ServerProcess, binary};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every YAML document of `dir/*.yaml`, with the file it came from.
fn documents_in(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let options = serde_saphyr::options! { strict_booleans: true };
        let values: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, options)
            .unwrap_or_else(|e| panic!("{name}: not YAML: {e}"));
        for value in values {
            if !value.is_null() {
                docs.push((name.clone(), value));
            }
        }
    }
    docs
}

/// The manifests of deploy/ (the kustomize base).
struct Deploy {
    docs: Vec<(String, Value)>,
}

impl Deploy {
    fn load() -> Deploy {
        Deploy { docs: documents_in(&deploy()) }
    }

    /// The one object of `kind` (panics if there is none or several).
    fn one(&self, kind: &str) -> &Value {
        let all: Vec<&Value> = self.docs.iter().map(|(_, d)| d).filter(|d| d["kind"] == kind).collect();
        assert_eq!(all.len(), 1, "exactly one {kind} in deploy/*.yaml");
        all[0]
    }

    fn pod_spec(&self) -> &Value {
        &self.one("Deployment")["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let containers = self.pod_spec()["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        &containers[0]
    }

    /// The container's ports: name -> (number, protocol).
    fn container_ports(&self) -> BTreeMap<String, (u64, String)> {
        seq(&self.container()["ports"])
            .iter()
            .map(|p| {
                let protocol = p["protocol"].as_str().unwrap_or("TCP").to_owned();
                (text(&p["name"]).to_owned(), (p["containerPort"].as_u64().unwrap(), protocol))
            })
            .collect()
    }

    /// A probe's port, named or numbered, as a number.
    fn port_number(&self, port: &Value) -> u64 {
        match port {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(name) => {
                self.container_ports().get(name).unwrap_or_else(|| panic!("no container port named {name}")).0
            }
            other => panic!("bad port {other:?}"),
        }
    }
}

fn seq(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("expected a list, got {v:?}"))
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("expected a string, got {v:?}"))
}

fn strings(v: &Value) -> Vec<String> {
    seq(v).iter().map(|s| text(s).to_owned()).collect()
}

/// deploy/headless-dns.toml, parsed.
fn config() -> toml::Table {
    let text = std::fs::read_to_string(deploy().join("headless-dns.toml")).unwrap();
    text.parse().expect("deploy/headless-dns.toml is TOML")
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

/// `--help` lists `flag` itself (not only a longer flag it is a prefix of).
fn has_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let next = help[at + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// `matchLabels` are all among `labels`.
fn selects(match_labels: &Value, labels: &Value) -> bool {
    let (Some(want), Some(have)) = (match_labels.as_object(), labels.as_object()) else { return false };
    !want.is_empty() && want.iter().all(|(k, v)| have.get(k) == Some(v))
}

#[test]
fn the_deployment_runs_the_binary_with_flags_it_has_and_the_mounted_config_file() {
    let d = Deploy::load();
    let args = strings(&d.container()["args"]);
    assert_eq!(args.len(), 2, "args: --config FILE, everything else in the file: {args:?}");
    assert_eq!(args[0], "--config");
    let config_path = Path::new(&args[1]);

    // Every flag the Deployment passes, and every key of the config file (keys are spelt like
    // flags), is one the binary has.
    let help = Command::new(binary()).arg("--help").stdin(Stdio::null()).output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(has_flag(&help, flag), "--help has no {flag}:\n{help}");
    }
    for key in config().keys() {
        assert!(has_flag(&help, &format!("--{key}")), "config key `{key}` is not a flag of the binary:\n{help}");
    }

    // The file is where the config volume is mounted, and that volume is the ConfigMap the
    // kustomization generates from deploy/<file>.
    let mount = seq(&d.container()["volumeMounts"])
        .iter()
        .find(|m| Path::new(text(&m["mountPath"])) == config_path.parent().unwrap())
        .unwrap_or_else(|| panic!("no volume mounted at {}", config_path.parent().unwrap().display()));
    let volume = seq(&d.pod_spec()["volumes"]).iter().find(|v| v["name"] == mount["name"]).expect("the mounted volume");
    let kustomization = d.one("Kustomization");
    let generator = seq(&kustomization["configMapGenerator"])
        .iter()
        .find(|g| g["name"] == volume["configMap"]["name"])
        .expect("the volume's ConfigMap comes from the configMapGenerator");
    let file_name = config_path.file_name().unwrap().to_str().unwrap();
    assert!(strings(&generator["files"]).iter().any(|f| f == file_name), "the generator includes {file_name}");

    // The kustomization lists every manifest of deploy/ (none forgotten, none missing).
    let listed: BTreeSet<String> = strings(&kustomization["resources"]).into_iter().collect();
    let present: BTreeSet<String> =
        d.docs.iter().map(|(f, _)| f.clone()).filter(|f| f != "kustomization.yaml").collect();
    assert_eq!(listed, present, "kustomization.yaml resources vs deploy/*.yaml");

    // The binary starts with exactly that file (listeners moved to free loopback ports, records
    // from an empty folder instead of a cluster) and answers the probes' paths with 200.
    let tmp = tempfile::tempdir().unwrap();
    let copied = tmp.path().join(file_name);
    std::fs::copy(deploy().join(file_name), &copied).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let s =
        ServerProcess::start(&["--config", copied.to_str().unwrap(), "--manifests", empty.path().to_str().unwrap()]);
    s.wait_for_log("first full sync complete", Duration::from_secs(20));
    // The Service's `metrics` port leads to the same HTTP listener, which serves /metrics.
    let (code, body) = s.http_get("/metrics");
    assert_eq!(code, 200, "/metrics: {body}");
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &d.container()[probe]["httpGet"];
        let path = text(&get["path"]);
        let (code, body) = s.http_get(path);
        assert_eq!(code, 200, "{probe} {path}: {body}");
        assert_eq!(
            d.port_number(&get["port"]),
            port_of(config()["http-listen"].as_str().unwrap()),
            "{probe} probes the config's http-listen port"
        );
    }
}

#[test]
fn config_container_service_and_network_policy_ports_line_up() {
    let d = Deploy::load();
    let cfg = config();
    let ports = d.container_ports();
    let listen: Vec<&str> = cfg["listen"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(listen, ["0.0.0.0:5353"], "every interface, unprivileged port");
    let dns_port = port_of(listen[0]);
    let http_port = port_of(cfg["http-listen"].as_str().unwrap());
    assert_eq!(cfg["http-listen"].as_str(), Some("0.0.0.0:8080"));

    // The container declares DNS over both UDP and TCP on the listen port, and the HTTP port.
    let by_proto: BTreeSet<(u64, &str)> = ports.values().map(|(n, p)| (*n, p.as_str())).collect();
    assert!(by_proto.contains(&(dns_port, "UDP")) && by_proto.contains(&(dns_port, "TCP")), "{ports:?}");
    assert!(by_proto.contains(&(http_port, "TCP")), "{ports:?}");

    // The Service: 53 over UDP and TCP to the DNS port with the same protocol, metrics to HTTP.
    let svc = d.one("Service");
    assert!(selects(&svc["spec"]["selector"], &d.one("Deployment")["spec"]["template"]["metadata"]["labels"]));
    let svc_ports = seq(&svc["spec"]["ports"]);
    for proto in ["UDP", "TCP"] {
        let p = svc_ports
            .iter()
            .find(|p| p["port"].as_u64() == Some(53) && p["protocol"].as_str().unwrap_or("TCP") == proto)
            .unwrap_or_else(|| panic!("Service port 53/{proto}"));
        let target = text(&p["targetPort"]);
        assert_eq!(ports[target], (dns_port, proto.to_owned()), "53/{proto} -> {target}");
    }
    let metrics = svc_ports.iter().find(|p| p["name"] == "metrics").expect("a metrics port");
    assert_eq!(metrics["port"].as_u64(), Some(http_port));
    assert_eq!(ports[text(&metrics["targetPort"])].0, http_port);

    // The image exposes the same ports.
    let dockerfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    let expose: BTreeSet<&str> =
        dockerfile.lines().filter_map(|l| l.strip_prefix("EXPOSE ")).flat_map(str::split_whitespace).collect();
    let want: BTreeSet<String> =
        [format!("{dns_port}/udp"), format!("{dns_port}/tcp"), http_port.to_string()].into_iter().collect();
    assert_eq!(expose, want.iter().map(String::as_str).collect(), "Dockerfile EXPOSE");

    // The optional NetworkPolicy admits exactly the DNS port, both protocols, from the cluster DNS.
    let optional = documents_in(&deploy().join("optional"));
    let policy = &optional.iter().find(|(_, d)| d["kind"] == "NetworkPolicy").expect("deploy/optional NetworkPolicy").1;
    assert!(selects(
        &policy["spec"]["podSelector"]["matchLabels"],
        &d.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    ));
    let rules = seq(&policy["spec"]["ingress"]);
    assert_eq!(rules.len(), 1);
    let admitted: BTreeSet<(u64, &str)> =
        seq(&rules[0]["ports"]).iter().map(|p| (p["port"].as_u64().unwrap(), text(&p["protocol"]))).collect();
    assert_eq!(admitted, [(dns_port, "TCP"), (dns_port, "UDP")].into_iter().collect());
    let from = seq(&rules[0]["from"]);
    assert_eq!(from.len(), 1, "one peer: the cluster DNS pods");
    assert_eq!(from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], "kube-system");
    assert_eq!(from[0]["podSelector"]["matchLabels"]["k8s-app"], "kube-dns");
}

#[test]
fn the_pod_is_locked_down_highly_available_and_its_rbac_is_read_only() {
    let d = Deploy::load();
    let deployment = d.one("Deployment");
    let pod = d.pod_spec();
    let c = d.container();
    let template_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert!(selects(&deployment["spec"]["selector"]["matchLabels"], template_labels));

    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
    assert_eq!(sc["runAsUser"].as_u64(), Some(65532));
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    assert!(sc["capabilities"]["add"].is_null(), "no capability added");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    // The image's USER is the same fixed UID.
    let dockerfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile")).unwrap();
    assert!(dockerfile.lines().any(|l| l.trim() == "USER 65532:65532"), "Dockerfile runs as 65532");

    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(c["resources"][kind][resource].is_string(), "resources.{kind}.{resource}");
        }
    }

    // Two replicas on different nodes, and a disruption budget that keeps one.
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(2));
    let spread = seq(&pod["topologySpreadConstraints"]);
    let by_node = spread.iter().find(|t| t["topologyKey"] == "kubernetes.io/hostname").expect("spread across nodes");
    assert!(selects(&by_node["labelSelector"]["matchLabels"], template_labels));
    let pdb = d.one("PodDisruptionBudget");
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], template_labels));
    assert_eq!(pdb["spec"]["minAvailable"].as_u64(), Some(1));

    // Its own ServiceAccount, with a token (it talks to the API server), bound to a ClusterRole
    // that only lists and watches pods, services, namespaces, endpointslices, statefulsets, nodes
    // (zonal) and serviceimports (multicluster).
    assert_eq!(pod["automountServiceAccountToken"].as_bool(), Some(true));
    let sa = d.one("ServiceAccount");
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    let mut granted = BTreeSet::new();
    for rule in seq(&d.one("ClusterRole")["rules"]) {
        assert_eq!(strings(&rule["verbs"]), ["list", "watch"], "read-only: {rule:?}");
        assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none());
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                granted.insert((group.clone(), resource));
            }
        }
    }
    let want: BTreeSet<(String, String)> = [
        ("", "pods"),
        ("", "services"),
        ("", "namespaces"),
        ("discovery.k8s.io", "endpointslices"),
        ("apps", "statefulsets"),
        ("", "nodes"),
        ("multicluster.x-k8s.io", "serviceimports"),
    ]
    .into_iter()
    .map(|(g, r)| (g.to_owned(), r.to_owned()))
    .collect();
    assert_eq!(granted, want);
    let binding = d.one("ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["name"], d.one("ClusterRole")["metadata"]["name"]);
    let subjects = seq(&binding["subjects"]);
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["kind"], "ServiceAccount");
    assert_eq!(subjects[0]["name"], sa["metadata"]["name"]);
    assert_eq!(subjects[0]["namespace"], "headless-dns");

    // All in the headless-dns namespace, which the base creates.
    assert_eq!(d.one("Namespace")["metadata"]["name"], "headless-dns");
    assert_eq!(d.one("Kustomization")["namespace"], "headless-dns");
}
