"""An independent, strict client for wsroom: Debian's python3-websockets.

Usage: /usr/bin/python3 client.py ws://127.0.0.1:PORT

Runs the scenarios against the example chat server and prints one line per
scenario, "ok NAME: ..." or "FAIL NAME: ...". In the flood scenario it
prints "READY" once the flood is under way and the server has pinged; the
caller then sends SIGTERM to the server, and every connection must see
close 1001. Exits 0 when every scenario passed.
"""

import asyncio
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.legacy.client import WebSocketClientProtocol

TIMEOUT = 10  # seconds, for any one answer
FLOOD_LIMIT = 200_000  # messages per connection, at most
FLOOD_TIME = 30  # seconds, at most, from the flood's start to the server's close
WINDOW = 256  # messages in flight per connection, at most

failed = False


def report(ok, name, detail):
    global failed
    if not ok:
        failed = True
    print(("ok " if ok else "FAIL ") + name + ": " + detail, flush=True)


class Counting(WebSocketClientProtocol):
    """Counts the server's pings (one pong answers each)."""

    server_pings = 0

    async def pong(self, data=b""):
        self.server_pings += 1
        return await super().pong(data)


def connect(url, **kw):
    # No client pings: the server's heartbeat is what is being tested.
    return websockets.connect(url, create_protocol=Counting, ping_interval=None, max_size=1 << 20, **kw)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), TIMEOUT)


class Events:
    """The JSON protocol's events: one or more per text frame, one per line."""

    def __init__(self, ws):
        self.ws = ws
        self.pending = []

    async def next(self):
        while not self.pending:
            frame = await recv(self.ws)
            if isinstance(frame, str):
                self.pending.extend(json.loads(line) for line in frame.split("\n"))
        return self.pending.pop(0)

    async def until(self, pred):
        while True:
            e = await self.next()
            if pred(e):
                return e


async def echo(base):
    async with connect(base + "/echo") as ws:
        for msg in ["héllo wörld ✓", bytes(range(256)), "x" * 20000, b""]:
            await ws.send(msg)
            got = await recv(ws)
            if got != msg or type(got) is not type(msg):
                return report(False, "echo", f"sent {type(msg).__name__}[{len(msg)}], got {type(got).__name__}[{len(got)}]")
        await ws.send(["frag", "ment", "ed ✓"])  # one message in three frames
        got = await recv(ws)
        if got != "fragmented ✓":
            return report(False, "echo", f"fragmented text came back as {got!r}")
        await ws.send([b"\x00\x01", b"", b"\x02"])
        got = await recv(ws)
        if got != b"\x00\x01\x02":
            return report(False, "echo", f"fragmented binary came back as {got!r}")
    report(True, "echo", "text, binary, 20000 bytes, empty, fragmented text and binary echoed")


async def chat_json(base):
    url = base + "/chat/interop-json"
    async with connect(url, subprotocols=["wsroom.v1"]) as alice, connect(url, subprotocols=["wsroom.v1"]) as bob:
        if alice.subprotocol != "wsroom.v1":
            return report(False, "chat-json", f"subprotocol {alice.subprotocol!r}")
        a, b = Events(alice), Events(bob)
        await alice.send(json.dumps({"type": "join", "name": "alice"}))
        w = await a.until(lambda e: e["type"] in ("welcome", "error"))
        if w["type"] != "welcome" or w["members"] != ["alice"]:
            return report(False, "chat-json", f"alice's welcome: {w}")
        await bob.send(json.dumps({"type": "join", "name": "bob"}))
        w = await b.until(lambda e: e["type"] in ("welcome", "error"))
        if w["type"] != "welcome" or sorted(w["members"]) != ["alice", "bob"]:
            return report(False, "chat-json", f"bob's welcome: {w}")
        await a.until(lambda e: e["type"] == "join" and e["name"] == "bob")
        await bob.send(json.dumps({"type": "message", "text": "hello from bob ✓"}))
        m = await a.until(lambda e: e["type"] == "message")
        if m["from"] != "bob" or m["text"] != "hello from bob ✓":
            return report(False, "chat-json", f"alice got {m}")
        await b.until(lambda e: e["type"] == "message" and e["text"] == "hello from bob ✓")
        await bob.close()
        if bob.close_code != 1000:
            return report(False, "chat-json", f"bob's close: {bob.close_code}")
        await a.until(lambda e: e["type"] == "leave" and e["name"] == "bob")
    report(True, "chat-json", "join, broadcast between two clients, leave seen by the other")


