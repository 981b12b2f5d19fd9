"""Fixed CPU work in chunks, timed from inside: `python3 paced_work.py THREADS SECONDS OUT`.

THREADS threads wait on an Event while the main thread runs chunks of 200 000 steps of a
pure-Python loop for SECONDS, then writes the wall-clock time (time.time()) at which each
chunk ended to OUT, one per line. bench/run.sh row 7 attaches to it with and without stacks
in turns: the chunks' durations in each stretch compare its speed within one process (runs of
a CPython program differ by several percent from one process to the next)."""
import sys
import threading
import time

threads = int(sys.argv[1])
seconds = float(sys.argv[2])
out = sys.argv[3]

release = threading.Event()
idle = [threading.Thread(target=release.wait) for _ in range(threads)]
for thread in idle:
    thread.start()


def chunk(steps=200_000):
    total = 0
    for i in range(steps):
        total = (total * 31 + i) % 1_000_003
    return total


ends = []
deadline = time.time() + seconds
while time.time() < deadline:
    chunk()
    ends.append(time.time())
release.set()
for thread in idle:
    thread.join()
with open(out, "w") as f:
    f.write("".join(f"{t:.6f}\n" for t in ends))
