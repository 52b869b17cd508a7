// Tests of wsroom.js without a browser: node --test (no dependencies).
// A fake WebSocket stands in for the server; timers are mocked, so the
// tests never wait.
import { test, mock } from "node:test";
import assert from "node:assert/strict";

import {
  Client,
  EventStreamParser,
  EventStreamSocket,
  IdSet,
  MemberSet,
  SUBPROTOCOL,
  TOKEN_HEADER,
  backoffDelay,
  compareIds,
  explainClose,
  parseFrame,
} from "./wsroom.js";

test("parseFrame splits batched events on newlines", () => {
  const frame = ['{"type":"join","name":"a"}', '{"type":"message","id":"7","from":"a","text":"x\\ny","ts":1}', ""].join("\n");
  const evs = parseFrame(frame);
  assert.equal(evs.length, 2);
  assert.deepEqual(evs[0], { type: "join", name: "a" });
  assert.equal(evs[1].text, "x\ny", "an escaped newline inside a string is not a separator");
});

test("parseFrame turns unreadable lines into local errors and keeps the rest", () => {
  const evs = parseFrame('{"type":"leave","name":"b"}\nnot json\n[1,2]\n{"name":"no type"}\n{"type":"join","name":"c"}');
  assert.deepEqual(
    evs.map((e) => e.type + ":" + (e.code ?? e.name)),
    ["leave:b", "error:bad_frame", "error:bad_frame", "error:bad_frame", "join:c"],
  );
  assert.ok(evs[1].local);
});

test("backoffDelay is exponential with full jitter, capped", () => {
  const o = { base: 500, max: 30000 };
  assert.equal(backoffDelay(0, o, () => 0), 0);
  const top = (n) => backoffDelay(n, o, () => 0.999999);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 50].map(top), [499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
  // Full jitter: spread over the whole range, not bunched near the ceiling.
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const samples = Array.from({ length: 2000 }, () => backoffDelay(3, o, rnd));
  assert.ok(samples.every((d) => d >= 0 && d < 4000));
  assert.ok(samples.some((d) => d < 400) && samples.some((d) => d > 3600), "jitter covers [0, ceiling)");
});

test("compareIds orders decimal ids of any length", () => {
  assert.ok(compareIds("9", "10") < 0);
  assert.ok(compareIds("1733000000000001", "1733000000000000") > 0);
  assert.equal(compareIds("12", "12"), 0);
  assert.equal(compareIds("0012", "12"), 0);
  assert.ok(compareIds("99999999999999999999", "100000000000000000000") < 0, "beyond 2^53");
});

test("IdSet drops duplicates, remembers the highest and lowest, stays bounded", () => {
  const s = new IdSet(3);
  assert.equal(s.add("10"), true);
  assert.equal(s.add("10"), false);
  for (const id of ["9", "12", "11", "13"]) s.add(id);
  assert.equal(s.size, 3);
  assert.equal(s.highest, "13");
  assert.equal(s.lowest, "9");
  assert.equal(s.has("10"), false, "the oldest entry was forgotten");
  s.note("2");
  assert.equal(s.lowest, "2");
  assert.equal(s.has("2"), false);
});

test("MemberSet applies joins, leaves, presence and pages as set operations", () => {
  const m = new MemberSet();
  m.reset(["alice", "bob"], 4);
  assert.equal(m.complete, false);
  assert.equal(m.count, 4);
  m.addPage(["carol", "dave"], 4);
  assert.equal(m.complete, true);
  assert.equal(m.add("bob"), false, "a join of a member already there");
  assert.equal(m.count, 4);
  m.apply(["erin"], ["alice", "nobody"]);
  assert.deepEqual(m.list(), ["bob", "carol", "dave", "erin"]);
  assert.equal(m.count, 4);
  assert.equal(m.delete("zed"), false);
  assert.equal(m.delete("bob"), true);
  assert.equal(m.count, 3);
});

