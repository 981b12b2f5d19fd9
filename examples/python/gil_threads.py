"""CPU-bound Python threads: `python3 gil_threads.py [THREADS] [SECONDS]`. Under CPython's GIL
they take turns on one core however many there are."""
import sys
import threading
import time

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 2


def work():
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        for i in range(1_000):
            total = (total * 31 + i) % 1_000_003


pool = [threading.Thread(target=work) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
print(f"gil_threads: {threads} threads done")
