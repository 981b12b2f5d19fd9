"""Sequential HTTP requests: `python3 http_client.py URL [COUNT]`, one after the other with
urllib (blocking sockets): I/O-bound on the network when the server is slow."""
import sys
import urllib.request

url = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10


def fetch(address):
    with urllib.request.urlopen(address) as response:
        return response.read()


for _ in range(count):
    fetch(url)
print(f"http_client: {count} requests done")
