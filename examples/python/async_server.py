"""An asyncio TCP server that nobody calls: `python3 async_server.py [SECONDS]`.

Listens on 127.0.0.1 (any free port) and serves for SECONDS, then exits: idle, a server
waiting for clients."""
import asyncio
import sys

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2


async def serve(reader, writer):
    async for line in reader:
        writer.write(line)
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        await asyncio.sleep(seconds)


asyncio.run(main())
print("async_server: done")
