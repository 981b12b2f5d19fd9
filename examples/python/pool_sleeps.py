"""A thread pool whose tasks sleep: `python3 pool_sleeps.py [TASKS] [THREADS] [SECONDS]`.

The main thread waits on the futures (a futex) while THREADS workers each sleep SECONDS per
task: one thread waiting for the others, not threads contending on a lock."""
import concurrent.futures
import sys
import time

tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 20
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 4
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2

with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
    list(pool.map(lambda _: time.sleep(seconds), range(tasks)))
print(f"pool_sleeps: {tasks} tasks on {threads} threads")
