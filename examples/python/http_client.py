"""Sequential HTTP requests: `python3 http_client.py URL [COUNT]`, one after the other with
urllib (blocking sockets): I/O-bound on the network when the server is slow."""
import sys
import urllib.request

url = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10
for _ in range(count):
    with urllib.request.urlopen(url) as response:
        response.read()
print(f"http_client: {count} requests done")
