#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/programs.sh: real programs from Debian under each allocator in turn
# (glibc, jemalloc, mimalloc, tcmalloc and libmova-preload.so), interleaved
# round by round by ../shared/tools/vs-peers (or $VS_PEERS): median wall time
# and peak RSS, with ratios against jemalloc. The workloads are those of
# tests/preload/run-programs.sh, made larger so that they run for seconds.
#
# usage: bench/programs.sh [-n ROUNDS] [--lib PATH] [--only python,sqlite,git,redis]
#                          [--out FILE.md]
#   --lib   the preload library (default: build-bench/lib/libmova-preload.so,
#           else build/lib/libmova-preload.so)
#   --out   also write the tables as markdown to FILE.md
# Needs python3, sqlite3, git, redis-server/redis-benchmark and GNU time
# (tools/deps installs them). Peak RSS is the largest process of the command
# (GNU time's %M): for redis, the server.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=3 lib="" only="python,sqlite,git,redis" out=""
while [ $# -gt 0 ]; do
	case $1 in
	-n) rounds=$2; shift ;;
	--lib) lib=$2; shift ;;
	--only) only=$2; shift ;;
	--out) out=$2; shift ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
cat >"$work/work.py" <<'PY'
import threading, hashlib, json, random
random.seed(7)
d = {}
for r in range(3):
    for i in range(300000):
        d["k%d-%d" % (r, i)] = "v" * (i % 300) + str(i)
    for i in range(0, 300000, 3):
        del d["k%d-%d" % (r, i)]
lists = [[random.random() for _ in range(100)] for _ in range(8000)]
text = "".join(chr(32 + (i * 7919) % 90) for i in range(600000))
words = sorted(set(text[i:i + 5] for i in range(0, len(text) - 5, 3)))
results = [None] * 4
def work(n):
    acc = hashlib.sha256()
    local = {}
    for i in range(120000):
        s = json.dumps({"n": n, "i": i, "pad": "x" * (i % 700)})
        local[i % 5000] = s
        acc.update(s.encode())
    results[n] = acc.hexdigest()
ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
print(len(d), len(words), *results)
PY
cat >"$work/python.sh" <<EOF
PYTHONMALLOC=malloc exec /usr/bin/python3 $work/work.py
EOF

# sqlite3: a generated table, indexed, deleted from, updated and queried
cat >"$work/work.sql" <<'SQL'
PRAGMA cache_size = -65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, grp INT, name TEXT, payload BLOB);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 600000)
INSERT INTO t SELECT x, x % 97, 'name-' || (x * 7919 % 100003), zeroblob(x % 700) FROM c;
CREATE INDEX t_grp ON t(grp, name);
DELETE FROM t WHERE id % 5 = 0;
UPDATE t SET name = name || '-' || id WHERE id % 7 = 0;
SELECT count(*), sum(length(payload)), sum(id) FROM t;
SELECT grp, count(*), max(name), sum(length(payload)) FROM t GROUP BY grp ORDER BY grp LIMIT 12;
SELECT count(DISTINCT name) FROM t;
SELECT name FROM t WHERE grp = 42 ORDER BY name DESC LIMIT 5;
SQL
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
	table=$(timeout 1800 "$vs" -n "$rounds" --add mova="$lib" -- bash "$work/$w.sh" 2>&1)
	emit "$table"
	emit '```'
done
[ -z "$out" ] || printf '%s' "$md" >"$out"