test("explainClose stops on the do-not-come-back codes and says why", () => {
  for (const code of [1003, 1007, 1008, 1009, 4001, 1000]) {
    assert.equal(explainClose(code, "").reconnect, false, `code ${code}`);
  }
  for (const code of [1001, 1006, 1011, 1012, 1013, 1005]) {
    assert.equal(explainClose(code, "").reconnect, true, `code ${code}`);
  }
  assert.match(explainClose(1008, "removed: spam").explanation, /policy: removed: spam/);
  assert.match(explainClose(4001).explanation, /took over/);
  assert.match(explainClose(1006, "", { opened: false }).explanation, /Could not connect/);
  assert.equal(explainClose(1000, "", { normalReconnects: true }).reconnect, true);
});

// FakeWS plays the server's side of one connection.
class FakeWS {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    FakeWS.all.push(this);
  }
  send(data) {
    assert.equal(this.readyState, 1, "send on an open socket only");
    this.sent.push(typeof data === "string" ? JSON.parse(data) : data);
  }
  close(code = 1000, reason = "") {
    this.readyState = 3;
    this.closedWith = { code, reason };
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  recv(...events) {
    this.onmessage?.({ data: events.map((e) => JSON.stringify(e)).join("\n") });
  }
  drop(code = 1006, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  static last() {
    return FakeWS.all[FakeWS.all.length - 1];
  }
}

function msg(id, text) {
  return { type: "message", id, from: "bob", text, ts: 1700000000000 };
}

function newClient(t, extra = {}) {
  FakeWS.all = [];
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  // WebSocket only: the fallback has tests of its own below.
  const c = new Client({ url: "ws://127.0.0.1:1/chat/r", name: "alice", WebSocket: FakeWS, random: () => 0.5, retryBase: 100, transports: ["websocket"], ...extra });
  const seen = { state: [], message: [], welcome: [], members: [], error: [], join: [], leave: [], history: [], binary: [] };
  for (const k of Object.keys(seen)) c.on(k, (e) => seen[k].push(e));
  return { c, seen };
}

test("Client joins with the subprotocol and emits the welcome, members and messages", (t) => {
  const { c, seen } = newClient(t);
  c.connect();
  const ws = FakeWS.last();
  assert.equal(ws.protocols, SUBPROTOCOL);
  assert.equal(c.state, "connecting");
  ws.open();
  assert.deepEqual(ws.sent, [{ type: "join", name: "alice" }]);
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice", "bob"], count: 2, history: [msg("5", "old")] }, msg("6", "new"));
  assert.equal(c.state, "open");
  assert.equal(c.joined, true);
  assert.deepEqual(seen.welcome[0].history.map((m) => m.text), ["old"]);
  assert.equal(seen.welcome[0].resumed, false);
  assert.deepEqual(seen.message.map((m) => m.text), ["new"]);
  assert.deepEqual(c.members, ["alice", "bob"]);
  assert.equal(c.lastId, "6");
  ws.recv({ type: "join", name: "carol" }, { type: "join", name: "bob" }, { type: "leave", name: "alice" });
  assert.deepEqual(seen.join.map((j) => j.rejoined), [false, true]);
  assert.deepEqual(c.members, ["bob", "carol"]);
  assert.deepEqual(seen.members.at(-1), { members: ["bob", "carol"], count: 2, complete: true });
  assert.equal(c.send("hi"), true);
  assert.deepEqual(ws.sent.at(-1), { type: "message", text: "hi" });
  const bin = new Uint8Array([1, 2, 3]);
  assert.equal(c.sendBinary(bin), true);
  assert.equal(ws.sent.at(-1), bin);
  ws.onmessage({ data: new ArrayBuffer(2) });
  assert.equal(seen.binary[0].data.byteLength, 2);
});

test("Client reconnects with backoff and resumes after the highest id, without duplicates", (t) => {
  const { c, seen } = newClient(t);
  c.connect();
  let ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice"], history: [msg("10", "a"), msg("11", "b")] });
  ws.drop(1006);
  const st = seen.state.at(-1);
  assert.equal(st.state, "reconnecting");
  assert.equal(st.code, 1006);
  assert.equal(st.delay, 50, "full jitter: random 0.5 of the 100 ms ceiling");
  assert.equal(st.at, 1_000_050);
  assert.match(st.explanation, /lost/);
  assert.equal(c.send("lost"), false, "nothing is sent while away");
  assert.equal(FakeWS.all.length, 1);
  t.mock.timers.tick(49);
  assert.equal(FakeWS.all.length, 1, "not before the delay");
  t.mock.timers.tick(1);
  assert.equal(FakeWS.all.length, 2);
  ws = FakeWS.last();
  ws.open();
  assert.deepEqual(ws.sent[0], { type: "join", name: "alice", since: "11" });
  // The server resends 11 (overlap) with the missed 12 and 13; 13 comes again live.
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice"], history: [msg("11", "b"), msg("12", "c"), msg("13", "d")] }, msg("13", "d"), msg("14", "e"));
  assert.equal(seen.welcome[1].resumed, true);
  assert.deepEqual(seen.welcome[1].history.map((m) => m.text), ["c", "d"]);
  assert.deepEqual(seen.message.map((m) => m.text), ["e"]);
  assert.equal(c.duplicates, 2);
  assert.equal(c.lastId, "14");
});

test("Client backs off exponentially while the server stays away, and resets once stable", (t) => {
  const { c, seen } = newClient(t, { random: () => 0.999 });
  c.connect();
  const delays = [];
  for (let i = 0; i < 5; i++) {
    FakeWS.last().drop(1006); // never opened: a refused handshake looks the same
    const st = seen.state.at(-1);
    assert.match(st.explanation, /Could not connect/);
    delays.push(st.delay);
    t.mock.timers.tick(st.delay);
  }
  assert.deepEqual(delays, [99, 199, 399, 799, 1598]);
  const ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: [], history: [] });
  t.mock.timers.tick(5000);
  ws.drop(1001, "restart");
  assert.equal(seen.state.at(-1).delay, 99, "a connection that stayed up resets the backoff");
  assert.match(seen.state.at(-1).explanation, /restarting/);
});

