"""A producer and a slow consumer over a Unix socketpair: `python3 socketpair_pipeline.py [CHUNKS]`.

The parent produces 4 KiB chunks as fast as it can; the child (forked) consumes them, pausing
2 ms per chunk. The socket's buffer fills and the producer waits on the consumer: the consumer
is the stage everything waits on."""
import os
import socket
import sys
import time

chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 600
producer, consumer = socket.socketpair()
pid = os.fork()
if pid == 0:
    producer.close()
    received = 0
    while received < chunks * 4096:
        data = consumer.recv(4096)
        if not data:
            break
        received += len(data)
        time.sleep(0.002)
    os._exit(0)
consumer.close()
chunk = b"x" * 4096
for _ in range(chunks):
    producer.sendall(chunk)
producer.shutdown(socket.SHUT_WR)
os.waitpid(pid, 0)
print(f"socketpair_pipeline: {chunks} chunks")
