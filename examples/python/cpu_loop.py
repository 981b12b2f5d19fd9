"""A single-threaded CPU loop: `python3 cpu_loop.py [SECONDS]` (CPU-bound; GIL or not, one core)."""
import sys
import time

end = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 2)
total = 0
while time.monotonic() < end:
    for i in range(10_000):
        total = (total * 31 + i) % 1_000_003
print("cpu_loop: done")
