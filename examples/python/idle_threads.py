"""Fixed CPU work beside idle threads: `python3 idle_threads.py THREADS MILLIONS`.

THREADS threads wait on an Event while the main thread runs MILLIONS million steps of a
pure-Python loop, then lets them go. The work is fixed, so the wall time measures how fast
it computed (bench/run.sh row 7: the cost of reading its stacks)."""
import sys
import threading

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 100
millions = float(sys.argv[2]) if len(sys.argv) > 2 else 40

release = threading.Event()
idle = [threading.Thread(target=release.wait) for _ in range(threads)]
for thread in idle:
    thread.start()


def work(steps):
    total = 0
    for i in range(steps):
        total = (total * 31 + i) % 1_000_003
    return total


work(int(millions * 1_000_000))
release.set()
for thread in idle:
    thread.join()
