#!/usr/bin/env python3
"""permessage-deflate interop with the Python `websockets` library, both directions.

usage (with the venv scripts/test.sh makes, target/py/bin/python):
  deflate_python.py clients URL
      websockets clients, one per offer variant (every window-bits setting and
      takeover mode its ClientPerMessageDeflateFactory has), against the echo server
      at URL (Sockeye's examples/echo_server).
  deflate_python.py servers -- CLIENT_CMD...
      websockets servers, one per ServerPerMessageDeflateFactory variant, each
      running `CLIENT_CMD ws://127.0.0.1:PORT AGENT` once: an Autobahn-style echo
      client (Sockeye's examples/autobahn_client) that asks /getCaseCount, echoes
      /runCase?case=1, then /updateReports.
  deflate_python.py wscat -- CLIENT_CMD...
      one websockets server; runs `CLIENT_CMD ws://127.0.0.1:PORT/` (Sockeye's
      examples/client --compress) with three text lines on stdin and checks they come
      back as `< LINE`.

Each variant checks: permessage-deflate is negotiated and the answer honours the
offer (RFC 7692 section 7: server_no_context_takeover kept, server_max_window_bits
not above the offer, client_max_window_bits only when offered, not above it) and the
server's own limits; text, binary, empty and 1 MiB messages and 40 similar small ones
round-trip byte-exact; the peer under test sent at least one compressed (RSV1) frame.
Prints `ok NAME` or `FAILED NAME: why` per variant, then `N passed, N failed`.
Exit 0 when all passed. Every wait is bounded; every child is killed by its PID.
"""
import random
import subprocess
import sys
import threading
import time

from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory)
from websockets.sync.client import connect
from websockets.sync.server import serve

LIMIT = 60  # seconds for one variant

_rng = random.Random(7692)
BIG_BIN = (_rng.randbytes(1 << 19) + bytes(range(256)) * 2048)[: 1 << 20]
BIG_TEXT = ("permessage-deflate ✓ " * 60000)[: 1 << 20]
SIMILAR = ["{\"seq\": %d, \"symbol\": \"SOCK\", \"price\": %d.%02d, \"side\": \"buy\"}" % (i, 100 + i, i)
           for i in range(40)]
MESSAGES = (["héllo from python ✓", bytes(range(256)) * 3, "", b"", BIG_BIN, BIG_TEXT, "x" * 300]
            + SIMILAR)

BITS = range(9, 16)  # 8 is broken in websockets (zlib refuses an 8-bit raw window)
# Offers both sides can make: each window size, each takeover mode, all at once.
COMMON_VARIANTS = (
    [("server_max_window_bits=%d" % b, {"server_max_window_bits": b}) for b in BITS]
    + [("client_max_window_bits=%d" % b, {"client_max_window_bits": b}) for b in BITS]
    + [("server_no_context_takeover", {"server_no_context_takeover": True}),
       ("client_no_context_takeover", {"client_no_context_takeover": True}),
       ("both no_context_takeover", {"server_no_context_takeover": True,
                                     "client_no_context_takeover": True}),
       ("all parameters", {"server_no_context_takeover": True, "client_no_context_takeover": True,
                           "server_max_window_bits": 10, "client_max_window_bits": 11})])
CLIENT_VARIANTS = (
    [("bare offer", {"client_max_window_bits": None}),
     ("client_max_window_bits", {"client_max_window_bits": True})]
    + COMMON_VARIANTS)
SERVER_VARIANTS = [("defaults", {})] + COMMON_VARIANTS

def parse_ext(header):
    """'a; p=1; q, b' -> [('a', {'p': '1', 'q': None}), ('b', {})]"""
    out = []
    for item in (header or "").split(","):
        parts = [p.strip() for p in item.split(";") if p.strip()]
        if not parts:
            continue
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"') or None
        out.append((parts[0].lower(), params))
    return out


