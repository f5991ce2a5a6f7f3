"""A name server for tests whose MX answers are huge (loopback only, stops
after a time limit).

MX for any name under many.example: COUNT records (h0.many.example ...),
over TCP when they do not fit UDP; A for those hosts: ACOUNT addresses
(192.0.2.x, 198.51.100.x ...; none without it). A TXT query for count.test
answers how many queries came so far; an A or AAAA query for a name with
a label "mute" is never answered; a PTR query for an address in
203.0.113.0/24 answers ptr.mute.many.example (so the client name's
forward confirmation never ends); everything else is NXDOMAIN.
usage: _fanout_dns.py SECONDS COUNT [ACOUNT]
"""
import socket
import struct
import sys
import threading
import time

from _loopback_pair import bind_pair

limit = float(sys.argv[1])
count = int(sys.argv[2])
acount = int(sys.argv[3]) if len(sys.argv) > 3 else 0
asked = 0


def qname_end(data):
    i = 12
    while data[i] != 0:
        i += 1 + data[i]
    return i + 1


def answer(data, udp):
    global asked
    asked += 1
    end = qname_end(data)
    labels, i = [], 12
    while data[i] != 0:
        labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace").lower())
        i += 1 + data[i]
    name = ".".join(labels)
    qtype = struct.unpack("!H", data[end:end + 2])[0]
    question = data[12:end + 4]
    if qtype in (1, 28) and "mute" in labels:
        return None
    rrs = []
    if qtype == 15 and name.endswith("many.example"):
        for n in range(count):
            host = bytes([len(f"h{n}")]) + f"h{n}".encode()
            rdata = struct.pack("!H", 10) + host + b"\xc0\x0c"
            rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", 15, 1, 60, len(rdata)) + rdata)
    elif qtype == 1 and name.startswith("h") and name.endswith("many.example"):
        for n in range(acount):
            rdata = bytes([192, 0, 2 + n // 250, 1 + n % 250])
            rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + rdata)
    elif qtype == 12 and name.endswith(".113.0.203.in-addr.arpa"):
        target = b"".join(bytes([len(p)]) + p.encode() for p in ("ptr", "mute", "many", "example"))
        rdata = target + b"\x00"
        rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 60, len(rdata)) + rdata)
    elif qtype == 16 and name == "count.test":
        text = str(asked).encode()
        rdata = bytes([len(text)]) + text
        rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", 16, 1, 0, len(rdata)) + rdata)
    rcode = 0 if rrs else 3
    flags = struct.pack("!BB", 0x84 | (data[2] & 0x01), 0x80 | rcode)
    body = b"".join(rrs)
    if udp and 12 + len(question) + len(body) > 512:
        return data[:2] + struct.pack("!BB", 0x86 | (data[2] & 0x01), 0x80) + \
            struct.pack("!HHHH", 1, 0, 0, 0) + question
    return data[:2] + flags + struct.pack("!HHHH", 1, len(rrs), 0, 0) + question + body


udp, tcp, port = bind_pair(reuse=True)
tcp.listen(50)


def serve_udp():
    while True:
        data, peer = udp.recvfrom(4096)
        try:
            out = answer(data, True)
            if out is not None:
                udp.sendto(out, peer)
        except Exception:
            pass


def serve_tcp_conn(c):
    try:
        while True:
            head = c.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            data = c.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
            out = answer(data, False)
            if out is None:
                continue
            c.sendall(struct.pack("!H", len(out)) + out)
    except Exception:
        pass
    finally:
        c.close()


def serve_tcp():
    while True:
        c, _ = tcp.accept()
        threading.Thread(target=serve_tcp_conn, args=(c,), daemon=True).start()


threading.Thread(target=serve_udp, daemon=True).start()
threading.Thread(target=serve_tcp, daemon=True).start()
print(port, flush=True)
time.sleep(limit)
