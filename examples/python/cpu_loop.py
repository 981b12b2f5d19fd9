"""A single-threaded CPU loop: `python3 cpu_loop.py [SECONDS]` (CPU-bound; GIL or not, one core).
`python3 cpu_loop.py --work ROUNDS` runs a fixed amount of work instead (ROUNDS x 10,000
iterations, about a millisecond each): the CPU it takes does not depend on the machine's load."""
import sys
import time

args = sys.argv[1:]
work = int(args[1]) if args[:1] == ["--work"] else None
end = time.monotonic() + float(args[0] if args and work is None else 2)
total = 0
rounds = 0
while (rounds < work) if work is not None else (time.monotonic() < end):
    for i in range(10_000):
        total = (total * 31 + i) % 1_000_003
    rounds += 1
print("cpu_loop: done")
