"""A slow local server on a Unix socket: answers each line after DELAY seconds (a database's
stand-in for tests). Usage: unix_echo_server.py PATH DELAY. Prints "ready" when listening."""
import os
import socket
import sys
import threading
import time

path, delay = sys.argv[1], float(sys.argv[2])
if os.path.exists(path):
    os.unlink(path)
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
server.listen(16)
print("ready", flush=True)


def serve(conn):
    with conn, conn.makefile("rwb") as stream:
        for line in stream:
            time.sleep(delay)
            stream.write(line)
            stream.flush()


while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
