"""A CPU job on a process pool: `python3 process_pool.py [TASKS] [PROCESSES]`.

multiprocessing.Pool(PROCESSES) maps TASKS pieces of fixed work: already parallel on the
cores it was given."""
import multiprocessing
import sys

tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 8
processes = int(sys.argv[2]) if len(sys.argv) > 2 else 2


def checksum(seed):
    total = seed
    for i in range(1_500_000):
        total = (total * 31 + i) % 1_000_003
    return total


if __name__ == "__main__":
    with multiprocessing.Pool(processes) as pool:
        results = pool.map(checksum, range(tasks))
    print(f"process_pool: {tasks} tasks on {processes} processes")
