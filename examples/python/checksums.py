"""Fixed CPU work, serial or on a process pool: `python3 checksums.py [TASKS] [PROCESSES]`.

TASKS pieces of the same pure-Python checksum; with PROCESSES > 1 they go to a
multiprocessing.Pool of that size, else they run one after another in this process. The
work is the same either way, so the wall times compare."""
import multiprocessing
import sys

tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 16
processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1


def checksum(seed):
    total = seed
    for i in range(1_000_000):
        total = (total * 31 + i) % 1_000_003
    return total


if __name__ == "__main__":
    if processes > 1:
        with multiprocessing.Pool(processes) as pool:
            results = pool.map(checksum, range(tasks))
    else:
        results = [checksum(seed) for seed in range(tasks)]
    print(f"checksums: {tasks} tasks on {processes} process(es), {sum(results) % 1000}")
