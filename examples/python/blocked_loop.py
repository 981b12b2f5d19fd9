"""An asyncio program whose coroutines block the event loop: `python3 blocked_loop.py [ROUNDS]`.

Each round runs three coroutines together on one loop: one calls time.sleep(0.25) (a blocking
sleep inside a coroutine: it should be `await asyncio.sleep(0.25)`), one computes 2 million
iterations without awaiting, and one sends a line to a small echo server on loopback (started
on the same loop, answering after `await asyncio.sleep(0.1)`) and awaits the answer. The loop
has one thread: while a coroutine sleeps or computes, nothing else on it runs, so the round
takes the sum of the three instead of the longest.
"""
import asyncio
import sys
import time

ITERATIONS = 2_000_000


async def blocking_sleep():
    time.sleep(0.25)


async def compute():
    total = 0
    for i in range(ITERATIONS):
        total += i * i % 7
    return total


async def answer(reader, writer):
    line = await reader.readline()
    await asyncio.sleep(0.1)
    writer.write(line)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def ask(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    await writer.drain()
    reply = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return reply


async def main(rounds):
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    for _ in range(rounds):
        await asyncio.gather(blocking_sleep(), compute(), ask(port))
    server.close()
    await server.wait_closed()
    print(f"blocked_loop: {rounds} rounds in {time.monotonic() - started:.2f} s")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 4))
