"""A UDP and a TCP socket on one loopback port, for the tests' name servers."""
import socket
import sys


def bind_pair(reuse):
    """A UDP and a TCP socket on one loopback port (TCP bound, not listening).

    The kernel picks the UDP port from the local port range, where another
    process may hold the same number over TCP (a loopback connection's local
    port: the test files run in parallel); the TCP bind then fails with
    EADDRINUSE. Another port is tried then, not a crash before the port is
    printed.
    """
    for _ in range(100):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket()
        if reuse:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        return udp, tcp, port
    sys.exit("no loopback port free for both UDP and TCP")
