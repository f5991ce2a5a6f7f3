"""A slow name server for tests (loopback only, stops after a time limit).

UDP: every query is answered after DELAY seconds (each in its own thread,
so queries do not queue behind each other): an A query with 192.0.2.1,
any other type with no records (NOERROR). A name that starts with
"forged" gets an answer with the wrong ID first, at once. Prints the port,
then serves.
usage: _slow_dns.py SECONDS DELAY
"""
import struct
import sys
import threading
import time

from _loopback_pair import bind_pair

limit = float(sys.argv[1])
delay = float(sys.argv[2])


def answer(data, wait=None):
    i = 12
    while data[i] != 0:
        i += 1 + data[i]
    end = i + 5
    qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
    rrs = []
    time.sleep(delay if wait is None else wait)
    if qtype == 1:
        rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 1]))
    flags = struct.pack("!BB", 0x84 | (data[2] & 0x01), 0x80)
    return data[:2] + flags + struct.pack("!HHHH", 1, len(rrs), 0, 0) + data[12:end] + b"".join(rrs)


udp, tcp, port = bind_pair(reuse=True)


def one(data, peer):
    try:
        if data[13:19] == b"forged":
            wrong = bytes([data[0] ^ 0x5a, data[1]])
            udp.sendto(wrong + answer(data, 0)[2:], peer)
        udp.sendto(answer(data), peer)
    except Exception:
        pass


def serve():
    while True:
        data, peer = udp.recvfrom(4096)
        if len(data) < 17:
            continue
        threading.Thread(target=one, args=(data, peer), daemon=True).start()


threading.Thread(target=serve, daemon=True).start()
print(port, flush=True)
time.sleep(limit)