async def chat_plain(base):
    url = base + "/chat/interop-plain"
    async with connect(url) as carol, connect(url) as dave:
        if carol.subprotocol is not None:
            return report(False, "chat-plain", f"subprotocol {carol.subprotocol!r}")

        async def line_until(ws, want):
            while True:
                got = await recv(ws)
                if got == want:
                    return

        await carol.send("login:carol")
        await line_until(carol, "欢迎【carol】来到聊天室!")
        await dave.send("login:dave")
        await line_until(dave, "欢迎【dave】来到聊天室!")
        await line_until(carol, "欢迎【dave】来到聊天室!")
        await dave.send("hi carol ✓")
        await line_until(carol, 'dave说 :"hi carol ✓"')
        await dave.close()
        await line_until(carol, "【dave】离开了聊天室!")
    report(True, "chat-plain", "login:NAME, lines both ways, leave seen by the other")


async def flood(base):
    echo_ws = await connect(base + "/echo")
    chat_ws = await connect(base + "/chat/interop-flood", subprotocols=["wsroom.v1"])
    await chat_ws.send(json.dumps({"type": "join", "name": "flooder"}))
    await Events(chat_ws).until(lambda e: e["type"] == "welcome")
    counts = {"echo": 0, "chat": 0}
    progress = {"echo": asyncio.Event(), "chat": asyncio.Event()}
    ended = set()  # connections whose receiving loop ended
    errors = []

    async def send_loop(ws, key, make):
        # A healthy client: at most WINDOW messages ahead of what came back
        # (a client that never reads is dropped as too slow, by design).
        try:
            for i in range(FLOOD_LIMIT):
                while i - counts[key] > WINDOW and key not in ended:
                    progress[key].clear()
                    await progress[key].wait()
                if key in ended:
                    return
                await ws.send(make(i))
        except ConnectionClosed:
            pass

    async def recv_loop(ws, key):
        try:
            async for frame in ws:
                counts[key] += frame.count("\n") + 1 if key == "chat" else 1
                progress[key].set()
        except ConnectionClosedOK:
            pass
        except ConnectionClosed as e:
            errors.append(f"{key}: {e!r}")
        ended.add(key)
        progress[key].set()

    payload = "flood ✓ " * 12
    tasks = [
        asyncio.create_task(send_loop(echo_ws, "echo", lambda i: payload)),
        asyncio.create_task(send_loop(chat_ws, "chat", lambda i: json.dumps({"type": "message", "text": f"{i} {payload}"}))),
        asyncio.create_task(recv_loop(echo_ws, "echo")),
        asyncio.create_task(recv_loop(chat_ws, "chat")),
    ]
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not (counts["echo"] >= 500 and counts["chat"] >= 100 and echo_ws.server_pings >= 2 and chat_ws.server_pings >= 2):
        if loop.time() - start > TIMEOUT or any(t.done() for t in tasks):
            for t in tasks:
                t.cancel()
            await echo_ws.close()
            await chat_ws.close()
            return report(False, "flood", f"flood not under way: {counts}, pings {echo_ws.server_pings}/{chat_ws.server_pings}, {errors}")
        await asyncio.sleep(0.01)
    print("READY", flush=True)
    done, pending = await asyncio.wait(tasks, timeout=FLOOD_TIME)
    for t in pending:
        t.cancel()
    if pending:
        return report(False, "flood", f"no close within {FLOOD_TIME}s of READY: {counts}")
    bad = errors[:]
    for name, ws in (("echo", echo_ws), ("chat", chat_ws)):
        rcvd = ws.close_rcvd.code if ws.close_rcvd else None
        sent = ws.close_sent.code if ws.close_sent else None
        if rcvd != 1001 or sent not in (1001, None):
            bad.append(f"{name}: close received {rcvd}, sent {sent}")
    if bad:
        return report(False, "flood", "; ".join(bad))
    report(True, "flood", f"{counts['echo']} echoes and {counts['chat']} chat events, "
           f"{echo_ws.server_pings + chat_ws.server_pings} server pings answered, then close 1001 on both")


async def main(base):
    for scenario in (echo, chat_json, chat_plain, flood):
        try:
            await asyncio.wait_for(scenario(base), TIMEOUT + FLOOD_TIME + 5)
        except Exception as e:  # a protocol error, a timeout, a refused connection
            report(False, scenario.__name__.replace("_", "-"), repr(e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1])))
