#!/usr/bin/env python3
"""Runs headless-dns, Knot DNS and NSD side by side on the records written by ``gen.py`` and
measures each with dnsperf; ``run.sh`` calls it after installing the tools and building.

For each zone size and worker count N (``--workers``, default 1), the three servers are started
once, each pinned to the first N CPUs (``taskset``), on its own 127.0.0.1 high port, with N UDP
workers; dnsperf runs on the next N CPUs with N threads and N sockets.
Each is waited for by polling a name it must answer (no fixed sleeps), then checked: a sample of
every mix must get the same rcode, AA bit and A set from all three. Then, repetition by repetition
and mix by mix, each server in turn (the order rotates every run, so drift on a shared machine
falls on all of them alike):

1. saturated: ``dnsperf -l SAT -q OUTSTANDING`` pinned to the client CPU: QPS, loss, and server CPU
   per answered query = delta of utime+stime (``/proc/<pid>/stat``, summed over the server's
   process tree, threads included) / queries completed;
2. fixed rate: ``dnsperf -Q LAT_QPS -l LAT``: average latency (and CPU per query at that rate);
3. RSS (``VmRSS``) and PSS (``/proc/<pid>/smaps_rollup``), summed over the process tree.

The report gives medians over the repetitions and each server's ratio to Knot's median in the same
run (and, with more than one worker count, each server's CPU per query at N workers against its own
at the fewest), prints it, and writes ``results/<timestamp>.md`` and ``.json``. Traffic goes to 127.0.0.1
only; every dnsperf run is bounded by ``-l`` and a hard subprocess timeout.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import random
import re
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"  # the only address this harness ever sends to
CLK_TCK = os.sysconf("SC_CLK_TCK")
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


REPO = Path(__file__).resolve().parent.parent


def repo_relative(text: str) -> str:
    """`text` with the repository's absolute path made relative, so a kept report names no
    machine-local path."""
    return text.replace(f"{REPO}/", "")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- a minimal DNS client (stdlib), for readiness and answer checks -------------------------------


@dataclass
class Reply:
    rcode: str
    aa: bool
    tc: bool
    a: list[str]
    authority: list[int]  # record types in the authority section
    size: int


def _skip_name(msg: bytes, off: int) -> int:
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return off + 2
        if n == 0:
            return off + 1
        off += 1 + n


def query(port: int, name: str, qtype: int = 1, timeout: float = 1.0) -> Reply | None:
    """One UDP query (no EDNS, RD clear) to 127.0.0.1:port; None on timeout or a garbled reply."""
    qid = random.randrange(65536)
    wire = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(packet, (LOOPBACK, port))
            deadline = time.monotonic() + timeout
            while True:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                msg = s.recv(65535)
                if len(msg) >= 12 and struct.unpack("!H", msg[:2])[0] == qid:
                    break
        except OSError:
            return None
    try:
        _, flags, qd, an, ns, _ = struct.unpack("!HHHHHH", msg[:12])
        off = 12
        for _ in range(qd):
            off = _skip_name(msg, off) + 4
        ips, auth = [], []
        for i in range(an + ns):
            off = _skip_name(msg, off)
            rtype, _, _, rdlen = struct.unpack("!HHIH", msg[off : off + 10])
            off += 10
            if i < an and rtype == 1 and rdlen == 4:
                ips.append(socket.inet_ntoa(msg[off : off + 4]))
            elif i >= an:
                auth.append(rtype)
            off += rdlen
    except (IndexError, struct.error):
        return None
    return Reply(RCODES.get(flags & 0xF, str(flags & 0xF)), bool(flags & 0x400), bool(flags & 0x200), sorted(ips), auth, len(msg))


# --- process accounting ----------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on; comm may hold spaces


def tree(pid: int) -> list[int]:
    """`pid` and its live descendants (NSD forks its server and xfrd children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(_stat_fields(int(entry.name))[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process tree (a process's stat sums all its threads)."""
    ticks = 0
    for p in tree(pid):
        try:
            f = _stat_fields(p)
            ticks += int(f[11]) + int(f[12])  # fields 14 and 15: utime, stime
        except (OSError, ValueError, IndexError):
            pass
    return ticks / CLK_TCK


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, PSS) of the process tree in MiB. PSS does not count a forked child's shared pages
    twice (NSD's zone), RSS does."""
    rss = pss = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return rss / 1024, pss / 1024


def cpu_times(cpus: tuple[int, ...]) -> dict[int, tuple[float, float]]:
    """{cpu: (busy seconds, steal seconds)} from /proc/stat; busy excludes idle, iowait, steal."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            v = [int(x) for x in vals]
            steal = v[7] if len(v) > 7 else 0
            out[int(name[3:])] = ((sum(v[:8]) - v[3] - v[4] - steal) / CLK_TCK, steal / CLK_TCK)
    return out


def cpu_list(cpus: list[int]) -> str:
    """`cpus` as taskset's -c list: "0", "0,1,2,3"."""
    return ",".join(str(c) for c in cpus)


@dataclass
class Layout:
    """Where one worker count runs: the servers on `server` (one UDP worker per CPU), dnsperf on
    `client` (one thread and one socket per CPU)."""

    workers: int
    server: list[int]
    client: list[int]
    shared: bool  # server and client CPUs overlap (--allow-shared-cpus): plumbing checks only

    def all(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.server) | set(self.client)))

    @staticmethod
    def of(workers: int, allowed: list[int], allow_shared: bool) -> "Layout":
        """The first `workers` allowed CPUs for the servers, the next `workers` for dnsperf (as
        much client as server: dnsperf on one core saturates near one server core's rate)."""
        if workers < 1:
            raise SystemExit(f"--workers: {workers} is not a worker count (1 or more)")
        if 2 * workers <= len(allowed):
            return Layout(workers, allowed[:workers], allowed[workers : 2 * workers], False)
        if allow_shared and workers <= len(allowed):
            return Layout(workers, allowed[:workers], allowed[-workers:], True)
        raise SystemExit(
            f"--workers {workers} needs {2 * workers} CPUs ({workers} for the servers, {workers} for dnsperf); "
            f"this process may use {len(allowed)} ({cpu_list(allowed)})"
        )


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        port = random.randrange(20000, 60000)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
                u.bind((LOOPBACK, port))
                t.bind((LOOPBACK, port))
            return port
        except OSError:
            continue
    raise SystemExit("no free port found on 127.0.0.1")


# --- the servers -----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Server:
    name: str
    workdir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    ready_s: float = 0.0
    idle_rss: tuple[float, float] = (0.0, 0.0)
    logfile: Path = field(default_factory=Path)
    workers: int = 1  # UDP workers (threads or processes), one per server CPU

    def command(self, data: Path) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self, data: Path, cpus: list[int]) -> None:
        """Starts the server pinned to `cpus`, with one UDP worker per CPU (`self.workers`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.logfile = self.workdir / "server.log"
        cmd = ["taskset", "-c", cpu_list(cpus)] + self.command(data)
        (self.workdir / "command.txt").write_text(" ".join(cmd) + "\n")
        # taskset execs the server: the Popen pid is the server's pid. It gets SIGTERM if this
        # process dies without stopping it (PR_SET_PDEATHSIG), so no server outlives the run.
        self.proc = subprocess.Popen(
            cmd,
            env=self.env(),
            stdout=self.logfile.open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM by pid, then SIGKILL; also every descendant seen before (NSD's children)."""
        if self.proc is None:
            return
        family = tree(self.proc.pid) if self.alive() else []
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        for pid in family[1:]:
            deadline = time.monotonic() + 5
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None


class HeadlessDns(Server):
    def __init__(self, workdir: Path, workers: int, binary: Path, ttl: int, zone: str):
        super().__init__("headless-dns", workdir, workers=workers)
        self.binary, self.ttl, self.zone = binary, ttl, zone

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADLESS_DNS_")}
        env["RUST_LOG"] = "warn"
        return env

    def command(self, data: Path) -> list[str]:
        cmd = [
            str(self.binary),
            "--manifests", str(data / "manifests"),
            "--listen", f"{LOOPBACK}:{self.port}",
            "--zone", self.zone,
            "--ttl", str(self.ttl),
            "--log-format", "json",
        ]  # fmt: skip
        # N UDP workers, as Knot and NSD get (the default, one per CPU of the affinity mask, is
        # also N under taskset; saying it keeps the comparison per core if that default changes).
        # Revisions before the flag existed have a single UDP task: they can run 1 worker only.
        helptext = subprocess.run([str(self.binary), "--help"], capture_output=True, text=True, timeout=30).stdout
        if "--udp-workers" in helptext:
            cmd += ["--udp-workers", str(self.workers)]
        elif self.workers != 1:
            raise SystemExit(f"{self.binary} has no --udp-workers flag: it can be measured with 1 worker only")
        return cmd


class Knot(Server):
    def __init__(self, workdir: Path, workers: int, zone: str):
        super().__init__("knot", workdir, workers=workers)
        self.zone = zone

    def command(self, data: Path) -> list[str]:
        d = self.workdir
        (d / "db").mkdir(parents=True, exist_ok=True)
        conf = d / "knot.conf"
        conf.write_text(
            f"""server:
    rundir: "{d}"
    listen: {LOOPBACK}@{self.port}
    udp-workers: {self.workers}
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{d / 'db'}"
control:
    listen: "{d / 'knot.sock'}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {self.zone}
    file: "{(data / f'{self.zone}.zone').resolve()}"
"""
        )
        return ["knotd", "-c", str(conf)]


class Nsd(Server):
    def __init__(self, workdir: Path, workers: int, zone: str):
        super().__init__("nsd", workdir, workers=workers)
        self.zone = zone

    def command(self, data: Path) -> list[str]:
        d = self.workdir
        conf = d / "nsd.conf"
        # minimal-responses: no NS RRset in the authority section of positive answers, as Knot and
        # headless-dns answer (NSD's default adds it). rrl-*: 0 turns response rate limiting off
        # (on by default in Debian's build: 200 QPS per source and answer kind, so dnsperf's
        # NXDOMAINs would be dropped); Knot and headless-dns have none. With more than one server
        # process, reuseport gives each its own socket, as Knot's and headless-dns's workers have.
        conf.write_text(
            f"""server:
    ip-address: {LOOPBACK}@{self.port}
    do-ip6: no
    server-count: {self.workers}
    reuseport: {"yes" if self.workers > 1 else "no"}
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d / 'zone.list'}"
    xfrdfile: "{d / 'xfrd.state'}"
    xfrdir: "{d}"
    pidfile: "{d / 'nsd.pid'}"
    cookie-secret-file: "{d / 'cookiesecrets.txt'}"
    verbosity: 0
    hide-version: yes
    minimal-responses: yes
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: {self.zone}
    zonefile: "{(data / f'{self.zone}.zone').resolve()}"
"""
        )
        return ["nsd", "-d", "-c", str(conf)]


def wait_ready(server: Server, probe: dict, deadline_s: float) -> None:
    """Polls the probe name until it answers its IP, the server dies, or the deadline passes."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        if not server.alive():
            raise SystemExit(f"{server.name} exited while starting:\n{server.log_tail()}")
        r = query(server.port, probe["name"], timeout=0.5)
        if r and r.rcode == "NOERROR" and r.a == [probe["ip"]]:
            server.ready_s = time.monotonic() - start
            return
        time.sleep(0.1)  # polling interval, not synchronisation: the condition above is the sync
    raise SystemExit(f"{server.name} not answering {probe['name']} after {deadline_s:.0f}s:\n{server.log_tail()}")


def check_answers(servers: list[Server], samples: dict, per_mix: int) -> dict:
    """Every server answers a sample of every mix as generated: rcode, AA, the A set, and the SOA
    in the authority section of negatives. Returns reply sizes {server: {mix: bytes}}."""
    sizes: dict[str, dict[str, int]] = {}
    problems = []
    for s in servers:
        sizes[s.name] = {}
        for mix, rows in samples.items():
            total = n = 0
            for name, rcode, ips in rows[:per_mix]:
                r = query(s.port, name)
                if r is None:
                    problems.append(f"{s.name}: {name}: no reply")
                    continue
                want_auth = [6] if rcode == "NXDOMAIN" else []
                if (r.rcode, r.a, r.aa, r.authority, r.tc) != (rcode, sorted(ips), True, want_auth, False):
                    problems.append(
                        f"{s.name}: {name}: got {r.rcode} aa={r.aa} tc={r.tc} {r.a} auth={r.authority}, "
                        f"want {rcode} aa=True {sorted(ips)} auth={want_auth}"
                    )
                total += r.size
                n += 1
            sizes[s.name][mix] = round(total / max(n, 1))
    if problems:
        raise SystemExit("servers disagree with the generated records:\n  " + "\n  ".join(problems[:20]))
    return sizes


# --- dnsperf ---------------------------------------------------------------------------------------

_PATTERNS = {
    "sent": r"Queries sent:\s+(\d+)",
    "completed": r"Queries completed:\s+(\d+)",
    "lost": r"Queries lost:\s+(\d+)",
    "runtime": r"Run time \(s\):\s+([\d.]+)",
    "qps": r"Queries per second:\s+([\d.]+)",
    "latency": r"Average Latency \(s\):\s+([\d.]+)",
    "lat_sd": r"Latency StdDev \(s\):\s+([\d.]+)",
}


# Extra dnsperf flags per mix: the resolver mix sets DO (RFC 3225) and sends an 8-octet client
# COOKIE (option 10, RFC 7873) on every query, as BIND does when it forwards.
MIX_FLAGS = {"resolver": ["-D", "-E", "10:2f8a6c31d0b47e95"]}


def dnsperf(
    port: int, queries: Path, cpus: list[int], seconds: float, outstanding: int, qps: int | None, extra: list[str] = []
) -> dict:
    """One bounded dnsperf run against 127.0.0.1:port, pinned to `cpus` with one thread and one
    socket per CPU and `outstanding` queries in flight per thread; its counters, and its own CPU
    seconds."""
    n = len(cpus)
    cmd = [
        "taskset", "-c", cpu_list(cpus), "dnsperf",
        "-s", LOOPBACK, "-p", str(port), "-d", str(queries),
        "-l", str(seconds), "-q", str(outstanding * n), "-t", "1", "-c", str(n), "-T", str(n),
    ] + extra  # fmt: skip
    if qps:
        cmd += ["-Q", str(qps)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"dnsperf failed ({' '.join(cmd)}):\n{out.stdout}\n{out.stderr}")
    res: dict = {}
    for key, pat in _PATTERNS.items():
        m = re.search(pat, out.stdout)
        if not m:
            raise SystemExit(f"cannot read {key!r} from dnsperf output:\n{out.stdout}")
        res[key] = float(m.group(1))
    m = re.search(r"Response codes:\s+(.*)", out.stdout)
    res["cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    res["rcodes"] = dict((k, int(v)) for k, v in re.findall(r"([A-Z]+) (\d+)", m.group(1))) if m else {}
    return res


def measure(server: Server, queries: Path, a: argparse.Namespace, layout: "Layout", extra: list[str]) -> dict:
    pid = server.proc.pid
    cpus = layout.all()
    c0, t0, w0 = cpu_seconds(pid), cpu_times(cpus), time.monotonic()
    sat = dnsperf(server.port, queries, layout.client, a.sat_seconds, a.outstanding, None, extra)
    c1, t1, wall = cpu_seconds(pid), cpu_times(cpus), time.monotonic() - w0
    # How much of the benchmark CPUs went to anything but this server and dnsperf (other tenants
    # of a shared machine, or the hypervisor's steal): the run's noise, reported with it.
    busy = sum(t1[c][0] - t0[c][0] for c in cpus)
    steal = sum(t1[c][1] - t0[c][1] for c in cpus)
    others = max(0.0, busy - (c1 - c0) - sat["cpu_s"]) + steal
    rss, pss = memory_mib(pid)
    t2, w2 = cpu_times(cpus), time.monotonic()
    lat = dnsperf(server.port, queries, layout.client, a.lat_seconds, a.outstanding, a.lat_qps, extra)
    c2, t3, wall_lat = cpu_seconds(pid), cpu_times(cpus), time.monotonic() - w2
    busy_lat = sum(t3[c][0] - t2[c][0] + t3[c][1] - t2[c][1] for c in cpus)
    others_lat = max(0.0, busy_lat - (c2 - c1) - lat["cpu_s"])
    if not server.alive():
        raise SystemExit(f"{server.name} died during the run:\n{server.log_tail()}")
    return {
        "qps": sat["qps"],
        "sent": int(sat["sent"]),
        "completed": int(sat["completed"]),
        "lost": int(sat["lost"]),
        "loss_pct": 100 * sat["lost"] / max(sat["sent"], 1),
        "cpu_s": c1 - c0,
        "server_core_pct": 100 * (c1 - c0) / wall,
        "client_core_pct": 100 * sat["cpu_s"] / wall,
        "others_pct": 100 * others / wall,
        "others_lat_pct": 100 * others_lat / wall_lat,
        "us_per_q": 1e6 * (c1 - c0) / max(sat["completed"], 1),
        "rcodes": sat["rcodes"],
        "sat_latency_us": 1e6 * sat["latency"],
        "lat_us": 1e6 * lat["latency"],
        "lat_sd_us": 1e6 * lat["lat_sd"],
        "lat_qps": lat["qps"],
        "lat_lost": int(lat["lost"]),
        "us_per_q_fixed": 1e6 * (c2 - c1) / max(lat["completed"], 1),
        "rss_mib": rss,
        "pss_mib": pss,
    }


# --- report ----------------------------------------------------------------------------------------

COLUMNS = [
    # key, header, format, better (for the ratio note)
    ("qps", "QPS (sat.)", "{:,.0f}"),
    ("loss_pct", "loss % (max)", "{:.3f}"),
    ("us_per_q", "CPU us/q", "{:.2f}"),
    ("lat_us", "lat us @fixed", "{:.0f}"),
    ("us_per_q_fixed", "CPU us/q @fixed", "{:.2f}"),
    ("rss_mib", "RSS MiB", "{:.1f}"),
    ("pss_mib", "PSS MiB", "{:.1f}"),
    ("server_core_pct", "server core %", "{:.0f}"),
    ("client_core_pct", "dnsperf core %", "{:.0f}"),
    ("others_pct", "others %", "{:.0f}"),
    ("others_lat_pct", "others % @fixed", "{:.0f}"),
]
RATIOS = [("qps", "QPS"), ("us_per_q", "us/q"), ("lat_us", "lat"), ("rss_mib", "RSS")]


def medians(runs: list[dict], zone: str, workers: int, mix: str, server: str) -> dict | None:
    rows = [r for r in runs if (r["zone"], r.get("workers", 1), r["mix"], r["server"]) == (zone, workers, mix, server)]
    if not rows:
        return None
    med = {k: statistics.median(r[k] for r in rows) for k, _, _ in COLUMNS}
    med["loss_pct"] = max(r["loss_pct"] for r in rows)  # the target is no loss in any run
    med["reps"] = len(rows)
    med["us_range"] = (min(r["us_per_q"] for r in rows), max(r["us_per_q"] for r in rows))
    return med


def blocks(result: dict) -> list[dict]:
    """The (zone, worker count) pairs of a result, in run order. Results from before worker
    counts existed ran 1 worker, with their zone info under the zone's label."""
    return result.get("blocks") or [{"zone": z, "workers": 1, "key": z, "layout": None} for z in result["zones"]]


def layout_text(layout: dict | None) -> str:
    if not layout:
        return "1 UDP worker"
    n = layout["workers"]
    text = (f"{n} UDP worker{'s' if n > 1 else ''} on CPU {cpu_list(layout['server'])}, "
            f"dnsperf on CPU {cpu_list(layout['client'])} ({n} thread{'s' if n > 1 else ''})")  # fmt: skip
    if layout["shared"]:
        text += "; **server and dnsperf CPUs overlap (--allow-shared-cpus): these figures check the harness, they measure nothing**"
    return text


def scaling(result: dict) -> str:
    """With more than one worker count: per zone, mix and server, QPS and CPU per query at each
    count, against Knot at the same count, and against the server's own at the fewest workers."""
    counts = sorted({b["workers"] for b in blocks(result)})
    if len(counts) < 2:
        return ""
    runs, servers, base = result["runs"], result["servers"], counts[0]
    out = [f"### Scaling: {', '.join(map(str, counts))} workers\n",
           f"`us/q N / {base}` = the server's median CPU per query at N workers / its own at {base}; "
           "`x Knot` = / Knot's at the same count.\n"]  # fmt: skip
    head = ["zone", "mix", "server"]
    head += [f"QPS {n}w" for n in counts] + [f"us/q {n}w" for n in counts]
    head += [f"us/q x Knot {n}w" for n in counts] + [f"us/q {n} / {base}" for n in counts[1:]]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for zone in result["zones"]:
        for mix in result["mixes"]:
            for server in servers:
                m = {n: medians(runs, zone, n, mix, server) for n in counts}
                k = {n: medians(runs, zone, n, mix, "knot") for n in counts}
                if any(v is None for v in m.values()):
                    continue
                cells = [zone, mix, server]
                cells += [f"{m[n]['qps']:,.0f}" for n in counts] + [f"{m[n]['us_per_q']:.2f}" for n in counts]
                cells += [f"{m[n]['us_per_q'] / k[n]['us_per_q']:.2f}" if k[n] else "-" for n in counts]
                cells += [f"{m[n]['us_per_q'] / m[base]['us_per_q']:.2f}" for n in counts[1:]]
                out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def report(result: dict) -> str:
    runs, servers, lat_qps = result["runs"], result["servers"], result["params"]["lat_qps"]
    out = []
    for block in blocks(result):
        zone, workers = block["zone"], block["workers"]
        info = result["zone_info"][block["key"]]
        out.append(f"### {zone}, {workers} worker{'s' if workers > 1 else ''}: {info['pods']:,} pods, "
                   f"{info['headless_services']:,} headless + {info['clusterip_services']:,} ClusterIP services, "
                   f"{info['zone_records']:,} records; {layout_text(block['layout'])}\n")
        head = ["mix", "server"] + [h.replace("@fixed", f"@{lat_qps // 1000}k") for _, h, _ in COLUMNS]
        head += ["us/q min-max"] + [f"{h} x Knot" for _, h in RATIOS]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for mix in result["mixes"]:
            knot = medians(runs, zone, workers, mix, "knot")
            for server in servers:
                m = medians(runs, zone, workers, mix, server)
                if m is None:
                    continue
                cells = [mix, server] + [fmt.format(m[k]) for k, _, fmt in COLUMNS]
                cells.append(f"{m['us_range'][0]:.2f}-{m['us_range'][1]:.2f}")
                for k, _ in RATIOS:
                    cells.append(f"{m[k] / knot[k]:.2f}" if knot and knot[k] else "-")
                out.append("| " + " | ".join(cells) + " |")
        ready = ", ".join(
            f"{s} {info['ready_s'][s]:.1f} s / {info['idle_rss'][s]:.1f} MiB" for s in servers if s in info["ready_s"]
        )
        sizes = "; ".join(
            f"{s}: " + ", ".join(f"{mix} {b} B" for mix, b in info["reply_bytes"][s].items()) for s in servers
        )
        out.append(f"\nStart to first answer / RSS before load: {ready}.  \nMean reply size: {sizes}.\n")
    out.append(scaling(result))
    return "\n".join(out)


def dnsperf_version() -> str:
    p = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True, timeout=10)
    m = re.search(r"Version (\S+)", p.stdout + p.stderr)
    return m.group(1) if m else "?"