for (const code of [1003, 1007, 1008, 1009, 4001]) {
  test(`Client stops for good on close code ${code}`, (t) => {
    const { c, seen } = newClient(t);
    c.connect();
    const ws = FakeWS.last();
    ws.open();
    ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice"], history: [] });
    ws.drop(code, "why");
    const st = seen.state.at(-1);
    assert.equal(st.state, "closed");
    assert.equal(st.code, code);
    assert.equal(st.reconnect, false);
    assert.ok(st.explanation.length > 10);
    t.mock.timers.tick(60_000);
    assert.equal(FakeWS.all.length, 1, "no reconnect");
  });
}

test("Client pages a big room's member list only on demand", (t) => {
  const { c } = newClient(t, { membersLimit: 2, membersAuto: 10 });
  c.connect();
  const ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice", "bob"], count: 5000, history: [] });
  t.mock.timers.tick(10_000);
  assert.equal(ws.sent.filter((f) => f.type === "members").length, 0, "no paging by itself in a big room");
  assert.equal(c.loadMoreMembers(), true);
  assert.deepEqual(ws.sent.at(-1), { type: "members", after: "bob", limit: 2 });
  assert.equal(c.loadMoreMembers(), false, "a page is on its way");
  ws.recv({ type: "members", members: ["carol", "dave"], count: 5000, more: true });
  t.mock.timers.tick(10_000);
  assert.equal(ws.sent.filter((f) => f.type === "members").length, 1, "still only on demand");
  assert.equal(c.loadMoreMembers(), true);
  assert.deepEqual(ws.sent.at(-1), { type: "members", after: "dave", limit: 2 });
  ws.recv({ type: "members", members: ["zoe"], count: 5000, more: false });
  assert.equal(c.loadMoreMembers(), false, "complete");
});

test("Client pages the member list when the welcome has only the first page", (t) => {
  const { c, seen } = newClient(t, { membersLimit: 2 });
  c.connect();
  const ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice", "bob"], count: 5, history: [] });
  assert.equal(ws.sent.filter((f) => f.type === "members").length, 0, "pages are paced");
  t.mock.timers.tick(100);
  assert.deepEqual(ws.sent.at(-1), { type: "members", after: "bob", limit: 2 });
  assert.equal(c.memberCount, 5);
  ws.recv({ type: "join", name: "zoe" }); // arrives while paging: a set operation
  ws.recv({ type: "members", members: ["carol", "dave"], count: 6, more: true });
  t.mock.timers.tick(100);
  assert.deepEqual(ws.sent.at(-1), { type: "members", after: "dave", limit: 2 });
  ws.recv({ type: "members", members: ["erin", "zoe"], count: 6, more: false });
  assert.equal(ws.sent.filter((f) => f.type === "members").length, 2);
  assert.deepEqual(c.members, ["alice", "bob", "carol", "dave", "erin", "zoe"]);
  assert.equal(seen.members.at(-1).complete, true);
});

