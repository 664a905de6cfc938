#!/usr/bin/env bash
# run-programs.sh PRELOAD_LIB STRESS_EXE [only]: real programs from Debian under
# LD_PRELOAD=libmova-preload.so, their results checked against the same
# programs under glibc's malloc. Every step is bounded in time; servers
# listen on 127.0.0.1 only and are always stopped.
set -uo pipefail
lib=$(readlink -f "$1")
workloads=$(cd "$(dirname "${BASH_SOURCE[0]}")/workloads" && pwd)
stress=$(readlink -f "$2")
only=${3:-all}
work=$(mktemp -d)
redis_pid=
cleanup() {
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail=0
pass() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
want() { [ "$only" = all ] || [ "$only" = "$1" ]; }
pre() { env LD_PRELOAD="$lib" "$@"; }

if want proof; then
	# the preload library is really in use: its statistics at exit
	out=$(MOVA_CONF=stats_print:1 pre /bin/echo hello 2>&1)
	if grep -q '^hello$' <<<"$out" && grep -q '^buddyinfo:' <<<"$out" &&
		grep -Eq '^pgalloc [1-9]' <<<"$out"; then
		pass "proof: mova's statistics printed at exit, pages were allocated"
	else
		bad "proof: no statistics from mova at exit"; echo "$out" | tail -5
	fi
	# a bad MOVA_CONF is reported, not fatal
	out=$(MOVA_CONF=nosuchkey:1,proactiveness:900 pre sh -c 'echo x' 2>&1)
	if grep -q "unknown key 'nosuchkey'" <<<"$out" && grep -q "bad value '900'" <<<"$out" &&
		grep -q '^x$' <<<"$out"; then
		pass "MOVA_CONF: unknown key and bad value reported, program ran"
	else
		bad "MOVA_CONF diagnostics"; echo "$out"
	fi
fi

if want python; then
	exp=$(PYTHONMALLOC=malloc timeout 120 /usr/bin/python3 "$workloads/work.py" test)
	got=$(PYTHONMALLOC=malloc timeout 120 env LD_PRELOAD="$lib" /usr/bin/python3 "$workloads/work.py" test)
	if [ -n "$exp" ] && [ "$exp" = "$got" ]; then pass "python3: dicts, strings, lists, threads (PYTHONMALLOC=malloc)"
	else bad "python3: got '$got' want '$exp'"; fi
fi

if want sqlite; then
	sed "s/@ROWS@/150000/" "$workloads/work.sql" >"$work/work.sql"
	exp=$(timeout 120 sqlite3 "$work/a.db" <"$work/work.sql")
	got=$(timeout 120 env LD_PRELOAD="$lib" sqlite3 "$work/b.db" <"$work/work.sql")
	if [ -n "$exp" ] && [ "$exp" = "$got" ]; then pass "sqlite3: generated workload, query results equal glibc's"
	else bad "sqlite3: results differ"; diff <(echo "$exp") <(echo "$got") | head; fi
fi

if want git; then
	repo="$work/repo"
	mkdir -p "$repo"
	ok=1
	(
		cd "$repo" && export LD_PRELOAD="$lib" GIT_AUTHOR_NAME=m GIT_AUTHOR_EMAIL=m@x \
			GIT_COMMITTER_NAME=m GIT_COMMITTER_EMAIL=m@x &&
			git init -q && for i in $(seq 1 150); do
			seq "$i" $((i * 40)) >"f$((i % 17))" && printf '%0*d\n' $((i * 50)) "$i" >"g$((i % 5))" &&
				git add -A && git commit -qm "commit $i" || exit 1
		done && git gc -q --aggressive && git fsck --full --strict 2>&1 && git repack -adq &&
			[ "$(git rev-list --count HEAD)" = 150 ]
	) >"$work/git.log" 2>&1 || ok=0
	if [ $ok = 1 ]; then pass "git: 150 commits, gc --aggressive, fsck --full, repack"
	else bad "git"; tail -5 "$work/git.log"; fi
fi

if want redis && command -v redis-server >/dev/null; then
	port=$((20000 + RANDOM % 12000)) # below the ephemeral range, where clients' ports are
	LD_PRELOAD="$lib" redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
		--daemonize no --logfile "$work/redis.log" &
	redis_pid=$!
	for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
	ok=1
	for size in 16 256 4096 16384; do
		timeout 120 redis-benchmark -h 127.0.0.1 -p "$port" -q -n 20000 -c 20 -d "$size" \
			-t set,get,lpush >"$work/bench.$size" 2>&1 || ok=0
	done
	redis-cli -p "$port" set mova-check "$(head -c 10000 /dev/zero | tr '\0' m)" >/dev/null
	[ "$(redis-cli -p "$port" strlen mova-check)" = 10000 ] || ok=0
	[ "$(redis-cli -p "$port" get mova-check | tr -d 'm' | wc -c)" = 1 ] || ok=0
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
	wait "$redis_pid" 2>/dev/null
	redis_pid=
	if [ $ok = 1 ]; then pass "redis: redis-benchmark SET/GET/LPUSH at 16 B .. 16 KiB, values read back"
	else bad "redis"; tail -3 "$work"/bench.*; fi
fi

if want stress; then
	if out=$(timeout 120 env LD_PRELOAD="$lib" "$stress" 8 4); then pass "$out (threads handing pointers to each other, realloc, fork)"
	else bad "stress: $out"; fi
fi
if want ulimit; then
	# under RLIMIT_AS (ulimit -v, issues 17 and 14): nothing is reserved up
	# front, sections are mapped as the arena grows, and programs run
	for kib in 1048576 262144; do
		out=$( (
			ulimit -v $kib || exit 9
			set -e
			pre ls / >/dev/null
			seq 1 100000 | pre sort -R | pre sort -n | tail -1
			PYTHONMALLOC=malloc pre /usr/bin/python3 -c 'import threading
x = [str(i) * 10 for i in range(200000)]
t = threading.Thread(target=lambda: x.append(1)); t.start(); t.join(); print("py", len(x))'
			pre "$stress" 2 4
			# a program that needs 50 MiB (and 20 MiB in one block)
			PYTHONMALLOC=malloc pre /usr/bin/python3 -c 'x = [bytearray(1000) for i in range(50000)]
y = bytearray(20 << 20); print("py50", len(x), len(y) >> 20)'
		) 2>&1)
		rc=$?
		if [ $rc = 0 ] && grep -q '^100000$' <<<"$out" && grep -q '^py 200001$' <<<"$out" &&
			grep -q ' 0 errors' <<<"$out" && grep -q '^py50 50000 20$' <<<"$out"; then
			pass "ulimit -v $kib: ls, sort, python3 with a thread, the threaded stress, 50 MiB in python3"
		else
			bad "ulimit -v $kib (status $rc)"; echo "$out" | tail -5
		fi
	done
fi
exit $fail
