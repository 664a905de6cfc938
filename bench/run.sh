#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh: build the benchmarks, run the micro and macro suites for mova
# and every peer found (each in its own processes, the allocators interleaved
# round by round), and write docs/BENCHMARKS.md with its plots and raw JSON.
#
# usage: bench/run.sh [--smoke | --quick | --full] [--rounds N] [--only a,b,...]
#                     [--build-dir DIR] [--no-build] [--report-only]
#   --quick   (default) under two minutes: micro 2 rounds at 0.03 s per benchmark,
#             macro once, at full size (a million objects in the fragmentation workload)
#   --full    micro 5 rounds at 0.5 s, macro 3 rounds; longer windows
#   --smoke   tiny sizes and iteration counts, under a minute: what CI runs so the
#             suite cannot rot; writes its report under bench/results/smoke/, never
#             into docs/, and fails when any run fails
#   --rounds N    micro and macro rounds
#   --only LIST   allocators to run (mova, glibc, jemalloc, mimalloc, tcmalloc,
#                 mova-preload when lib/libmova-preload.so is built, mova-plain or
#                 mova-secure: mova at the other -Dsecure level, micro suite only)
#   --build-dir   where to build (default: build-bench in the repository, git-ignored;
#                 also BENCH_BUILD_DIR)
#   --report-only regenerate the report and plots from bench/results/MODE/
# Raw results go to bench/results/MODE/ (git-ignored); quick and full also copy
# them, merged, to docs/benchmarks/results.json.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmd="bench/run.sh$(printf ' %q' "$@")"
mode=quick
rounds=""
only=""
build=${BENCH_BUILD_DIR:-$repo/build-bench}
do_build=1
report_only=0
while [ $# -gt 0 ]; do
	case $1 in
	--smoke | --quick | --full) mode=${1#--} ;;
	--rounds) rounds=$2; shift ;;
	--only) only=$2; shift ;;
	--build-dir) build=$2; shift ;;
	--no-build) do_build=0 ;;
	--report-only) report_only=1 do_build=0 ;;
	-h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done

case $mode in
smoke) min_time=0.001 micro_rounds=1 macro_rounds=1 scale=smoke limit=120 ;;
quick) min_time=0.03 micro_rounds=2 macro_rounds=1 scale=quick limit=600 ;;
full) min_time=0.5 micro_rounds=5 macro_rounds=3 scale=full limit=1800 ;;
esac
if [ -n "$rounds" ]; then
	micro_rounds=$rounds
	macro_rounds=$rounds
fi

start=$(date +%s)
log() { printf '[%4ss] %s\n' "$(($(date +%s) - start))" "$*"; }

# ------------------------------------------------------------------ build
if [ $do_build = 1 ]; then
	if [ ! -f "$build/build.ninja" ]; then
		log "configuring $build"
		meson setup "$build" "$repo" -Dbench=enabled -Dtests=disabled --buildtype=release \
			>/dev/null
	fi
	log "building"
	ninja -C "$build" >/dev/null
fi
bindir=$build/bench
[ -x "$bindir/bench-report" ] || { echo "run.sh: $bindir/bench-report missing: build first" >&2; exit 1; }

# ------------------------------------------------------------------ allocators
# name -> how to run it: an executable suffix, and what to preload
declare -A suffix preload
# mova-plain / mova-secure: mova at the other free-list hardening level
# (meson -Dsecure), micro suite only, for the report's secure / plain figure
for a in mova mova-plain mova-secure glibc jemalloc mimalloc tcmalloc; do
	if [ -x "$bindir/bench-micro-$a" ]; then
		suffix[$a]=$a
		preload[$a]=""
	fi
done
if [ -f "$build/lib/libmova-preload.so" ]; then
	suffix[mova-preload]=glibc
	preload[mova-preload]=$build/lib/libmova-preload.so
fi
allocs=()
for a in mova mova-plain mova-secure glibc jemalloc mimalloc tcmalloc mova-preload; do
	[ -n "${suffix[$a]:-}" ] || continue
	if [ -n "$only" ] && [[ ",$only," != *",$a,"* ]]; then
		continue
	fi
	allocs+=("$a")
