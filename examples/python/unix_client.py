"""A serial client of a local Unix-socket server: REQUESTS round trips, one at a time.
Usage: unix_client.py PATH REQUESTS."""
import socket
import sys

path, requests = sys.argv[1], int(sys.argv[2])
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
    sock.connect(path)
    stream = sock.makefile("rwb")
    for i in range(requests):
        stream.write(b"ping %d\n" % i)
        stream.flush()
        stream.readline()
