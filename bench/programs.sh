#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/programs.sh: real programs from Debian under each allocator in turn
# (glibc, jemalloc, mimalloc, tcmalloc and libmova-preload.so), interleaved
# round by round by ../shared/tools/vs-peers (or $VS_PEERS): median wall time
# and peak RSS, with ratios against jemalloc. The workloads are those of
# tests/preload/run-programs.sh, made larger so that they run for seconds
# (python and SQL: tests/preload/workloads/, at their "bench" size).
#
# usage: bench/programs.sh [-n ROUNDS] [--lib PATH] [--only python,sqlite,git,redis]
#                          [--add NAME=PATH]... [--peers a,b,...] [--out FILE.md]
#   --lib   the preload library (default: build-bench/lib/libmova-preload.so,
#           else build/lib/libmova-preload.so)
#   --add   another preload library to run beside them (a before/after:
#           --add old=../old/build/lib/libmova-preload.so)
#   --peers run only these (glibc, jemalloc, mimalloc, tcmalloc, mova, the
#           names given to --add)
#   --out   also write the tables as markdown to FILE.md
# Needs python3, sqlite3, git, redis-server/redis-benchmark and GNU time
# (tools/deps installs them). Peak RSS is the largest process of the command
# (GNU time's %M): for redis, the server.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=3 lib="" only="python,sqlite,git,redis" out="" peers="" adds=()
while [ $# -gt 0 ]; do
	case $1 in
	-n) rounds=$2; shift ;;
	--lib) lib=$2; shift ;;
	--only) only=$2; shift ;;
	--out) out=$2; shift ;;
	--add) adds+=(--add "$2"); shift ;;
	--peers) peers=$2; shift ;;
	-h | --help) sed -n '3,22p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "programs.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
vs=${VS_PEERS:-$repo/../shared/tools/vs-peers}
[ -x "$vs" ] || { echo "programs.sh: vs-peers not found at $vs (set VS_PEERS)" >&2; exit 2; }
if [ -z "$lib" ]; then
	for l in "$repo/build-bench/lib/libmova-preload.so" "$repo/build/lib/libmova-preload.so"; do
		[ -f "$l" ] && { lib=$l; break; }
	done
fi
[ -f "$lib" ] || { echo "programs.sh: no libmova-preload.so (build first, or --lib)" >&2; exit 2; }
lib=$(readlink -f "$lib")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# python3: dicts, strings, lists, json and threads, through malloc
cat >"$work/python.sh" <<EOF
PYTHONMALLOC=malloc exec /usr/bin/python3 $repo/tests/preload/workloads/work.py bench
EOF

# sqlite3: a generated table, indexed, deleted from, updated and queried
{
	echo "PRAGMA cache_size = -65536;"
	sed "s/@ROWS@/600000/" "$repo/tests/preload/workloads/work.sql"
} >"$work/work.sql"
cat >"$work/sqlite.sh" <<EOF
rm -f $work/s.db; sqlite3 $work/s.db <$work/work.sql
EOF

# git: a repository of many commits, then gc --aggressive and fsck
cat >"$work/git.sh" <<EOF
set -e
rm -rf $work/repo; mkdir $work/repo; cd $work/repo
export GIT_AUTHOR_NAME=m GIT_AUTHOR_EMAIL=m@x GIT_COMMITTER_NAME=m GIT_COMMITTER_EMAIL=m@x
git init -q
for i in \$(seq 1 200); do
	seq "\$i" \$((i * 60)) >"f\$((i % 17))"; printf '%0*d\n' \$((i * 50)) "\$i" >"g\$((i % 5))"
	git add -A; git commit -qm "commit \$i"
done
git gc -q --aggressive; git fsck --full --strict; git repack -adq
[ "\$(git rev-list --count HEAD)" = 200 ]
EOF

# redis: a server on 127.0.0.1 and redis-benchmark SET/GET/LPUSH, 16 B .. 16 KiB
cat >"$work/redis.sh" <<EOF
# below the ephemeral range (32768 ..), which the clients' own ports come from
port=\$((20000 + RANDOM % 12000))
redis-server --bind 127.0.0.1 --port \$port --save '' --appendonly no --daemonize no \
	--logfile $work/redis.log &
pid=\$!
trap 'kill \$pid 2>/dev/null; wait \$pid 2>/dev/null' EXIT
up=0
for _ in \$(seq 100); do redis-cli -p \$port ping >/dev/null 2>&1 && { up=1; break; }; sleep 0.05; done
[ \$up = 1 ] || { echo "redis-server did not start on port \$port" >&2; exit 1; }
for size in 16 256 4096 16384; do
	timeout 300 redis-benchmark -h 127.0.0.1 -p \$port -q -n 50000 -c 20 -d \$size -r 20000 -t set,get,lpush >/dev/null
done
redis-cli -p \$port shutdown nosave >/dev/null 2>&1
wait \$pid
EOF

md=""
emit() { printf '%s\n' "$*"; md+="$*"$'\n'; }
emit "Real programs under each allocator (\`bench/programs.sh -n $rounds\`, $(date -u +%Y-%m-%dT%H:%MZ), mova $(git -C "$repo" rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg)); medians of $rounds rounds, ratios against jemalloc (lower is better)."
for w in ${only//,/ }; do
	[ -f "$work/$w.sh" ] || { echo "programs.sh: unknown workload $w" >&2; exit 2; }
	emit ""
	emit "### $w"
	emit ""
	emit '```'
	table=$(timeout 1800 "$vs" -n "$rounds" --add mova="$lib" ${adds[@]+"${adds[@]}"} \
		${peers:+--only "$peers"} -- bash "$work/$w.sh" 2>&1)
	emit "$table"
	emit '```'
done
[ -z "$out" ] || printf '%s' "$md" >"$out"
