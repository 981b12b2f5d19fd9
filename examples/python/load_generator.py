"""A load generator for a line server: `python3 load_generator.py HOST:PORT [CLIENTS] [SECONDS] [reconnect]`.

CLIENTS connections each send a line and wait for its answer, again and again, for SECONDS;
then it prints `rps = N` (answers per second over all connections). With `reconnect`, each
client opens a new connection for every line (a server that answers one request per
connection, as HTTP/1.0 does, such as examples/python/sync_server.py)."""
import asyncio
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 20
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3
reconnect = len(sys.argv) > 4 and sys.argv[4] == "reconnect"


async def client(deadline, counts):
    reader, writer = await asyncio.open_connection(host, int(port))
    while time.monotonic() < deadline:
        writer.write(b"ping\n")
        await writer.drain()
        if not await reader.readline():
            break
        counts[0] += 1
        if reconnect:
            writer.close()
            reader, writer = await asyncio.open_connection(host, int(port))
    writer.close()


async def main():
    counts = [0]
    start = time.monotonic()
    deadline = start + seconds
    await asyncio.gather(*(client(deadline, counts) for _ in range(clients)))
    print(f"rps = {counts[0] / (time.monotonic() - start):.1f}")


asyncio.run(main())