test("Client pages older history before the oldest message seen, dropping what it showed", (t) => {
  const { c, seen } = newClient(t);
  c.connect();
  const ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice"], history: [msg("20", "t"), msg("21", "u")] });
  assert.equal(c.olderMessages(), true);
  assert.deepEqual(ws.sent.at(-1), { type: "history", limit: 50, before: "20" });
  ws.recv({ type: "history", messages: [msg("18", "r"), msg("19", "s"), msg("20", "t")], more: true });
  assert.deepEqual(seen.history[0].messages.map((m) => m.text), ["r", "s"]);
  assert.equal(c.oldestId, "18");
  assert.equal(c.moreHistory, true);
  c.olderMessages(10);
  assert.deepEqual(ws.sent.at(-1), { type: "history", limit: 10, before: "18" });
  assert.equal(c.lastId, "21", "older pages do not move the resume point");
});

test("Client retries a rejoin whose name the previous connection still holds", (t) => {
  const { c, seen } = newClient(t);
  c.connect();
  let ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice"], history: [] });
  ws.drop(1006);
  t.mock.timers.tick(seen.state.at(-1).delay);
  ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "error", code: "name_taken", message: "name taken" });
  assert.equal(seen.error.length, 0, "not an error for the page");
  assert.equal(ws.readyState, 3, "the refused connection is closed");
  assert.equal(c.state, "reconnecting");
  t.mock.timers.tick(seen.state.at(-1).delay);
  ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice"], history: [] });
  assert.equal(c.state, "open");
  assert.equal(FakeWS.all.length, 3);
});

test("Client reports a taken name on the first join and can join again under another", (t) => {
  const { c, seen } = newClient(t);
  c.connect();
  const ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "error", code: "name_taken", message: "name taken" });
  assert.equal(seen.error[0].code, "name_taken");
  assert.equal(c.state, "connecting");
  assert.equal(c.send("x"), false);
  assert.equal(c.join("alice2"), true);
  assert.deepEqual(ws.sent.at(-1), { type: "join", name: "alice2" });
  ws.recv({ type: "welcome", room: "r", name: "alice2", members: ["alice", "alice2"], history: [] });
  assert.equal(c.name, "alice2");
});

test("Client.close leaves for good; connect starts over and resumes", (t) => {
  const { c, seen } = newClient(t);
  c.connect();
  const ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice"], history: [msg("3", "x")] });
  c.close();
  assert.deepEqual(ws.closedWith, { code: 1000, reason: "" });
  assert.equal(c.state, "closed");
  ws.drop(1000); // the close event arriving later changes nothing
  t.mock.timers.tick(60_000);
  assert.equal(FakeWS.all.length, 1);
  assert.equal(seen.state.filter((s) => s.state === "closed").length, 1);
  c.connect();
  FakeWS.last().open();
  assert.deepEqual(FakeWS.last().sent[0], { type: "join", name: "alice", since: "3" });
});

test("Client without a name (the server identifies it) resumes through the URL", (t) => {
  const { c } = newClient(t, { name: "", since: "41" });
  c.connect();
  const ws = FakeWS.last();
  assert.equal(ws.url, "ws://127.0.0.1:1/chat/r?since=41");
  ws.open();
  assert.deepEqual(ws.sent, [], "no join frame");
});

// ---- The HTTP fallback: Server-Sent Events down, POSTs up ----

test("EventStreamParser reads events split anywhere, with CRLF, comments, ids and a BOM", () => {
  const p = new EventStreamParser();
  const text = "\ufeffretry: 10\r\n: a comment\r\nevent: stream\r\ndata: {\"a\":1}\r\n\r\nid: 7\ndata: x\ndata:y\n\n:hb\n\ndata: z\r\rid\n\n";
  const events = [];
  for (let i = 0; i < text.length; i += 3) events.push(...p.push(text.slice(i, i + 3)));
  assert.deepEqual(events, [
    { event: "stream", data: '{"a":1}', id: "" },
    { event: "message", data: "x\ny", id: "7" },
    { event: "message", data: "z", id: "7" },
  ]);
  assert.equal(p.lastEventId, "", "an empty id field resets it");
  assert.equal(p.bytes, text.length);
  assert.deepEqual(p.push(":only a heartbeat\n"), []);
});