done
[ ${#allocs[@]} -gt 0 ] || { echo "run.sh: no allocator to run" >&2; exit 1; }
log "mode $mode: ${allocs[*]}; micro ${micro_rounds} round(s), macro ${macro_rounds}"

# ------------------------------------------------------------------ output
res=$repo/bench/results/$mode
if [ $report_only = 1 ]; then
	[ -f "$res/command.txt" ] || { echo "run.sh: no results in $res" >&2; exit 1; }
	cmd=$(cat "$res/command.txt")
	micro_rounds=0
	macro_rounds=0
else
	rm -rf "$res"
	mkdir -p "$res/logs" "$res/series"
	: >"$res/failures.txt"
	echo "$cmd" >"$res/command.txt"
fi
[ $report_only = 1 ] || {
	echo "mova $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- lib include 2>/dev/null || echo ' (with uncommitted changes in lib/ or include/)')"
	dpkg-query -W -f='${Package} ${Version}\n' libc6 libjemalloc2 libmimalloc2.0 \
		libtcmalloc-minimal4 libbenchmark1debian gcc 2>/dev/null || true
} >"$res/versions.txt"

# run ALLOC SUITE OUTNAME [ARGS...]: one process; failures are recorded, not fatal
run() {
	local a=$1 suite=$2 out=$3
	shift 3
	local exe=$bindir/bench-$suite-${suffix[$a]} rc=0
	local vars=(BENCH_SCALE="$scale" BENCH_SERIES_DIR="$res/series")
	[ -n "${preload[$a]}" ] && vars+=(LD_PRELOAD="${preload[$a]}")
	env "${vars[@]}" timeout "$limit" "$exe" \
		--benchmark_min_time="$min_time" --benchmark_out="$res/$out.json" \
		--benchmark_out_format=json "$@" >"$res/logs/$out.log" 2>&1 || rc=$?
	if [ $rc != 0 ]; then
		local why="exit status $rc"
		[ $rc -gt 128 ] && why="killed by signal $((rc - 128))"
		[ $rc = 124 ] && why="timed out after ${limit}s"
		log "  FAILED: $a $suite $* ($why)"
		{
			echo "$a: bench-$suite $* : $why; last lines of bench/results/$mode/logs/$out.log:"
			tail -n 3 "$res/logs/$out.log" | sed 's/^/    /'
		} >>"$res/failures.txt"
	fi
}

# ------------------------------------------------------------------ micro
for ((r = 1; r <= micro_rounds; r++)); do
	for a in "${allocs[@]}"; do
		log "micro round $r: $a"
		run "$a" micro "micro-$a-r$r"
	done
done

# ------------------------------------------------------------------ macro
# one process per benchmark, so no workload inherits another's heap and a
# crash costs one figure
for ((r = 1; r <= macro_rounds; r++)); do
	for a in "${allocs[@]}"; do
		[ -x "$bindir/bench-macro-${suffix[$a]}" ] || continue # micro only
		mapfile -t names < <("$bindir/bench-macro-${suffix[$a]}" --benchmark_list_tests=true 2>/dev/null)
		for n in "${names[@]}"; do
			log "macro round $r: $a $n"
			run "$a" macro "macro-$a-${n//\//_}-r$r" --benchmark_filter="^$n\$"
		done
	done
done

# ------------------------------------------------------------------ whole programs
# smoke: each workload of wp.c once, tiny, under the preload library (they
# must not rot, and mova must survive them); otherwise bench/wp.sh runs them
# under every allocator and its table joins the report below
wp_md=""
if [ $report_only = 1 ]; then
	[ -f "$res/wp.md" ] && wp_md=$res/wp.md # the run's own table, not a new run
elif [ -x "$bindir/bench-wp" ] && [ -n "${preload[mova-preload]:-}" ]; then
	if [ $mode = smoke ]; then
		for w in tight tight1 mixed larson prodcons lifetimes falseshare largechurn randstep tlb; do
			log "whole program (smoke): $w under mova-preload"
			if ! LD_PRELOAD=${preload[mova-preload]} timeout $limit "$bindir/bench-wp" $w 2 0.01 \
				>"$res/wp-$w.log" 2>&1; then
				echo "bench-wp $w (mova-preload): failed, $res/wp-$w.log" >>"$res/failures.txt"
			fi
		done
	else
		wp_md=$res/wp.md
		log "whole programs: bench/wp.sh -n $macro_rounds"
		BENCH_WP_BIN=$bindir/bench-wp BENCH_WP_LIB=${preload[mova-preload]} \
			BENCH_WP_REV="$(head -1 "$res/versions.txt" | cut -d' ' -f2-)" \
			"$repo/bench/wp.sh" -n "$macro_rounds" --out "$wp_md" >/dev/null || wp_md=""
	fi
fi

# ------------------------------------------------------------------ huge pages
# bench/thp.c: thp=never beside the default in one process (mova only);
# smoke: tiny, must not fail; otherwise its table joins the report below
thp_txt=""
if [ -x "$bindir/bench-thp" ] && [[ -z "$only" || ",$only," == *",mova,"* ]]; then
	case $mode in
	smoke) thp_args=(1 0.01) ;;
	quick) thp_args=(1 0.25) ;;
	full) thp_args=("$macro_rounds" 1) ;;
	esac
	if [ $report_only = 1 ]; then
		[ -f "$res/thp.args" ] && read -ra thp_args <"$res/thp.args"
	else
		echo "${thp_args[*]}" >"$res/thp.args"
		log "huge pages: bench-thp ${thp_args[*]}"
		if ! timeout "$limit" "$bindir/bench-thp" "${thp_args[@]}" >"$res/thp.txt" 2>&1; then
			echo "mova: bench-thp ${thp_args[*]} : failed; bench/results/$mode/thp.txt" \
				>>"$res/failures.txt"
			rm -f "$res/thp.txt"
		fi
	fi
	[ -f "$res/thp.txt" ] && thp_txt=$res/thp.txt
