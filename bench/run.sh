#!/usr/bin/env bash
# Benchmarks headless-dns against Knot DNS and NSD on the same records, one core each (or N, --workers).
# See bench/README.md.
#
#   bash bench/run.sh            full run: 10k- and 100k-pod zones, 3 repetitions (about 20 min)
#   bash bench/run.sh --quick    smoke run: 10k-pod zone, 1 repetition, short runs (about 2 min)
#
# Options:
#   --quick          as above
#   --bin PATH       benchmark this headless-dns binary instead of building one
#   --rev REV        build the committed revision REV (git archive; own target dir under
#                    bench/scratch/) instead of the working tree
#   --sizes LIST     pod counts, comma-separated (default 10000,100000; --quick: 10000)
#   --reps N         repetitions (default 3; --quick: 1)
#   --servers LIST   default knot,nsd,headless-dns
#   --mixes LIST     default pods,nx20,svc10,resolver
#   --workers LIST   UDP worker counts, comma-separated (default 1): with N, every server runs N
#                    workers pinned to the first N CPUs, and dnsperf N threads on the next N
#                    (so 1,2,4,8 needs 16 CPUs); the report adds each server's scaling
#   --allow-shared-cpus  with too few CPUs for a worker count, let server and dnsperf CPUs
#                    overlap: checks the harness on a small machine, the figures mean nothing
#   --sat S          seconds of each saturated dnsperf run (default 10; --quick: 3)
#   --lat S          seconds of each fixed-rate run (default 5; --quick: 2)
#   --lat-qps N      the fixed rate (default 10000)
#   --outstanding N  dnsperf -q for the saturated runs, per dnsperf thread (default 100)
#   --noise PCT      a run in which other work took more than PCT% of a CPU per two benchmark
#                    CPUs is repeated (default 10)
#   --noise-retries N  at most N repeats of a noisy run; the quietest is kept (default 2)
#
# Traffic goes to 127.0.0.1 only; every load run is bounded by time (dnsperf -l, plus a hard
# timeout). Results: bench/results/<timestamp>.md and .json (ignored by git; commit a chosen one
# with `git add -f`).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
work="$here/scratch"

quick=0 bin="" rev="" sizes="" reps="" servers="knot,nsd,headless-dns" mixes="pods,nx20,svc10,resolver"
sat="" lat="" lat_qps=10000 outstanding=100 noise=10 noise_retries=2 workers=1 shared_cpus=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --bin) bin="$2"; shift ;;
        --rev) rev="$2"; shift ;;
        --sizes) sizes="$2"; shift ;;
        --reps) reps="$2"; shift ;;
        --servers) servers="$2"; shift ;;
        --mixes) mixes="$2"; shift ;;
        --workers) workers="$2"; shift ;;
        --allow-shared-cpus) shared_cpus=(--allow-shared-cpus) ;;
        --sat) sat="$2"; shift ;;
        --lat) lat="$2"; shift ;;
        --lat-qps) lat_qps="$2"; shift ;;
        --outstanding) outstanding="$2"; shift ;;
        --noise) noise="$2"; shift ;;
        --noise-retries) noise_retries="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    mode=quick; : "${sizes:=10000}" "${reps:=1}" "${sat:=3}" "${lat:=2}"
else
    mode=full; : "${sizes:=10000,100000}" "${reps:=3}" "${sat:=10}" "${lat:=5}"
fi

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# 1. Tools: knotd, nsd, dnsperf, taskset, from Debian (bookworm: knot 3.2, nsd 4.6, dnsperf 2.10).
need=()
command -v knotd >/dev/null || need+=(knot)
command -v nsd >/dev/null || need+=(nsd)
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v taskset >/dev/null || need+=(util-linux)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
        exit 1
    fi
    say "installing ${need[*]} from Debian"
    # The packages' services are not started: the servers run from temporary configs only.
    # (A policy-rc.d that denies starts is put in place only if none exists, and removed after.)
    policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    [ "$own_policy" = 1 ] && rm -f "$policy"
fi
ncpu=$(nproc)
if [ "$ncpu" -lt 2 ]; then
    echo "run.sh: needs 2 CPUs (server on CPU 0, dnsperf on CPU 1); this machine has $ncpu" >&2
    exit 1
fi

# One run at a time: a second one would rewrite the data and binary under the first one's servers.
mkdir -p "$work"
exec 9>"$work/.lock"
if ! flock -n 9; then
    echo "run.sh: another benchmark run holds $work/.lock; wait for it to finish" >&2
    exit 1
fi

# 2. The headless-dns binary, built once and copied, so a rebuild during the run cannot swap it.
if [ -n "$bin" ]; then
    label="$bin (given)"
elif [ -n "$rev" ]; then
    sha=$(git -C "$root" rev-parse --short "$rev^{commit}")
    src="$work/src-$sha"
    if [ ! -f "$src/Cargo.toml" ]; then
        mkdir -p "$src"
        git -C "$root" archive "$sha" | tar -x -C "$src"
    fi
    say "building headless-dns $sha (cargo build --release, target dir bench/scratch/target-rev)"
    (cd "$src" && cargo build --release --locked --quiet --target-dir "$work/target-rev")
    bin="$work/target-rev/release/headless-dns"
    label="git $sha"
else
    say "building headless-dns from the working tree (cargo build --release)"
    (cd "$root" && cargo build --release --quiet --bin headless-dns)
    bin="$(cd "$root" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/headless-dns"
    dirty=$(git -C "$root" status --porcelain -- src Cargo.toml Cargo.lock | grep -q . && echo "+changes" || true)
    label="git $(git -C "$root" rev-parse --short HEAD)$dirty (working tree)"
fi
[ -x "$bin" ] || { echo "run.sh: no executable headless-dns at $bin" >&2; exit 1; }
cp "$bin" "$work/headless-dns"

# 3. The records: YAML, zone file and query files per zone size.
data=()
for pods in ${sizes//,/ }; do
    dir="$work/data-$pods"
    python3 "$here/gen.py" --pods "$pods" --out "$dir"
    data+=("$dir")
done

# 4. The servers and dnsperf, pinned, run by run; report.
rm -rf "$work/servers"
exec python3 "$here/drive.py" \
    --mode "$mode" --data "${data[@]}" --binary "$work/headless-dns" --label "$label" \
    --work "$work/servers" --results "$here/results" \
    --servers "$servers" --mixes "$mixes" --reps "$reps" \
    --sat-seconds "$sat" --lat-seconds "$lat" --lat-qps "$lat_qps" --outstanding "$outstanding" \
    --noise-threshold "$noise" --noise-retries "$noise_retries" --workers "$workers" ${shared_cpus[@]+"${shared_cpus[@]}"}