// FakeHTTP plays a wsroom server's fallback for fetch: each GET is a
// stream the test writes to; each POST is recorded and answered with the
// next status of postStatus (default 202).
class FakeHTTP {
  streams = [];
  posts = [];
  postStatus = [];
  refuse = null;
  fetch = async (url, init = {}) => {
    const method = init.method ?? "GET";
    if (method === "GET") {
      if (this.refuse) return new Response(this.refuse.body ?? "", { status: this.refuse.status });
      let ctl;
      const body = new ReadableStream({ start: (c) => (ctl = c) });
      const s = {
        url,
        init,
        aborted: false,
        push: (text) => ctl.enqueue(new TextEncoder().encode(text)),
        end: () => ctl.close(),
      };
      init.signal?.addEventListener("abort", () => {
        s.aborted = true;
        try {
          ctl.error(new DOMException("aborted", "AbortError"));
        } catch {
          // closed already
        }
      });
      this.streams.push(s);
      return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
    }
    const body = init.body instanceof Uint8Array ? init.body : String(init.body);
    this.posts.push({ url, headers: init.headers, body });
    const status = this.postStatus.shift() ?? 202;
    return new Response(null, { status, headers: status === 429 ? { "Retry-After": "1" } : {} });
  };
  last() {
    return this.streams[this.streams.length - 1];
  }
}

function hello(s, extra = {}) {
  const h = { token: "SRV.tok", post: "?", heartbeat: 25000, timeout: 40000, maxText: 64, maxBinary: 1024, ...extra };
  s.push(`retry: 2000\nevent: stream\ndata: ${JSON.stringify(h)}\n\n`);
}

function sse(s, ev, id) {
  s.push(`${id ? `id: ${id}\n` : ""}data: ${JSON.stringify(ev)}\n\n`);
}

// settle lets fetch, the stream's reader and the POSTs run.
async function settle() {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

test("EventStreamSocket opens on the stream event, posts frames in order, batched, and decodes binary", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  const http = new FakeHTTP();
  const ws = new EventStreamSocket("ws://h/chat/r?since=4", SUBPROTOCOL, { fetch: http.fetch });
  const got = [];
  let opened = 0;
  ws.onopen = () => opened++;
  ws.onmessage = (e) => got.push(e.data);
  ws.binaryType = "arraybuffer";
  await settle();
  assert.equal(http.streams[0].url, "http://h/chat/r?since=4");
  assert.equal(http.streams[0].init.headers.Accept, "text/event-stream");
  assert.equal(ws.readyState, 0);
  assert.throws(() => ws.send("early"), /connecting/);
  hello(http.last(), { post: "?room=r" });
  await settle();
  assert.equal(opened, 1);
  assert.equal(ws.readyState, 1);
  sse(http.last(), { type: "welcome", room: "r", name: "a", members: [], history: [] }, "5");
  http.last().push('data: {"type":"binary","data":"AQID"}\n\n');
  await settle();
  assert.equal(got[0], '{"type":"welcome","room":"r","name":"a","members":[],"history":[]}');
  assert.deepEqual([...new Uint8Array(got[1])], [1, 2, 3]);

  http.postStatus = [202, 429, 202, 202];
  ws.send('{"n":1}');
  ws.send('{"n":2}'); // while the first is in flight: batched with the next
  ws.send('{"n":3}');
  ws.send("x".repeat(60)); // would pass maxText with the others: a POST of its own
  ws.send(new Uint8Array([9]));
  await settle();
  t.mock.timers.tick(1000); // the 429's Retry-After
  await settle();
  assert.deepEqual(
    http.posts.map((p) => (typeof p.body === "string" ? p.body : [...p.body])),
    ['{"n":1}', '{"n":2}\n{"n":3}', '{"n":2}\n{"n":3}', "x".repeat(60), [9]],
  );
  assert.equal(http.posts[0].url, "http://h/chat/r?room=r");
  assert.equal(http.posts[0].headers[TOKEN_HEADER], "SRV.tok");
  assert.equal(http.posts[4].headers["Content-Type"], "application/octet-stream");

  const closes = [];
  ws.onclose = (e) => closes.push(e);
  http.last().push('event: close\ndata: {"code":1001,"reason":"server shutting down"}\n\n');
  await settle();
  assert.equal(closes.length, 1);
  assert.equal(closes[0].code, 1001);
  assert.equal(closes[0].reason, "server shutting down");
  assert.equal(ws.readyState, 3);
  assert.equal(http.last().aborted, true);
});