def check_answer(offer, answer, server_limits=None):
    """Why the answer does not fit the offer (and the server's limits), or None."""
    ans = parse_ext(answer)
    if not ans or ans[0][0] != "permessage-deflate":
        return "permessage-deflate not negotiated (answer %r)" % answer
    if len(ans) != 1:
        return "answer has %d extensions: %r" % (len(ans), answer)
    a = ans[0][1]
    known = {"server_no_context_takeover", "client_no_context_takeover",
             "server_max_window_bits", "client_max_window_bits"}
    if set(a) - known:
        return "unknown parameters in %r" % answer
    offers = [p for n, p in parse_ext(offer) if n == "permessage-deflate"]
    if not offers:
        return "no permessage-deflate in the offer %r" % offer
    def fits(o):
        if "server_no_context_takeover" in o and "server_no_context_takeover" not in a:
            return False
        if o.get("server_max_window_bits") and int(a.get("server_max_window_bits") or 15) > int(o["server_max_window_bits"]):
            return False
        if "client_max_window_bits" in a:
            if "client_max_window_bits" not in o:
                return False
            if o["client_max_window_bits"] and int(a["client_max_window_bits"] or 15) > int(o["client_max_window_bits"]):
                return False
        return True
    if not any(fits(o) for o in offers):
        return "answer %r does not honour the offer %r" % (answer, offer)
    lim = server_limits or {}
    if lim.get("server_no_context_takeover") and "server_no_context_takeover" not in a:
        return "server_no_context_takeover missing from %r" % answer
    if lim.get("server_max_window_bits") and int(a.get("server_max_window_bits") or 15) > lim["server_max_window_bits"]:
        return "server_max_window_bits above %d in %r" % (lim["server_max_window_bits"], answer)
    return None


def counting(extension, counter):
    """Wraps a PerMessageDeflate to count the compressed frames it decodes."""
    decode = extension.decode
    def counted(frame, *args, **kwargs):
        if frame.rsv1:
            counter[0] += 1
        return decode(frame, *args, **kwargs)
    extension.decode = counted
    return extension


class CountingClientFactory(ClientPerMessageDeflateFactory):
    def __init__(self, counter, **kw):
        super().__init__(**kw)
        self.counter = counter

    def process_response_params(self, params, accepted):
        return counting(super().process_response_params(params, accepted), self.counter)


class CountingServerFactory(ServerPerMessageDeflateFactory):
    def __init__(self, counter, **kw):
        super().__init__(**kw)
        self.counter = counter

    def process_request_params(self, params, accepted):
        response, ext = super().process_request_params(params, accepted)
        return response, counting(ext, self.counter)


def exchange(ws, send_first):
    """send_first: we send, the peer echoes. Otherwise the peer is the echoer too (same)."""
    for m in MESSAGES:
        ws.send(m)
        got = ws.recv(timeout=LIMIT)
        if type(got) is not type(m) or got != m:
            return "message of %d %s came back as %d %s%s" % (
                len(m), type(m).__name__, len(got), type(got).__name__,
                "" if type(got) is not type(m) else " (content differs)")
    return None


def run_clients(url):
    results = []
    for name, kw in CLIENT_VARIANTS:
        counter = [0]
        why = None
        try:
            with connect(url, extensions=[CountingClientFactory(counter, **kw)], compression=None,
                         max_size=None, open_timeout=LIMIT, close_timeout=LIMIT, ping_interval=None) as ws:
                offer = ws.request.headers.get("Sec-WebSocket-Extensions")
                answer = ws.response.headers.get("Sec-WebSocket-Extensions")
                why = check_answer(offer, answer) or exchange(ws, True)
                if not why and counter[0] == 0:
                    why = "the server sent no compressed frame"
                ws.close(4000, "bye")
            if not why and ws.close_code != 4000:
                why = "the close code came back as %s" % ws.close_code
        except Exception as e:  # noqa: BLE001 - any failure is this variant's
            why = "%s: %s" % (type(e).__name__, e)
        results.append((name, why, answer if not why else None))
    return results


