# SPDX-License-Identifier: MIT
# The python3 workload shared by tests/preload/run-programs.sh ("test": about
# a second; it prints a digest of everything it built, compared with glibc's
# run) and bench/programs.sh ("bench": seconds). Dicts, strings, lists, json
# and threads, all through malloc under PYTHONMALLOC=malloc.
import sys, threading, hashlib, json, random

size = sys.argv[1] if len(sys.argv) > 1 else "test"
rounds, nkeys, nlists, ntext, nwork = {
    "test": (1, 200000, 2000, 300000, 40000),
    "bench": (3, 300000, 8000, 600000, 120000),
}[size]
random.seed(7)
d = {}
for r in range(rounds):
    for i in range(nkeys):
        d["k%d-%d" % (r, i)] = "v" * (i % 300) + str(i)
    for i in range(0, nkeys, 3):
        del d["k%d-%d" % (r, i)]
lists = [[random.random() for _ in range(100)] for _ in range(nlists)]
text = "".join(chr(32 + (i * 7919) % 90) for i in range(ntext))
words = sorted(set(text[i:i + 5] for i in range(0, len(text) - 5, 3)))
results = [None] * 4


def work(n):
    acc = hashlib.sha256()
    local = {}
    for i in range(nwork):
        s = json.dumps({"n": n, "i": i, "pad": "x" * (i % 700)})
        local[i % 5000] = s
        acc.update(s.encode())
    results[n] = acc.hexdigest()


ts = [threading.Thread(target=work, args=(n,)) for n in range(4)]
[t.start() for t in ts]
[t.join() for t in ts]
if size == "test":
    h = hashlib.sha256()
    h.update(json.dumps(sorted(d.items())[:1000]).encode())
    h.update(str(round(sum(sum(l) for l in lists), 6)).encode())
    h.update(" ".join(words[:5000]).encode())
    print(len(d), len(words), h.hexdigest(), *results)
else:
    print(len(d), len(words), *results)
