"""An asyncio program whose coroutines block the event loop: `python3 blocked_loop.py [ROUNDS]`.

Each round, three coroutines run side by side: one calls time.sleep (a blocking call inside a
coroutine), one computes without awaiting, one awaits asyncio.sleep as it should. The loop
thread is blocked for most of the run: "a task that never yields blocks the whole loop"."""
import asyncio
import sys
import time

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6


async def handler():
    time.sleep(0.25)


def crunch_numbers(n):
    total = 0
    for i in range(n):
        total = (total * 31 + i) % 1_000_003
    return total


async def crunch():
    crunch_numbers(2_000_000)


async def polite():
    await asyncio.sleep(0.1)


async def main():
    for _ in range(rounds):
        await asyncio.gather(handler(), crunch(), polite())


asyncio.run(main())
print(f"blocked_loop: {rounds} rounds done")
