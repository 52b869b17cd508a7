// Tests of wsroom.js without a browser: node --test (no dependencies).
// A fake WebSocket stands in for the server; timers are mocked, so the
// tests never wait.
import { test, mock } from "node:test";
import assert from "node:assert/strict";

import {
  Client,
  IdSet,
  MemberSet,
  SUBPROTOCOL,
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
  const c = new Client({ url: "ws://127.0.0.1:1/chat/r", name: "alice", WebSocket: FakeWS, random: () => 0.5, retryBase: 100, ...extra });
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

test("Client pages the member list when the welcome has only the first page", (t) => {
  const { c, seen } = newClient(t, { membersLimit: 2 });
  c.connect();
  const ws = FakeWS.last();
  ws.open();
  ws.recv({ type: "welcome", room: "r", name: "alice", members: ["alice", "bob"], count: 5, history: [] });
  assert.deepEqual(ws.sent.at(-1), { type: "members", after: "bob", limit: 2 });
  assert.equal(c.memberCount, 5);
  ws.recv({ type: "join", name: "zoe" }); // arrives while paging: a set operation
  ws.recv({ type: "members", members: ["carol", "dave"], count: 6, more: true });
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
