"""A healthy asyncio client: `python3 async_client.py HOST:PORT [REQUESTS] [IN_FLIGHT]`.

Opens IN_FLIGHT connections to a line server (one `ping` line, one answer line per request)
and keeps IN_FLIGHT requests outstanding with asyncio.gather: already async, already
overlapping its waits."""
import asyncio
import sys

host, port = sys.argv[1].rsplit(":", 1)
requests = int(sys.argv[2]) if len(sys.argv) > 2 else 40
in_flight = int(sys.argv[3]) if len(sys.argv) > 3 else 10


async def worker(count):
    reader, writer = await asyncio.open_connection(host, int(port))
    for _ in range(count):
        writer.write(b"ping\n")
        await writer.drain()
        await reader.readline()
    writer.close()
    await writer.wait_closed()


async def main():
    share = [requests // in_flight + (1 if i < requests % in_flight else 0) for i in range(in_flight)]
    await asyncio.gather(*(worker(n) for n in share if n))


asyncio.run(main())
print(f"async_client: {requests} requests, {in_flight} in flight")
