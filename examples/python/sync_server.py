"""A synchronous pre-fork line server with two workers whose handler sleeps 20 ms:
`python3 sync_server.py PORTFILE [processes|threads] [SECONDS]`.

Each worker accepts a connection, reads one line, sleeps 20 ms (time.sleep: the handler's
wait, as a database call would be), answers the line and closes the connection, like an
HTTP/1.0 server; examples/python/load_generator.py connects again for the next request. With
`processes` the workers are two forked processes sharing the listener (gunicorn's sync
worker); with `threads`, two threads of one process. At most 2 / 20 ms = 100 requests a
second are served: more clients queue at the listener. It listens on 127.0.0.1 on a free
port, writes the port to PORTFILE, and serves for SECONDS (default 30)."""
import os
import socket
import sys
import threading
import time

port_file = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "processes"
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30
WORKERS = 2

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
deadline = time.monotonic() + seconds


def handle(conn):
    with conn:
        line = conn.makefile("rb").readline()
        if line:
            time.sleep(0.02)
            conn.sendall(line)


def worker(parent):
    # Wakes every 200 ms to see whether its parent is gone (killed by a test).
    listener.settimeout(0.2)
    while time.monotonic() < deadline and os.getppid() == parent:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        handle(conn)


parent = os.getpid()
if mode == "processes":
    children = []
    for _ in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            worker(parent)
            os._exit(0)
        children.append(pid)
else:
    for _ in range(WORKERS):
        threading.Thread(target=worker, args=(os.getppid(),), daemon=True).start()

with open(port_file + ".tmp", "w") as f:
    f.write(str(listener.getsockname()[1]))
os.replace(port_file + ".tmp", port_file)
time.sleep(max(0.0, deadline - time.monotonic()))