test("EventStreamSocket keeps the stream alive with empty POSTs and closes a silent one as lost", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  const http = new FakeHTTP();
  const ws = new EventStreamSocket("http://h/chat/r", SUBPROTOCOL, { fetch: http.fetch });
  const closes = [];
  ws.onclose = (e) => closes.push(e);
  await settle();
  hello(http.last(), { heartbeat: 1000, timeout: 1500 });
  await settle();
  for (let i = 0; i < 4; i++) {
    t.mock.timers.tick(500);
    http.last().push(":\n"); // the server's heartbeat comments
    await settle();
  }
  assert.ok(http.posts.length >= 1 && http.posts.every((p) => p.body === ""), "keepalives are empty POSTs");
  assert.equal(closes.length, 0);
  t.mock.timers.tick(3000); // the server falls silent
  await settle();
  assert.equal(closes.length, 1);
  assert.equal(closes[0].code, 1006);
  assert.match(closes[0].reason, /heartbeat/);
});

test("EventStreamSocket reports a refused stream's HTTP status, and whether to retry", async () => {
  const http = new FakeHTTP();
  for (const [status, final] of [[403, true], [409, true], [503, false], [426, false]]) {
    http.refuse = { status, body: "no" };
    const ws = new EventStreamSocket("http://h/chat/r", SUBPROTOCOL, { fetch: http.fetch });
    const closes = [];
    ws.onclose = (e) => closes.push(e);
    await settle();
    assert.equal(closes.length, 1, `status ${status}`);
    assert.equal(closes[0].status, status);
    assert.equal(closes[0].final, final, `status ${status}`);
    assert.match(closes[0].reason, new RegExp(`HTTP ${status}.*: no$`));
  }
});

test("EventStreamSocket says when a proxy holds the stream back", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  const http = new FakeHTTP();
  const ws = new EventStreamSocket("http://h/chat/r", SUBPROTOCOL, { fetch: http.fetch, bufferedAfter: 3000 });
  let buffered = 0;
  const closes = [];
  ws.onbuffered = () => buffered++;
  ws.onclose = (e) => closes.push(e);
  await settle();
  t.mock.timers.tick(2999);
  assert.equal(buffered, 0);
  t.mock.timers.tick(1);
  assert.equal(buffered, 1);
  t.mock.timers.tick(27000);
  assert.equal(closes.length, 1, "gives up after 30 s");
  assert.equal(closes[0].code, 1006);
  assert.match(closes[0].reason, /nothing arrived/);
});

const timersOn = new WeakSet();

// newFallbackClient is a Client whose WebSocket and fetch are fakes, with a
// session storage of its own.
function newFallbackClient(t, extra = {}) {
  FakeWS.all = [];
  if (!timersOn.has(t)) {
    timersOn.add(t);
    t.mock.timers.enable({ apis: ["setTimeout", "setInterval", "Date"], now: 1_000_000 });
  }
  const http = new FakeHTTP();
  const { storage = new Map(), ...rest } = extra;
  const store = { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v), removeItem: (k) => storage.delete(k) };
  const c = new Client({ url: "ws://127.0.0.1:1/chat/r", name: "alice", WebSocket: FakeWS, fetch: http.fetch, storage: store, random: () => 0.5, retryBase: 100, ...rest });
  const seen = { state: [], message: [], welcome: [], binary: [] };
  for (const k of Object.keys(seen)) c.on(k, (e) => seen[k].push(e));
  return { c, http, storage, seen };
}

