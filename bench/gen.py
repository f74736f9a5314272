#!/usr/bin/env python3
"""Generates one StatefulSet-shaped cluster three ways, with exactly the same DNS answers:

- ``manifests/*.yaml``: Kubernetes YAML for headless-dns ``--manifests`` (multi-document files:
  headless Services, their StatefulSet pods with ``spec.hostname``/``spec.subdomain``,
  ``status.podIP`` and a Ready condition, and ClusterIP Services);
- ``cluster.local.zone``: an RFC 1035 zone file for Knot DNS and NSD;
- ``queries-<mix>.txt``: dnsperf query files, one per mix (see ``MIXES``);
- ``meta.json``: the counts, a readiness probe (a name and the A it must answer) and a sample of
  queries with their expected answers, used by ``drive.py`` to check that every server agrees.

The names (``<zone>`` defaults to ``cluster.local``):

- ``<svc>.<ns>.svc.<zone>. A``: every pod IP of a headless Service (``per_service`` of them);
- ``<svc>-<i>.<svc>.<ns>.svc.<zone>. A``: pod ``i`` of that StatefulSet;
- ``api-<j>.<ns>.svc.<zone>. A``: the cluster IP of a ClusterIP Service (one per headless one);
- ``<zone>. SOA`` and ``NS`` as headless-dns answers them (``ns.dns.<zone>.``, minimum = TTL).

``svc.<zone>.`` and ``<ns>.svc.<zone>.`` are empty non-terminals in both forms. Python 3.11
standard library only; the output is a pure function of the arguments (seeded RNG).

Usage: ``python3 bench/gen.py --pods 10000 --out bench/scratch/10k``
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
from pathlib import Path

# StatefulSet base names, so the zone does not look like one repeated label.
BASES = ["web", "db", "kafka", "zk", "redis", "etcd", "mongo", "search"]

# Hosts a pod with the default ndots:5 resolv.conf looks up through the search path first.
JUNK_HOSTS = [
    "api.example.com",
    "www.google.com",
    "s3.amazonaws.com",
    "cdn.example.net",
    "login.microsoftonline.com",
    "github.com",
    "sqs.eu-west-1.amazonaws.com",
    "o123456.ingest.sentry.io",
]

# Mix name -> what it holds. Every line is `<name> A`; dnsperf adds EDNS only where drive.py's
# MIX_FLAGS says so (the resolver mix).
MIXES = {
    "pods": "pod names, all hits (one A each)",
    "nx20": "80% pod-name hits, 20% NXDOMAIN: half unknown ordinals, half search-path junk",
    "svc10": "headless Service names, each answering 10 A records",
    "resolver": "the nx20 names as a resolver forwards them: DO bit and an EDNS COOKIE option on every "
    "query (dnsperf -D -E 10:<client cookie>), as BIND sends",
}

POD_NET = ipaddress.IPv4Address("10.64.0.1")  # pods: 10.64.0.1 upwards (a /11 holds 2M)
SVC_NET = ipaddress.IPv4Address("10.96.0.10")  # cluster IPs: 10.96.0.10 upwards


def build(pods: int, per_service: int, services_per_ns: int) -> list[dict]:
    """The namespaces, each a dict with its headless services (name, pods [(name, ip)]) and
    ClusterIP services (name, ip)."""
    if pods % per_service:
        raise SystemExit(f"--pods {pods} is not a multiple of --per-service {per_service}")
    n_services = pods // per_service
    namespaces: list[dict] = []
    pod_ip = int(POD_NET)
    svc_ip = int(SVC_NET)
    for s in range(n_services):
        ns_i, j = divmod(s, services_per_ns)
        if j == 0:
            namespaces.append({"name": f"ns-{ns_i:03d}", "headless": [], "clusterip": []})
        ns = namespaces[-1]
        name = f"{BASES[s % len(BASES)]}-{j}"
        members = []
        for ordinal in range(per_service):
            members.append((f"{name}-{ordinal}", str(ipaddress.IPv4Address(pod_ip))))
            pod_ip += 1
        ns["headless"].append({"name": name, "pods": members})
        ns["clusterip"].append({"name": f"api-{j}", "ip": str(ipaddress.IPv4Address(svc_ip))})
        svc_ip += 1
    return namespaces


def service_yaml(ns: str, name: str, cluster_ip: str | None) -> str:
    ip = "None" if cluster_ip is None else cluster_ip
    ips = "" if cluster_ip is None else f"  clusterIPs:\n  - {cluster_ip}\n"
    return (
        "apiVersion: v1\nkind: Service\nmetadata:\n"
        f"  name: {name}\n  namespace: {ns}\n  labels:\n    app: {name}\n"
        f"spec:\n  clusterIP: {ip}\n{ips}  selector:\n    app: {name}\n"
        "  ports:\n  - name: p\n    port: 80\n    protocol: TCP\n"
    )


def pod_yaml(ns: str, svc: str, pod: str, ip: str) -> str:
    return (
        "apiVersion: v1\nkind: Pod\nmetadata:\n"
        f"  name: {pod}\n  namespace: {ns}\n  labels:\n    app: {svc}\n"
        f"    statefulset.kubernetes.io/pod-name: {pod}\n"
        f"spec:\n  hostname: {pod}\n  subdomain: {svc}\n"
        "  containers:\n  - name: c\n    image: registry.k8s.io/pause:3.9\n"
        f"status:\n  phase: Running\n  podIP: {ip}\n  podIPs:\n  - ip: {ip}\n"
        '  conditions:\n  - type: Ready\n    status: "True"\n'
    )


def write_manifests(out: Path, namespaces: list[dict], ns_per_file: int) -> int:
    """One multi-document file per `ns_per_file` namespaces; returns the number of files."""
    folder = out / "manifests"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    files = 0
    for start in range(0, len(namespaces), ns_per_file):
        docs = []
        for ns in namespaces[start : start + ns_per_file]:
            for svc in ns["headless"]:
                docs.append(service_yaml(ns["name"], svc["name"], None))
                docs.extend(pod_yaml(ns["name"], svc["name"], p, ip) for p, ip in svc["pods"])
            docs.extend(service_yaml(ns["name"], c["name"], c["ip"]) for c in ns["clusterip"])
        (folder / f"part-{files:03d}.yaml").write_text("---\n".join(docs))
        files += 1
    return files


def write_zone(out: Path, namespaces: list[dict], zone: str, ttl: int) -> int:
    """The zone file; returns the number of records. The SOA matches headless-dns's (serial aside:
    headless-dns counts changes, the file says 1)."""
    lines = [
        f"$ORIGIN {zone}.",
        f"$TTL {ttl}",
        f"{zone}. {ttl} IN SOA ns.dns.{zone}. hostmaster.{zone}. 1 7200 1800 86400 {ttl}",
        f"{zone}. {ttl} IN NS ns.dns.{zone}.",
    ]
    for ns in namespaces:
        base = f"{ns['name']}.svc.{zone}."
        for svc in ns["headless"]:
            lines.extend(f"{svc['name']}.{base} {ttl} IN A {ip}" for _, ip in svc["pods"])
            lines.extend(f"{p}.{svc['name']}.{base} {ttl} IN A {ip}" for p, ip in svc["pods"])
        lines.extend(f"{c['name']}.{base} {ttl} IN A {c['ip']}" for c in ns["clusterip"])
    (out / f"{zone}.zone").write_text("\n".join(lines) + "\n")
    return len(lines) - 2


def write_queries(out: Path, namespaces: list[dict], zone: str, count: int, seed: int, per_service: int) -> dict:
    """One dnsperf file per mix, `count` lines each; returns {mix: [(qname, rcode, [ips])...]}: a
    sample of each mix's queries with the expected answer."""
    rng = random.Random(seed)
    pods = [
        (f"{p}.{svc['name']}.{ns['name']}.svc.{zone}", ip)
        for ns in namespaces
        for svc in ns["headless"]
        for p, ip in svc["pods"]
    ]
    services = [
        (f"{svc['name']}.{ns['name']}.svc.{zone}", sorted(ip for _, ip in svc["pods"]))
        for ns in namespaces
        for svc in ns["headless"]
    ]

    def nxdomain() -> str:
        ns = rng.choice(namespaces)
        if rng.random() < 0.5:
            # An ordinal the StatefulSet does not have (scaled down, or a typo): web-3-42.web-3...
            svc = rng.choice(ns["headless"])["name"]
            return f"{svc}-{rng.randrange(per_service, 100)}.{svc}.{ns['name']}.svc.{zone}"
        # ndots:5 search-path expansion of an external name, in the resolver's order.
        suffix = rng.choice([f"{ns['name']}.svc.{zone}", f"svc.{zone}", zone])
        return f"{rng.choice(JUNK_HOSTS)}.{suffix}"

    mixes: dict[str, list[tuple[str, str, list[str]]]] = {"pods": [], "nx20": [], "svc10": []}
    for _ in range(count):
        name, ip = rng.choice(pods)
        mixes["pods"].append((name, "NOERROR", [ip]))
        if rng.random() < 0.2:
            mixes["nx20"].append((nxdomain(), "NXDOMAIN", []))
        else:
            name, ip = rng.choice(pods)
            mixes["nx20"].append((name, "NOERROR", [ip]))
        name, ips = rng.choice(services)
        mixes["svc10"].append((name, "NOERROR", ips))
    mixes["resolver"] = list(mixes["nx20"])
    for mix, queries in mixes.items():
        (out / f"queries-{mix}.txt").write_text("".join(f"{q} A\n" for q, _, _ in queries))
    return {mix: queries[:200] for mix, queries in mixes.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=10_000, help="StatefulSet pods in all (default 10000)")
    ap.add_argument("--per-service", type=int, default=10, help="pods per headless Service (default 10)")
    ap.add_argument("--services-per-ns", type=int, default=100, help="headless Services per namespace (default 100)")
    ap.add_argument("--ns-per-file", type=int, default=10, help="namespaces per YAML file (default 10)")
    ap.add_argument("--zone", default="cluster.local")
    ap.add_argument("--ttl", type=int, default=5)
    ap.add_argument("--queries", type=int, default=100_000, help="lines per dnsperf file (default 100000)")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    a = ap.parse_args()

    a.out.mkdir(parents=True, exist_ok=True)
    namespaces = build(a.pods, a.per_service, a.services_per_ns)
    files = write_manifests(a.out, namespaces, a.ns_per_file)
    records = write_zone(a.out, namespaces, a.zone, a.ttl)
    samples = write_queries(a.out, namespaces, a.zone, a.queries, a.seed, a.per_service)
    last = namespaces[-1]["headless"][-1]
    probe_pod, probe_ip = last["pods"][-1]
    meta = {
        "zone": a.zone,
        "ttl": a.ttl,
        "pods": a.pods,
        "headless_services": sum(len(ns["headless"]) for ns in namespaces),
        "clusterip_services": sum(len(ns["clusterip"]) for ns in namespaces),
        "namespaces": len(namespaces),
        "yaml_files": files,
        "zone_records": records,
        "queries_per_mix": a.queries,
        "mixes": MIXES,
        # The last pod written: when it answers, everything before it has been loaded.
        "probe": {"name": f"{probe_pod}.{last['name']}.{namespaces[-1]['name']}.svc.{a.zone}", "ip": probe_ip},
        "samples": samples,
    }
    (a.out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(
        f"gen: {a.pods} pods in {meta['headless_services']} headless + {meta['clusterip_services']} ClusterIP "
        f"services, {len(namespaces)} namespaces -> {a.out} ({files} YAML files, {records} zone records)"
    )


if __name__ == "__main__":
    main()