def run_servers(cmd):
    results = []
    for name, kw in SERVER_VARIANTS:
        counter = [0]
        state = {"why": "the client never ran the case", "answer": None}

        def handler(ws):
            path = ws.request.path
            if path.startswith("/getCaseCount"):
                ws.send("1")
            elif path.startswith("/runCase"):
                offer = ws.request.headers.get("Sec-WebSocket-Extensions")
                answer = ws.response.headers.get("Sec-WebSocket-Extensions")
                state["answer"] = answer
                why = check_answer(offer, answer, kw) or exchange(ws, True)
                if not why and counter[0] == 0:
                    why = "the client sent no compressed frame"
                state["why"] = why
            ws.close(1000)

        why = None
        with serve(handler, "127.0.0.1", 0, extensions=[CountingServerFactory(counter, **kw)],
                   compression=None, max_size=None, ping_interval=None, open_timeout=LIMIT,
                   close_timeout=LIMIT) as server:
            t = threading.Thread(target=server.serve_forever, daemon=True)
            t.start()
            port = server.socket.getsockname()[1]
            child = subprocess.Popen(cmd + ["ws://127.0.0.1:%d" % port, "interop"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:
                out, _ = child.communicate(timeout=LIMIT)
                if child.returncode != 0:
                    why = "the client exited %d: %s" % (child.returncode, out.decode(errors="replace")[-300:])
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                why = "the client did not finish within %ds" % LIMIT
            server.shutdown()
            t.join(10)
        why = state["why"] or why
        results.append((name, why, state["answer"] if not why else None))
    return results


def run_wscat(cmd):
    lines = ["hello compressed world", "ü" * 400, "x" * 5000]
    state = {"answer": None, "got": []}

    def handler(ws):
        state["answer"] = ws.response.headers.get("Sec-WebSocket-Extensions")
        for message in ws:
            state["got"].append(message)
            ws.send(message)

    why = None
    with serve(handler, "127.0.0.1", 0, compression="deflate", max_size=None,
               ping_interval=None) as server:
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        port = server.socket.getsockname()[1]
        child = subprocess.Popen(cmd + ["ws://127.0.0.1:%d/" % port], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # Close stdin (the client then closes with 1000) only once every echo printed:
        # closing at once would race the echoes against the close handshake.
        seen = []
        reader = threading.Thread(
            target=lambda: seen.extend(l.decode(errors="replace").rstrip("\n")
                                       for l in iter(child.stdout.readline, b"")),
            daemon=True)
        reader.start()
        child.stdin.write(("\n".join(lines) + "\n").encode())
        child.stdin.flush()
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline and any("< " + l not in seen for l in lines):
            time.sleep(0.05)
        child.stdin.close()
        try:
            child.wait(timeout=max(1, deadline - time.monotonic()))
            reader.join(10)
            out = "\n".join(seen)
            if child.returncode != 0:
                why = "the client exited %d: %s" % (child.returncode, out[-300:])
            elif any("< " + l not in seen for l in lines):
                why = "the echoes did not print as `< LINE`: %s" % out[-300:]
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            why = "the client did not finish within %ds" % LIMIT
        server.shutdown()
        t.join(10)
    if not why and not parse_ext(state["answer"]):
        why = "permessage-deflate not negotiated (answer %r)" % state["answer"]
    return [("wscat --compress", why, state["answer"] if not why else None)]


def main(argv):
    if len(argv) == 2 and argv[0] == "clients":
        results = run_clients(argv[1])
    elif len(argv) >= 3 and argv[0] in ("servers", "wscat") and argv[1] == "--":
        results = (run_servers if argv[0] == "servers" else run_wscat)(argv[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    for name, why, answer in results:
        print("ok       %s  [%s]" % (name, answer) if not why else "FAILED   %s: %s" % (name, why),
              flush=True)
    failed = sum(1 for _, why, _ in results if why)
    print("%d passed, %d failed" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
