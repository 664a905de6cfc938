#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/redis-frag.sh: redis-server's memory after fragmentation, under each
# allocator (issue 15): fill with DEBUG POPULATE (a million keys, 200-byte
# values), delete 80% of them at random (a Lua script), wait, refill with
# 800,000 keys of 400-byte values. used_memory_rss (and redis's own
# used_memory) after each step, in MiB; rounds interleaved, medians.
#   glibc     bench/glibc-shim.so preloaded (Debian's redis links jemalloc:
#             without it "glibc" would be jemalloc)
#   jemalloc  redis's own (libjemalloc.so.2, linked)
#   mimalloc, tcmalloc  their libraries preloaded
#   mova      libmova-preload.so preloaded
#
# usage: bench/redis-frag.sh [-n ROUNDS] [--wait SECONDS] [--lib PATH] [--shim PATH]
#                            [--out FILE.md]
#   --wait  seconds between the deletion and the measure (default 5)
#   --lib   the preload library (default build-bench/lib/libmova-preload.so)
#   --shim  the glibc shim (default build-bench/bench/glibc-shim.so)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=1 wait_s=5 lib="" shim="" out=""
while [ $# -gt 0 ]; do
	case $1 in
	-n) rounds=$2; shift ;;
	--wait) wait_s=$2; shift ;;
	--lib) lib=$2; shift ;;
	--shim) shim=$2; shift ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "redis-frag.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
lib=${lib:-$repo/build-bench/lib/libmova-preload.so}
shim=${shim:-$repo/build-bench/bench/glibc-shim.so}
for f in "$lib" "$shim"; do
	[ -f "$f" ] || { echo "redis-frag.sh: $f missing (build build-bench first)" >&2; exit 2; }
done
command -v redis-server >/dev/null || { echo "redis-frag.sh: no redis-server (tools/deps)" >&2; exit 2; }
libdir=/usr/lib/x86_64-linux-gnu
declare -A pre=([glibc]=$(readlink -f "$shim") [jemalloc]="" [mimalloc]=$libdir/libmimalloc.so.2
	[tcmalloc]=$libdir/libtcmalloc_minimal.so.4 [mova]=$(readlink -f "$lib"))
names=()
for n in glibc jemalloc mimalloc tcmalloc mova; do
	[ -z "${pre[$n]}" ] || [ -f "${pre[$n]}" ] && names+=("$n")
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# one run: prints "rss used" (MiB) after fill, after deletion + wait, after refill
one() {
	local preload=$1 port=$((20000 + RANDOM % 12000)) pid up=0
	env ${preload:+LD_PRELOAD=$preload} redis-server --bind 127.0.0.1 --port $port --save '' \
		--appendonly no --daemonize no --logfile "$work/redis.log" --enable-debug-command yes &
	pid=$!
	for _ in $(seq 200); do redis-cli -p $port ping >/dev/null 2>&1 && { up=1; break; }; sleep 0.05; done
	[ $up = 1 ] || { echo "redis-server did not start" >&2; kill $pid; return 1; }
	mem() {
		redis-cli -p $port info memory | tr -d '\r' |
			awk -F: '/^used_memory_rss:/{r=$2} /^used_memory:/{u=$2} END{printf "%.0f %.0f ", r/1048576, u/1048576}'
	}
	redis-cli -p $port debug populate 1000000 key 200 >/dev/null
	mem
	redis-cli -p $port eval "math.randomseed(7) local n=0 for i=0,999999 do if math.random() < 0.8 then n=n+redis.call('DEL','key:'..i) end end return n" 0 >/dev/null
	sleep "$wait_s"
	mem
	redis-cli -p $port debug populate 800000 more 400 >/dev/null
	mem
	echo
	redis-cli -p $port shutdown nosave >/dev/null 2>&1 || true
	wait $pid 2>/dev/null || true
}

for ((r = 1; r <= rounds; r++)); do
	for n in "${names[@]}"; do
		one "${pre[$n]}" >>"$work/$n.txt"
	done
done

median() { sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
md=""
emit() { printf '%s\n' "$*"; md+="$*"$'\n'; }
emit "redis-server $(redis-server --version | grep -o 'v=[^ ]*'), \`bench/redis-frag.sh -n $rounds --wait $wait_s\`, $(date -u +%Y-%m-%dT%H:%MZ), mova $(git -C "$repo" rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg); used_memory_rss / used_memory in MiB, medians of $rounds:"
emit ""
emit "| allocator | after fill | after DEL 80% + ${wait_s} s | after refill |"
emit "|---|---|---|---|"
for n in "${names[@]}"; do
	row="| $n"
	for c in 1 3 5; do
		rss=$(awk -v c=$c '{print $c}' "$work/$n.txt" | median)
		used=$(awk -v c=$((c + 1)) '{print $c}' "$work/$n.txt" | median)
		row+=" | $rss / $used"
	done
	emit "$row |"
done
[ -z "$out" ] || printf '%s' "$md" >"$out"
