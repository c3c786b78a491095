# jit.py - PyPy's tracing JIT: N generated functions of a hot loop each,
# run three times, so that the JIT compiles a few MiB of machine code into
# its RWX chunks.  Prints the sum; with "wait", then "pid P", and waits for
# a line on stdin (tests/e2e/engines_more.sh reads its smaps meanwhile).
import os
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
fs = []
for j in range(n):
    src = ("def f(k):\n    s = 0\n    for i in range(k):\n"
           "        s += (i %% %d) * %d ^ (i >> %d)\n    return s\n") % (j % 7 + 2, j, j % 5)
    d = {}
    exec(src, d)
    fs.append(d["f"])
t = 0
for r in range(3):
    for f in fs:
        t += f(3000)
print(t)
if len(sys.argv) > 2 and sys.argv[2] == "wait":
    print("pid %d" % os.getpid())
    sys.stdout.flush()
    sys.stdin.readline()
