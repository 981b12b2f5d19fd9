"""An asyncio line server whose handler waits 30 ms per request:
`python3 sleepy_server.py PORTFILE [blocking|async|subprocess] [SECONDS]`.

`blocking` waits with time.sleep (a synchronous call inside a coroutine: it blocks the whole
event loop, so requests are served one at a time); `async` waits with await asyncio.sleep
(the loop serves the others meanwhile); `subprocess` runs `sleep 0.03` with subprocess.run,
capturing its output (it polls the child's pipes with a selector of its own, and blocks the
loop as time.sleep does). It listens on 127.0.0.1 on a free port, writes the
port to PORTFILE, and serves for SECONDS (default 30)."""
import asyncio
import subprocess
import sys
import time

port_file = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "blocking"
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30


async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        if mode == "blocking":
            time.sleep(0.03)
        elif mode == "subprocess":
            subprocess.run(["sleep", "0.03"], capture_output=True)
        else:
            await asyncio.sleep(0.03)
        writer.write(line)
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    import os

    os.replace(port_file + ".tmp", port_file)
    async with server:
        await asyncio.sleep(seconds)


asyncio.run(main())
