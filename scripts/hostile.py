#!/usr/bin/env python3
"""Hostile peers against a Sockeye echo server, measured from outside the process.

usage: scripts/hostile.py [--adapters tokio,smol,mio] [--pings N] [--peers N --mib M]
                          [--churn N] [--quick] [--no-build]

For each adapter it builds (release) and starts `echo_server 127.0.0.1:0` pinned to CPU 0,
then runs, one after the other, each against a fresh server:
  pings: one client writes N masked 125-byte Pings as fast as it can and never reads;
  data:  P clients each push M MiB of 64 KiB binary messages to the echo, never reading;
  churn: N cycles of connect -> handshake -> echo -> close, and N/4 abrupt resets;
and reports the server's resident memory (VmRSS) and open descriptors before, at the
peak, and after, read from /proc/PID. Loopback only; every loop is bounded in count and
time; every server is stopped by its own PID. Exits non-zero if a bound is broken:
pings: RSS growth over 4 MiB; data: growth over P x (queue bound + read buffer +
message) + 8 MiB; churn: descriptors not back to the baseline.
"""
import argparse
import base64
import os
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
QUEUE_BOUND = 1 * MIB  # DriverConfig::max_pending_bytes default
READ_BUFFER = 64 * 1024
KEY = base64.b64encode(b"0123456789abcdef").decode()


def frame(opcode, payload):
    """A masked client frame (all-zero mask: the payload goes as it is)."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def connect(addr, timeout=5.0):
    s = socket.create_connection(addr, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(
        (
            "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" % KEY
        ).encode()
    )
    head = b""
    deadline = time.time() + timeout
    while b"\r\n\r\n" not in head and time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("handshake failed: %r" % head[:80])
    return s


def proc_status(pid):
    rss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, fds


class Server:
    def __init__(self, binary):
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", binary, "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError("server did not start: %r" % line)
        host, port = line.split()[-1].rsplit(":", 1)
        self.addr = (host, int(port))
        self.peak = 0
        self._watching = True
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()
        time.sleep(0.2)
        self.base = proc_status(self.proc.pid)

    def _watch(self):
        while self._watching:
            try:
                self.peak = max(self.peak, proc_status(self.proc.pid)[0])
            except OSError:
                return
            time.sleep(0.02)

    def status(self):
        return proc_status(self.proc.pid)

    def stop(self):
        self._watching = False
        self.proc.kill()
        self.proc.wait(timeout=10)


def ping_flood(addr, count, limit_s):
    """Writes `count` Pings without reading; stops early when the server stops taking
    bytes for 2 s or after `limit_s`. Returns how many went out."""
    s = connect(addr)
    s.settimeout(2.0)
    batch = frame(0x9, b"\x5a" * 125) * 1000
    sent = 0
    start = time.time()
    try:
        while sent < count and time.time() - start < limit_s:
            s.sendall(batch)
            sent += 1000
    except (socket.timeout, OSError):
        pass
    return s, sent


def data_flood(addr, mib, limit_s, results, index):
    s = connect(addr)
    s.settimeout(2.0)
    message = frame(0x2, b"\xa5" * 65536)
    total = mib * MIB // 65536
    sent = 0
    start = time.time()
    try:
        while sent < total and time.time() - start < limit_s:
            s.sendall(message)
            sent += 1
    except (socket.timeout, OSError):
        pass
    results[index] = (s, sent * 65536)


def churn(addr, cycles):
    ok = 0
    for i in range(cycles):
        try:
            s = connect(addr)
            s.sendall(frame(0x1, b"hello"))
            data = s.recv(64)
            if data[:1] == b"\x81":
                ok += 1
            if i % 4 == 3:
                # An abrupt reset instead of a close.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            else:
                s.sendall(frame(0x8, b"\x03\xe8"))
                s.settimeout(2.0)
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
            s.close()
        except OSError:
            pass
    return ok


def build(adapters):
    for a in adapters:
        subprocess.run(
            ["cargo", "build", "--release", "-q", "-p", "sockeye-" + a, "--example", "echo_server"],
            cwd=ROOT,
            check=True,
        )
        dest = os.path.join(ROOT, "target", "release", "hostile-%s-echo_server" % a)
        src = os.path.join(ROOT, "target", "release", "examples", "echo_server")
        with open(src, "rb") as f, open(dest, "wb") as g:
            g.write(f.read())
        os.chmod(dest, 0o755)


def kib(n):
    return "%.1f MiB" % (n / MIB)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--adapters", default="tokio,smol,mio")
    p.add_argument("--pings", type=int, default=1_000_000)
    p.add_argument("--peers", type=int, default=40)
    p.add_argument("--mib", type=int, default=8)
    p.add_argument("--churn", type=int, default=2000)
    p.add_argument("--quick", action="store_true", help="100k pings, 8 peers x 4 MiB, 200 cycles")
    p.add_argument("--no-build", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.pings, args.peers, args.mib, args.churn = 100_000, 8, 4, 200
    adapters = [a for a in args.adapters.split(",") if a]
    if not args.no_build:
        build(adapters)
    failed = False
    print("| adapter | test | sent | RSS before | peak growth | after | fds before/after | bound | verdict |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for a in adapters:
        binary = os.path.join(ROOT, "target", "release", "hostile-%s-echo_server" % a)

        server = Server(binary)
        s, sent = ping_flood(server.addr, args.pings, 60)
        time.sleep(0.5)
        growth = server.peak - server.base[0]
        bound = 4 * MIB
        ok = growth <= bound
        failed |= not ok
        print("| %s | %d pings, never read | %d | %s | %s | %s | %d/%d | %s | %s |" % (
            a, args.pings, sent, kib(server.base[0]), kib(growth), kib(server.status()[0]),
            server.base[1], server.status()[1], kib(bound), "ok" if ok else "OVER"))
        s.close()
        server.stop()

        server = Server(binary)
        results = [None] * args.peers
        threads = [threading.Thread(target=data_flood, args=(server.addr, args.mib, 60, results, i))
                   for i in range(args.peers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        time.sleep(0.5)
        growth = server.peak - server.base[0]
        bound = args.peers * (QUEUE_BOUND + READ_BUFFER + 65536 + 16 * 1024) + 8 * MIB
        ok = growth <= bound
        failed |= not ok
        pushed = sum(r[1] for r in results if r)
        print("| %s | %d peers x %d MiB, never read | %s | %s | %s | %s | %d/%d | %s | %s |" % (
            a, args.peers, args.mib, kib(pushed), kib(server.base[0]), kib(growth),
            kib(server.status()[0]), server.base[1], server.status()[1], kib(bound), "ok" if ok else "OVER"))
        for r in results:
            if r:
                r[0].close()
        server.stop()

        server = Server(binary)
        ok_cycles = churn(server.addr, args.churn)
        deadline = time.time() + 10
        while time.time() < deadline and server.status()[1] > server.base[1]:
            time.sleep(0.1)
        rss, fds = server.status()
        ok = fds <= server.base[1] and ok_cycles >= args.churn * 9 // 10
        failed |= not ok
        print("| %s | churn: %d cycles (1 in 4 reset) | %d echoed | %s | %s | %s | %d/%d | fds back | %s |" % (
            a, args.churn, ok_cycles, kib(server.base[0]), kib(server.peak - server.base[0]), kib(rss),
            server.base[1], fds, "ok" if ok else "LEAK"))
        server.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
