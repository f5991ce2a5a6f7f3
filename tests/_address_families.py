"""Runs a command as systemd's RestrictAddressFamilies= would: socket() and
socketpair() with an address family not in the list fail with EAFNOSUPPORT
(a seccomp filter, as systemd installs one). x86_64 only.

usage: _address_families.py FAMILY[,FAMILY...] COMMAND [ARG...]
       FAMILY is AF_UNIX, AF_INET, AF_INET6, AF_NETLINK or AF_PACKET
"""
import ctypes
import os
import struct
import sys

FAMILIES = {"AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}
AUDIT_ARCH_X86_64 = 0xC000003E
NR_SOCKET, NR_SOCKETPAIR = 41, 53
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
ALLOW, ERRNO_EAFNOSUPPORT = 0x7FFF0000, 0x00050000 | 97


def stmt(code, k):
    return struct.pack("HBBI", code, 0, 0, k)


def jeq(k, jt, jf):
    return struct.pack("HBBI", JEQ_K, jt, jf, k)


def main():
    allowed = [FAMILIES[f] for f in sys.argv[1].split(",") if f]
    n = len(allowed)
    # 0: arch; 1: not x86_64 -> allow; 2: nr; 3-4: socket/socketpair else allow;
    # 5: domain; 6..: each allowed family -> allow; then errno; then allow.
    allow_at = 6 + n + 1
    prog = [stmt(LD_W_ABS, 4), jeq(AUDIT_ARCH_X86_64, 0, allow_at - 2), stmt(LD_W_ABS, 0),
            jeq(NR_SOCKET, 1, 0), jeq(NR_SOCKETPAIR, 0, allow_at - 5), stmt(LD_W_ABS, 16)]
    for i, fam in enumerate(allowed):
        prog.append(jeq(fam, allow_at - (6 + i) - 1, 0))
    prog += [stmt(RET_K, ERRNO_EAFNOSUPPORT), stmt(RET_K, ALLOW)]
    code = b"".join(prog)
    buf = ctypes.create_string_buffer(code)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    fprog = Fprog(len(prog), ctypes.addressof(buf))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        sys.exit("PR_SET_NO_NEW_PRIVS failed")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        sys.exit(f"PR_SET_SECCOMP failed: {os.strerror(ctypes.get_errno())}")
    os.execvp(sys.argv[2], sys.argv[2:])


main()