fi

# ------------------------------------------------------------------ report
if [ $mode = smoke ]; then
	md=$res/BENCHMARKS.md
	data=$res/benchmarks
else
	md=$repo/docs/BENCHMARKS.md
	data=$repo/docs/benchmarks
	# everything this script wrote; programs.md is bench/programs.sh's,
	# redis-frag.md bench/redis-frag.sh's
	[ -d "$data" ] && find "$data" -mindepth 1 -maxdepth 1 ! -name programs.md \
		! -name redis-frag.md -exec rm -rf {} +
fi
mkdir -p "$data/series"
log "report: $md"
"$bindir/bench-report" --results "$res" --out "$md" --data "$data" --mode "$mode" \
	--command "$cmd" --versions "$res/versions.txt" --failures "$res/failures.txt"
cp "$res"/series/*.dat "$data/series/" 2>/dev/null || true
if [ -n "$wp_md" ] && [ -f "$wp_md" ]; then
	{
		printf '\n## Whole programs\n\n'
		printf 'bench/wp.c, run by bench/wp.sh under each allocator through LD_PRELOAD\n'
		printf '(GNU time: wall seconds and peak RSS of the whole process).\n\n'
		cat "$wp_md"
	} >>"$md"
	cp "$wp_md" "$data/wp.md"
fi
if [ -n "$thp_txt" ]; then
	{
		printf '\n## Huge pages\n\n'
		printf 'bench/thp.c (`bench-thp %s`): each workload in a fresh arena with thp=never and\n' \
			"${thp_args[*]}"
		printf 'with the default (madvise), interleaved; median seconds, never / default, and\n'
		printf 'the AnonHugePages seen. frag: the share of live bytes on huge pages after\n'
		printf 'mova_compact, and resident / live then.\n\n'
		printf '```\n'
		cat "$thp_txt"
		printf '```\n'
	} >>"$md"
	cp "$thp_txt" "$data/thp.txt"
fi

if command -v gnuplot >/dev/null; then
	files="" titles=""
	for a in "${allocs[@]}"; do
		for v in malloc handles handles_kcompactd; do
			f=$data/series/frag-$v-$a.dat
			[ -f "$f" ] || continue
			files+="$f "
			if [ "$v" = malloc ]; then titles+="$a "; else titles+="$a-$v "; fi
		done
	done
	if [ -n "$files" ]; then
		gnuplot -e "files='$files'; titles='$titles'; out='$data/frag-resident.png'" \
			"$repo/bench/frag.gp"
	fi
	ncols=$(($(wc -l <"$data/throughput.columns") + 1))
	gnuplot -e "data='$data/throughput.dat'; ncols=$ncols; out='$data/throughput.png'" \
		"$repo/bench/throughput.gp"
	rm -f "$data/throughput.columns"
else
	log "gnuplot not found (Debian: gnuplot-nox): no plots"
fi

nfail=$(grep -c ': bench-' "$res/failures.txt" || true)
log "done: $md ($nfail failed run(s))"
if [ "$mode" = smoke ] && [ "$nfail" != 0 ]; then
	cat "$res/failures.txt" >&2
	exit 1
fi
