"""A hostile name server for tests (loopback only, stops after a time limit).

UDP: every query gets NXDOMAIN. TCP on the same port: a listener whose
backlog is full and that never accepts, so a TCP connect to it hangs (as
behind a firewall that drops TCP 53). Prints the port, then serves.
usage: _hostile_dns.py SECONDS
"""
import socket
import sys
import threading
import time

from _loopback_pair import bind_pair

limit = float(sys.argv[1]) if len(sys.argv) > 1 else 60
udp, tcp, port = bind_pair(reuse=False)
tcp.listen(0)
fill = []
for _ in range(3):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    fill.append(c)


def serve():
    while True:
        data, peer = udp.recvfrom(4096)
        if len(data) < 12:
            continue
        # Same ID and question; QR, RD, RA; RCODE 3 (NXDOMAIN); no answers.
        flags = bytes([0x80 | (data[2] & 0x01), 0x83])
        udp.sendto(data[:2] + flags + data[4:6] + b"\0\0\0\0\0\0" + data[12:], peer)


threading.Thread(target=serve, daemon=True).start()
print(port, flush=True)
time.sleep(limit)