def environment(a: argparse.Namespace) -> dict:
    def first_line(cmd: list[str]) -> str:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")  # fmt: skip
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "knot": first_line(["knotd", "--version"]),
        "nsd": first_line(["nsd", "-v"]),
        "dnsperf": "dnsperf " + dnsperf_version(),
        "headless_dns": a.label,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--render", type=Path, help="only print the tables of a saved results/<timestamp>.json")
    ap.add_argument("--data", type=Path, nargs="+", help="gen.py output folders, one per zone size")
    ap.add_argument("--binary", type=Path, help="the headless-dns binary")
    ap.add_argument("--label", default="headless-dns", help="what the binary is (git revision), for the report")
    ap.add_argument("--work", type=Path, help="scratch folder for server configs and logs")
    ap.add_argument("--results", type=Path, help="folder for <timestamp>.md and .json")
    ap.add_argument("--servers", default="knot,nsd,headless-dns")
    ap.add_argument("--mixes", default="pods,nx20,svc10,resolver")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sat-seconds", type=int, default=10)
    ap.add_argument("--lat-seconds", type=int, default=5)
    ap.add_argument("--lat-qps", type=int, default=10_000)
    ap.add_argument("--outstanding", type=int, default=100, help="dnsperf -q (default 100)")
    ap.add_argument("--workers", default="1",
                    help="UDP worker counts, comma-separated (default 1); N workers run on N CPUs, dnsperf on N more")
    ap.add_argument("--allow-shared-cpus", action="store_true",
                    help="let server and dnsperf CPUs overlap when there are too few (checks the harness; measures nothing)")
    ap.add_argument("--ready-timeout", type=float, default=600)
    ap.add_argument("--noise-threshold", type=float, default=10,
                    help="percent of a CPU other work may take, per two benchmark CPUs, before a run is repeated "
                    "(default 10)")
    ap.add_argument("--noise-retries", type=int, default=2, help="repeats of a noisy run (default 2)")
    ap.add_argument("--mode", default="full")
    a = ap.parse_args()
    if a.render:
        print(report(json.loads(a.render.read_text())))
        return
    if not (a.data and a.binary and a.work and a.results):
        ap.error("--data, --binary, --work and --results are required (or --render FILE)")
    # SIGTERM/SIGHUP unwind like Ctrl-C, through the `finally` that stops the servers.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))

    allowed = sorted(os.sched_getaffinity(0))
    try:
        counts = [int(n) for n in a.workers.split(",")]
    except ValueError:
        raise SystemExit(f"--workers {a.workers!r}: want worker counts such as 1,2,4,8") from None
    layouts = [Layout.of(n, allowed, a.allow_shared_cpus) for n in counts]  # all checked before any run
    names = a.servers.split(",")
    mixes = a.mixes.split(",")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result: dict = {
        "stamp": stamp,
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items() if k not in ("data",)},
        "environment": environment(a),
        "loadavg_start": Path("/proc/loadavg").read_text().strip(),
        "servers": names,
        "mixes": mixes,
        "workers": counts,
        "zones": [],
        "blocks": [],
        "zone_info": {},
        "runs": [],
    }
    log(f"{a.mode} run: servers {names}, {' / '.join(layout_text(vars(lay)) for lay in layouts)}; "
        f"{a.reps} reps x {len(mixes)} mixes; {a.sat_seconds}s saturated + {a.lat_seconds}s at {a.lat_qps} QPS")  # fmt: skip
    for data, layout in ((d, lay) for d in a.data for lay in layouts):
        meta = json.loads((data / "meta.json").read_text())
        zone_label = f"{meta['pods'] // 1000}k pods"
        if zone_label not in result["zones"]:
            result["zones"].append(zone_label)
        n = layout.workers
        key = f"{zone_label}, {n} worker{'s' if n > 1 else ''}"
        result["blocks"].append({"zone": zone_label, "workers": n, "key": key, "layout": vars(layout)})
        info = {k: meta[k] for k in ("pods", "headless_services", "clusterip_services", "zone_records")}
        factories = {
            "headless-dns": lambda w: HeadlessDns(w, n, a.binary.resolve(), meta["ttl"], meta["zone"]),
            "knot": lambda w: Knot(w, n, meta["zone"]),
            "nsd": lambda w: Nsd(w, n, meta["zone"]),
        }
        servers = [factories[name](a.work / f"{data.name}-{n}w-{name}") for name in names]
        try:
            for s in servers:
                s.start(data, layout.server)
                wait_ready(s, meta["probe"], a.ready_timeout)
                s.idle_rss = memory_mib(s.proc.pid)
                log(f"{key}: {s.name} on {LOOPBACK}:{s.port} (pid {s.proc.pid}) answering after "
                    f"{s.ready_s:.1f}s, RSS {s.idle_rss[0]:.1f} MiB")  # fmt: skip
            info["reply_bytes"] = check_answers(servers, meta["samples"], 60)
            info["commands"] = {s.name: (s.workdir / "command.txt").read_text().strip() for s in servers}
            info["ready_s"] = {s.name: s.ready_s for s in servers}
            info["idle_rss"] = {s.name: s.idle_rss[0] for s in servers}
            log(f"{key}: all servers give the generated answers on a sample of every mix")
            for s in servers:  # warm-up, not recorded
                dnsperf(s.port, data / f"queries-{mixes[0]}.txt", layout.client, 1, a.outstanding, None)
            k = 0
            for rep in range(a.reps):
                for mix in mixes:
                    order = servers[k % len(servers) :] + servers[: k % len(servers)]
                    k += 1
                    for s in order:
                        # On a shared machine another tenant may take the benchmark CPUs mid-run:
                        # such a run is repeated (a bounded number of times) and the quietest kept.
                        attempts = []
                        for _ in range(1 + a.noise_retries):
                            attempts.append(measure(s, data / f"queries-{mix}.txt", a, layout, MIX_FLAGS.get(mix, [])))
                            noise = max(attempts[-1]["others_pct"], attempts[-1]["others_lat_pct"])
                            if noise <= a.noise_threshold * len(layout.all()) / 2:
                                break
                            log(f"  {s.name} {mix}: {noise:.0f}% of the benchmark CPUs went to other work; "
                                f"{'again' if len(attempts) <= a.noise_retries else 'keeping the quietest'}")  # fmt: skip
                        r = min(attempts, key=lambda x: max(x["others_pct"], x["others_lat_pct"]))
                        r.update(zone=zone_label, workers=n, rep=rep, mix=mix, server=s.name, attempts=len(attempts))
                        result["runs"].append(r)
                        log(f"{zone_label} {n}w rep {rep + 1} {mix:5} {s.name:12} {r['qps']:>9,.0f} QPS  "
                            f"loss {r['loss_pct']:.3f}%  {r['us_per_q']:6.2f} us/q  "
                            f"lat@{a.lat_qps // 1000}k {r['lat_us']:6.0f} us  RSS {r['rss_mib']:.1f} MiB  "
                            f"cores: server {r['server_core_pct']:.0f}% dnsperf {r['client_core_pct']:.0f}% "
                            f"others {r['others_pct']:.0f}%  "
                            f"{r['rcodes']}")  # fmt: skip
        finally:
            for s in servers:
                s.stop()
        result["zone_info"][key] = info
    result["loadavg_end"] = Path("/proc/loadavg").read_text().strip()

    text = report(result)
    env = result["environment"]
    md = [
        f"# headless-dns vs Knot DNS vs NSD: {stamp} ({a.mode})\n",
        f"headless-dns: {env['headless_dns']}; {env['knot']}; {env['nsd']}; {env['dnsperf']}.  ",
        f"{env['cpu']}, {env['cpus']} CPUs, Linux {env['kernel']}; worker counts {a.workers}: with N workers, "
        "the servers run N UDP workers on the first N CPUs and dnsperf N threads with a socket each on the next N; "
        "127.0.0.1, UDP, no EDNS except in the resolver mix.  ",
        f"{a.reps} repetition(s), medians; saturated: `dnsperf -l {a.sat_seconds} -q {a.outstanding}xN -c N -T N -t 1`; "
        f"fixed: `-Q {a.lat_qps} -l {a.lat_seconds}`. CPU us/q = server utime+stime delta / queries "
        "completed. RSS/PSS after the saturated run, summed over the process tree. "
        "Loss is the worst repetition's. `x Knot` = median / Knot's median in this run. During the saturated run: `server core %` and "
        "`dnsperf core %` = their CPU time / wall time (near 100: that side is the bottleneck); `others %` = "
        "time on the benchmark CPUs used by anything else (other tenants, steal): the run's noise; a run "
        f"noisier than {a.noise_threshold:.0f}% per two benchmark CPUs is repeated up to {a.noise_retries} times and "
        "the quietest kept.  ",
        f"Load average at start: {result['loadavg_start']}; at end: {result['loadavg_end']}.\n",
        "Mixes: " + "; ".join(f"`{m}` {meta['mixes'].get(m, '')}" for m in mixes) + ".\n",
        text,
        "\n## Commands\n",
        *(f"- {b['key']}, {name}: `{repo_relative(cmd)}`" for b in result["blocks"]
          for name, cmd in result["zone_info"][b["key"]].get("commands", {}).items()),  # fmt: skip
        f"\nServer configs and logs: `{repo_relative(str(a.work))}/<size>-<N>w-<server>/`.",
        "\n## Every run\n",
        "| zone | workers | rep | mix | server | QPS | sent | lost | CPU s | us/q | lat us | us/q fixed | RSS MiB "
        "| server % | dnsperf % | others % | others % fixed | attempts | rcodes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        md.append(
            f"| {r['zone']} | {r['workers']} | {r['rep'] + 1} | {r['mix']} | {r['server']} | {r['qps']:,.0f} | {r['sent']:,} | "
            f"{r['lost']:,} | {r['cpu_s']:.2f} | {r['us_per_q']:.2f} | {r['lat_us']:.0f} | {r['us_per_q_fixed']:.2f} | "
            f"{r['rss_mib']:.1f} | {r['server_core_pct']:.0f} | {r['client_core_pct']:.0f} | {r['others_pct']:.0f} | "
            f"{r['others_lat_pct']:.0f} | {r['attempts']} | {' '.join(f'{k} {v}' for k, v in r['rcodes'].items())} |"
        )
    md.append(f"\nRerun: `bash bench/run.sh{' --quick' if a.mode == 'quick' else ''}` (see bench/README.md).\n")
    a.results.mkdir(parents=True, exist_ok=True)
    (a.results / f"{stamp}.md").write_text("\n".join(md))
    (a.results / f"{stamp}.json").write_text(repo_relative(json.dumps(result, indent=1)))
    print("\n" + text)
    log(f"wrote {a.results / (stamp + '.md')} and .json")


if __name__ == "__main__":
    main()
