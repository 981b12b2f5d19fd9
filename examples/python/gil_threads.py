"""CPU-bound Python threads: `python3 gil_threads.py [THREADS] [SECONDS]`. Under CPython's GIL
they take turns on one core however many there are. `python3 gil_threads.py THREADS --work
ROUNDS`: each thread runs a fixed amount of work instead (ROUNDS x 1,000 iterations)."""
import sys
import threading
import time

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
rest = sys.argv[2:]
work = int(rest[1]) if rest[:1] == ["--work"] else None
seconds = float(rest[0]) if rest and work is None else 2


def busy():
    end = time.monotonic() + seconds
    total = 0
    rounds = 0
    while (rounds < work) if work is not None else (time.monotonic() < end):
        for i in range(1_000):
            total = (total * 31 + i) % 1_000_003
        rounds += 1


pool = [threading.Thread(target=busy) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
print(f"gil_threads: {threads} threads done")
