#!/usr/bin/env python3
"""Reference peers with permessage-deflate on, from the Python `websockets` library.

They stand in for Sockeye's examples to check the test harness itself (and to time
Autobahn's compression cases against a known-good peer):

  ref_peer.py serve [ADDR]               echo server like examples/echo_server: prints
                                         `listening on HOST:PORT`, echoes every message,
                                         accepts permessage-deflate (websockets' default)
  ref_peer.py autobahn-client URL AGENT   the Autobahn client loop like
                                         examples/autobahn_client, offering
                                         permessage-deflate (websockets' default)
  ref_peer.py wscat URL                  like examples/client --compress: sends each
                                         stdin line, prints echoes as `< LINE`

Run with the venv scripts/test.sh makes (target/py/bin/python). Loopback only; the
server runs until killed, the client until its loop ends (bounded by the case count).
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import WebSocketException


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except WebSocketException:
        pass


async def run_server(addr):
    host, _, port = addr.rpartition(":")
    async with serve(echo, host or "127.0.0.1", int(port), max_size=None, max_queue=None,
                     ping_interval=None, compression="deflate") as server:
        h, p = server.sockets[0].getsockname()[:2]
        print("listening on %s:%d" % (h, p), flush=True)
        await asyncio.Future()


async def echo_case(url):
    try:
        async with connect(url, max_size=None, ping_interval=None, open_timeout=30,
                           compression="deflate") as ws:
            async for message in ws:
                await ws.send(message)
    except (WebSocketException, OSError, asyncio.TimeoutError) as e:
        return e
    return None


async def run_client(url, agent):
    url = url.rstrip("/")
    async with connect(url + "/getCaseCount", open_timeout=30) as ws:
        count = int(await asyncio.wait_for(ws.recv(), 30))
    print("%d cases" % count, flush=True)
    for case in range(1, count + 1):
        await echo_case("%s/runCase?case=%d&agent=%s" % (url, case, agent))
    async with connect("%s/updateReports?agent=%s" % (url, agent), open_timeout=120) as ws:
        try:
            await asyncio.wait_for(ws.recv(), 300)
        except Exception:
            pass
    print("reports updated", flush=True)


async def run_wscat(url):
    lines = sys.stdin.read().splitlines()
    async with connect(url, max_size=None, open_timeout=30, compression="deflate") as ws:
        for line in lines:
            await ws.send(line)
            print("< %s" % await asyncio.wait_for(ws.recv(), 30), flush=True)
    print("# closed clean code=%s" % ws.close_code)


def main(argv):
    if len(argv) >= 1 and argv[0] == "serve":
        asyncio.run(run_server(argv[1] if len(argv) > 1 else "127.0.0.1:9001"))
    elif len(argv) == 3 and argv[0] == "autobahn-client":
        asyncio.run(run_client(argv[1], argv[2]))
    elif len(argv) == 2 and argv[0] == "wscat":
        asyncio.run(run_wscat(argv[1]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