test("Client falls back to SSE+POST when the upgrade fails, and remembers it for the session", async (t) => {
  const { c, http, storage, seen } = newFallbackClient(t);
  assert.equal(c.transport, "websocket");
  c.connect();
  FakeWS.last().drop(1006); // a proxy refused the upgrade: never opened
  assert.equal(c.transport, "sse");
  await settle();
  assert.equal(http.streams.length, 1);
  assert.equal(http.streams[0].url, "http://127.0.0.1:1/chat/r");
  assert.equal(storage.size, 0, "not remembered before it worked");
  hello(http.last());
  await settle();
  assert.deepEqual(http.posts.map((p) => JSON.parse(p.body)), [{ type: "join", name: "alice" }]);
  sse(http.last(), { type: "welcome", room: "r", name: "alice", members: ["alice"], history: [msg("3", "x")] }, "3");
  sse(http.last(), msg("4", "y"), "4");
  await settle();
  assert.equal(c.state, "open");
  assert.equal(seen.state.find((s) => s.state === "connecting" && s.transport === "sse").attempt, 0, "the fallback is not a retry");
  assert.deepEqual(seen.message.map((m) => m.text), ["y"]);
  assert.equal(c.send("hi"), true);
  await settle();
  assert.deepEqual(JSON.parse(http.posts.at(-1).body), { type: "message", text: "hi" });
  assert.deepEqual([...storage.values()], ["sse"]);

  // A dropped stream comes back over SSE, resuming.
  http.last().end();
  await settle();
  assert.equal(c.state, "reconnecting");
  t.mock.timers.tick(seen.state.at(-1).delay);
  await settle();
  assert.equal(FakeWS.all.length, 1, "no WebSocket attempt");
  hello(http.last());
  await settle();
  assert.deepEqual(JSON.parse(http.posts.at(-1).body), { type: "join", name: "alice", since: "4" });

  // Another Client of the session starts with the fallback.
  const again = newFallbackClient(t, { storage });
  assert.equal(again.c.transport, "sse");
  again.c.connect();
  await settle();
  assert.equal(FakeWS.all.length, 0);
  assert.equal(again.http.streams.length, 1);
});

test("Client falls back when the WebSocket opens but no frame arrives in time", async (t) => {
  const { c, http } = newFallbackClient(t, { fallbackAfter: 2000 });
  c.connect();
  const ws = FakeWS.last();
  ws.open();
  t.mock.timers.tick(1999);
  assert.equal(c.transport, "websocket");
  t.mock.timers.tick(1);
  assert.equal(ws.readyState, 3, "the mute socket is closed");
  assert.equal(c.transport, "sse");
  await settle();
  assert.equal(http.streams.length, 1);
});

test("Client stays on WebSocket when the fallback fails too (the server is down), and forgets SSE on 426", async (t) => {
  const { c, http, storage, seen } = newFallbackClient(t);
  c.connect();
  http.refuse = { status: 502, body: "bad gateway" };
  FakeWS.last().drop(1006);
  await settle();
  assert.equal(c.state, "reconnecting");
  assert.equal(c.transport, "websocket", "the next attempt is a WebSocket again");
  assert.equal(storage.size, 0);
  assert.equal(seen.state.at(-1).reconnect, true);

  // With SSE remembered, a server that has the fallback off (426) sends
  // the client back to WebSocket.
  storage.set("wsroom.transport 127.0.0.1:1/chat/r", "sse");
  const again = newFallbackClient(t, { storage });
  again.http.refuse = { status: 426, body: "WebSocket only" };
  again.c.connect();
  await settle();
  assert.equal(again.c.transport, "websocket");
  assert.equal(storage.size, 0);

  // A refusal that retrying cannot help ends it, saying why.
  const third = newFallbackClient(t);
  third.http.refuse = { status: 403, body: "origin not allowed" };
  third.c.connect();
  FakeWS.last().drop(1006);
  await settle();
  assert.equal(third.c.state, "closed");
  assert.match(third.seen.state.at(-1).explanation, /refused.*403.*origin not allowed/);
});

test("Client says so when the event stream is buffered on the way", async (t) => {
  const { c, seen } = newFallbackClient(t, { transports: ["sse"], bufferedAfter: 1000 });
  c.connect();
  await settle();
  t.mock.timers.tick(1000);
  const st = seen.state.at(-1);
  assert.equal(st.state, "connecting");
  assert.equal(st.buffered, true);
  assert.match(st.explanation, /proxy/);
});
