"""HTTP requests from a thread pool: `python3 pool_client.py URL [REQUESTS] [THREADS]`.

concurrent.futures.ThreadPoolExecutor(THREADS) with urllib (blocking sockets); THREADS = 1
makes the same requests one at a time."""
import concurrent.futures
import sys
import urllib.request

url = sys.argv[1]
requests = int(sys.argv[2]) if len(sys.argv) > 2 else 40
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 8


def fetch(_):
    with urllib.request.urlopen(url) as response:
        return len(response.read())


with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
    total = sum(pool.map(fetch, range(requests)))
print(f"pool_client: {requests} requests on {threads} threads, {total} bytes")
