#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/wp.sh: the whole-program workloads of bench/wp.c under glibc,
# jemalloc, mimalloc, tcmalloc and libmova-preload.so, interleaved round by
# round by ../shared/tools/vs-peers (or $VS_PEERS): median wall time and
# peak RSS of each, ratios against jemalloc and against the best peer, and
# the geometric means.
#
# usage: bench/wp.sh [-n ROUNDS] [-t THREADS] [-s SCALE] [--only w1,w2] [--out FILE.md]
#   defaults: 3 rounds, 2 threads, scale 1 (about a second a workload under glibc)
# Builds nothing: run bench/run.sh (or ninja -C build-bench) first; the
# binaries are taken from build-bench/, else build/, else build-test/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=3 threads=2 scale=1 out=""
only="tight,tight1,mixed,larson,prodcons,lifetimes,falseshare,largechurn,randstep,tlb"
while [ $# -gt 0 ]; do
	case $1 in
	-n) rounds=$2; shift ;;
	-t) threads=$2; shift ;;
	-s) scale=$2; shift ;;
	--only) only=$2; shift ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "wp.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
vs=${VS_PEERS:-$repo/../shared/tools/vs-peers}
[ -x "$vs" ] || { echo "wp.sh: vs-peers not found at $vs (set VS_PEERS)" >&2; exit 2; }
bin=${BENCH_WP_BIN:-} lib=${BENCH_WP_LIB:-}
[ -n "$bin" ] || for d in build-bench build build-test; do
	if [ -x "$repo/$d/bench/bench-wp" ] && [ -f "$repo/$d/lib/libmova-preload.so" ]; then
		bin=$repo/$d/bench/bench-wp lib=$repo/$d/lib/libmova-preload.so
		break
	fi
done
[ -n "$bin" ] || { echo "wp.sh: no bench-wp and libmova-preload.so built (ninja -C build-bench)" >&2; exit 2; }

md="" raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
emit() { printf '%s\n' "$*"; md+="$*"$'\n'; }
# the revision the library was built at: run.sh says (its build began the
# run; HEAD may have moved since), else HEAD
rev=${BENCH_WP_REV:-$(git -C "$repo" rev-parse --short HEAD)}
emit "Whole-program workloads (\`bench/wp.sh -n $rounds -t $threads -s $scale\`, $(date -u +%Y-%m-%dT%H:%MZ), mova $rev, load $(cut -d' ' -f1-3 /proc/loadavg)): medians of $rounds rounds, $threads threads; lower is better."
emit ""
for w in ${only//,/ }; do
	t=$threads
	"$vs" -n "$rounds" --add mova="$lib" -- "$bin" "$w" "$t" "$scale" 2>&1 |
		awk -v w="$w" 'NR > 1 && NF == 5 { print w, $1, $2, $3 }' >>"$raw"
done
# one table: per workload, time and RSS of each allocator; mova's ratios
python3 - "$raw" >"$raw.md" <<'PY'
import math, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
order, t, m = [], {}, {}
for w, a, secs, mib in rows:
    if w not in order:
        order.append(w)
    t[w, a], m[w, a] = float(secs), float(mib)
al = [a for a in ("glibc", "jemalloc", "mimalloc", "tcmalloc", "mova") if any(k[1] == a for k in t)]
print("| workload | " + " | ".join(f"{a} s / MiB" for a in al) +
      " | mova/jemalloc time | mova/fastest peer | mova/leanest peer RSS |")
print("|---" * (len(al) + 4) + "|")
gt, gm = {a: [] for a in al}, {a: [] for a in al}
for w in order:
    cells = []
    for a in al:
        if (w, a) in t:
            cells.append(f"{t[w, a]:.2f} / {m[w, a]:.0f}")
            gt[a].append(math.log(max(t[w, a], 1e-3)))
            gm[a].append(math.log(max(m[w, a], 1e-3)))
        else:
            cells.append("-")
    peers = [a for a in al if a != "mova" and (w, a) in t]
    if (w, "mova") in t and peers:
        fast = min(peers, key=lambda a: t[w, a])
        lean = min(m[w, a] for a in peers)
        j = f"{t[w, 'mova'] / t[w, 'jemalloc']:.2f}" if (w, "jemalloc") in t else "-"
        tail = [j, f"{t[w, 'mova'] / t[w, fast]:.2f} ({fast})", f"{m[w, 'mova'] / lean:.2f}"]
    else:
        tail = ["-", "-", "-"]
    print(f"| {w} | " + " | ".join(cells + tail) + " |")
g = {a: (math.exp(sum(gt[a]) / len(gt[a])), math.exp(sum(gm[a]) / len(gm[a]))) for a in al if gt[a]}
cells = [f"{g[a][0]:.2f} / {g[a][1]:.0f}" if a in g else "-" for a in al]
tail = ["-", "-", "-"]
if "mova" in g:
    peers = [a for a in g if a != "mova"]
    if peers:
        fast = min(peers, key=lambda a: g[a][0])
        j = f"{g['mova'][0] / g['jemalloc'][0]:.2f}" if "jemalloc" in g else "-"
        tail = [j, f"{g['mova'][0] / g[fast][0]:.2f} ({fast})",
                f"{g['mova'][1] / min(g[a][1] for a in peers):.2f}"]
print("| **geometric mean** | " + " | ".join(cells + tail) + " |")
PY
emit "$(cat "$raw.md")"
rm -f "$raw.md"
[ -z "$out" ] || printf '%s' "$md" >"$out"
