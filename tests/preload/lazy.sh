#!/usr/bin/env bash
# lazy.sh PRELOAD_LIB LAZY_EXE: the program lazy.c under the preload library,
# then setpriv, which changes credentials (a setxid broadcast to every
# thread: it aborted while kcompactd was started from the constructor).
set -uo pipefail
lib=$(readlink -f "$1")
exe=$2
fail=0
LD_PRELOAD="$lib" "$exe" || fail=1
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ] &&
	setpriv --reuid=65534 --regid=65534 --clear-groups /bin/true 2>/dev/null; then
	if LD_PRELOAD="$lib" setpriv --reuid=65534 --regid=65534 --clear-groups /bin/true; then
		echo "lazy.sh: setpriv --reuid/--regid under the preload library: ok"
	else
		echo "lazy.sh: setpriv --reuid/--regid failed under the preload library"
		fail=1
	fi
else
	echo "lazy.sh: setpriv cannot change credentials here (not root?): skipped"
fi
exit $fail
