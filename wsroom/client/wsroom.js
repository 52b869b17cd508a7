// wsroom.js — the browser client of wsroom's JSON protocol (subprotocol
// "wsroom.v1"). An ES module with no dependencies and no build step: the Go
// package serves it (wsroom.ClientHandler), or copy it next to your page.
// Types for TypeScript are in wsroom.d.ts beside it.
//
//	import { Client } from "/wsroom.js";
//	const chat = new Client({ url: "/chat/lobby", name: "alice" });
//	chat.on("message", (m) => show(m.from, m.text, m.ts));
//	chat.on("state", (s) => status(s.state, s.explanation));
//	chat.connect();
//	chat.send("hello");
//
// The Client joins, splits batched frames, keeps a live member set, pages
// history and members, and reconnects with exponential backoff and full
// jitter, resuming after the highest message id it has seen so that nothing
// is missed and nothing is shown twice. It stops for good on the close codes
// after which coming back cannot help (see FINAL_CLOSE_CODES) and says why.
//
// The helpers it is built from (parseFrame, backoffDelay, IdSet, MemberSet,
// explainClose) are exported too; they need no browser.

/** The WebSocket subprotocol of the JSON protocol. */
export const SUBPROTOCOL = "wsroom.v1";

/**
 * Close codes after which the client does not reconnect: coming back would
 * fail the same way, or (4001) fight the newer connection that replaced it.
 */
export const FINAL_CLOSE_CODES = Object.freeze([1003, 1007, 1008, 1009, 4001]);

const CLOSE_TEXT = {
  1000: "The server ended the session.",
  1001: "The server is restarting or shutting down.",
  1002: "The server reported a protocol error.",
  1003: "The server does not accept binary messages here.",
  1005: "The connection closed without a reason.",
  1006: "The connection was lost (network down, or the server is unreachable).",
  1007: "A message was not valid UTF-8 text.",
  1008: "The server closed the connection by policy",
  1009: "A message was too big for the server.",
  1011: "The server hit an internal error.",
  1012: "The server is restarting its service.",
  1013: "The connection could not keep up; trying again later.",
  1015: "The secure connection failed (TLS).",
  4001: "Another connection with your identity took over (another tab or device?).",
};

/**
 * explainClose tells what a close code means to a person and whether a
 * client should come back after it.
 * @param {number} code the close code (1006 when the connection dropped)
 * @param {string} [reason] the close reason the server sent
 * @param {{opened?: boolean, normalReconnects?: boolean}} [how] opened: whether
 *   the connection ever opened (a refused handshake looks like 1006 to a
 *   browser); normalReconnects: come back after 1000 too
 * @returns {{code: number, reason: string, reconnect: boolean, explanation: string}}
 */
export function explainClose(code, reason = "", how = {}) {
  const opened = how.opened !== false;
  let explanation;
  if (!opened && (code === 1006 || code === 1005)) {
    explanation = "Could not connect: the server is unreachable or refused the connection.";
  } else {
    explanation = CLOSE_TEXT[code] ?? `The connection closed (code ${code}).`;
  }
  if (code === 1008) explanation += reason ? `: ${reason}.` : " (rate limit, no join in time, or removed).";
  else if (reason && code !== 1000) explanation += ` (${reason})`;
  let reconnect = !FINAL_CLOSE_CODES.includes(code);
  if (code === 1000 && !how.normalReconnects) reconnect = false;
  return { code, reason, reconnect, explanation };
}

/**
 * parseFrame splits a text frame of the server into its events: one JSON
 * object per line. A line that is not a JSON object with a string "type"
 * becomes a local error event (code "bad_frame") instead of throwing.
 * @param {string} data
 * @returns {Array<{type: string, [k: string]: unknown}>}
 */
export function parseFrame(data) {
  const events = [];
  for (const line of data.split("\n")) {
    if (line.trim() === "") continue;
    let ev;
    try {
      ev = JSON.parse(line);
    } catch (err) {
      events.push({ type: "error", code: "bad_frame", message: `Unreadable event from the server: ${err.message}`, local: true });
      continue;
    }
    if (ev === null || typeof ev !== "object" || Array.isArray(ev) || typeof ev.type !== "string") {
      events.push({ type: "error", code: "bad_frame", message: "An event from the server has no type.", local: true });
      continue;
    }
    events.push(ev);
  }
  return events;
}

/**
 * backoffDelay is the wait before reconnect attempt number attempt (0 for
 * the first), exponential with full jitter: a random time between 0 and
 * min(max, base × 2^attempt) milliseconds, so that clients dropped together
 * do not come back together.
 * @param {number} attempt
 * @param {{base?: number, max?: number}} [o] defaults 500 and 30000 ms
 * @param {() => number} [random] Math.random by default
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, o = {}, random = Math.random) {
  const base = o.base ?? 500;
  const max = o.max ?? 30000;
  const ceiling = Math.min(max, base * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.floor(random() * ceiling);
}

/**
 * compareIds orders two message ids, decimal strings of any length:
 * negative when a < b, 0 when equal, positive when a > b.
 * @param {string} a
 * @param {string} b
 */
export function compareIds(a, b) {
  a = a.replace(/^0+(?=\d)/, "");
  b = b.replace(/^0+(?=\d)/, "");
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * IdSet remembers the message ids seen, to drop a message delivered twice
 * (a resume that overlaps what was shown), and the highest id, to resume
 * from. It keeps the last `limit` ids; the highest is never forgotten.
 */
export class IdSet {
  #ids = new Set();
  #limit;
  /** @type {string | null} */
  highest = null;
  /** @type {string | null} */
  lowest = null;

  /** @param {number} [limit] default 10000 */
  constructor(limit = 10000) {
    this.#limit = limit;
  }

  /**
   * add records id and reports whether it is new.
   * @param {string} id
   */
  add(id) {
    if (this.#ids.has(id)) return false;
    this.#ids.add(id);
    if (this.#ids.size > this.#limit) this.#ids.delete(this.#ids.values().next().value);
    if (this.highest === null || compareIds(id, this.highest) > 0) this.highest = id;
    this.note(id);
    return true;
  }

  /**
   * note lowers the lowest id known without remembering id as seen (a page
   * of older history).
   * @param {string} id
   */
  note(id) {
    if (this.lowest === null || compareIds(id, this.lowest) < 0) this.lowest = id;
  }

  /** @param {string} id */
  has(id) {
    return this.#ids.has(id);
  }

  get size() {
    return this.#ids.size;
  }
}

/**
 * MemberSet is a room's member list as a set: the welcome's first page,
 * further pages, and join, leave and presence events applied as set
 * operations (a join may name a member already there: a reconnect that
 * replaced itself).
 */
export class MemberSet {
  #names = new Set();
  #count = 0;

  /**
   * reset starts over from a welcome: its first page and the room's count.
   * @param {string[]} names
   * @param {number} [count] all members; default names.length
   */
  reset(names, count) {
    this.#names = new Set(names);
    this.#count = Math.max(count ?? names.length, this.#names.size);
  }

  /**
   * addPage adds a page of the member list.
   * @param {string[]} names
   * @param {number} [count] all members, as the server counts them now
   */
  addPage(names, count) {
    for (const n of names) this.#names.add(n);
    this.#count = Math.max(count ?? this.#count, this.#names.size);
  }

  /** add reports whether name was not a member yet. @param {string} name */
  add(name) {
    if (this.#names.has(name)) return false;
    this.#names.add(name);
    this.#count++;
    return true;
  }

  /** delete reports whether name was a member. @param {string} name */
  delete(name) {
    if (!this.#names.delete(name)) {
      return false;
    }
    this.#count = Math.max(this.#count - 1, this.#names.size);
    return true;
  }

  /**
   * apply adds the joined names and removes the left ones (a presence event).
   * @param {string[]} [joined]
   * @param {string[]} [left]
   */
  apply(joined = [], left = []) {
    for (const n of joined) this.add(n);
    for (const n of left) this.delete(n);
  }

  /** @param {string} name */
  has(name) {
    return this.#names.has(name);
  }

  /** the names known, sorted */
  list() {
    return [...this.#names].sort();
  }

  /** how many names are known */
  get size() {
    return this.#names.size;
  }

  /** how many members the room has: at least size; more while pages are missing */
  get count() {
    return this.#count;
  }

  /** whether every member's name is known */
  get complete() {
    return this.#names.size >= this.#count;
  }
}

const OPEN = 1;

/**
 * Client is one member's connection to a room: it joins, keeps the room's
 * state (members, the messages seen) and reconnects until closed.
 *
 * Events (subscribe with on): "state", "welcome", "join", "leave",
 * "presence", "members", "message", "history", "binary", "error". See
 * wsroom.d.ts for their payloads.
 */
export class Client {
  /** the transport in use; "websocket" is the only one for now */
  transport = "websocket";
  /** how many duplicate messages were dropped */
  duplicates = 0;

  #o;
  #url;
  #handlers = new Map();
  #ws = null;
  #state = "idle";
  #joined = false;
  #wanted = false;
  #everJoined = false;
  #opened = false;
  #attempt = 0;
  #nameRetries = 0;
  #timer = null;
  #retryAt = 0;
  #welcomedAt = 0;
  #room = "";
  #name = "";
  #ids = new IdSet();
  #members = new MemberSet();
  #membersAfter = null;
  #moreHistory = null;

  /**
   * @param {object} options see ClientOptions in wsroom.d.ts
   */
  constructor(options) {
    if (!options || !options.url) throw new TypeError("wsroom: Client needs a url");
    this.#o = {
      name: "",
      since: "",
      reconnect: true,
      normalReconnects: false,
      retryBase: 500,
      retryMax: 30000,
      maxRetries: Infinity,
      stableAfter: 5000,
      historyLimit: 50,
      membersLimit: 100,
      nameRetries: 8,
      binaryType: "blob",
      random: Math.random,
      WebSocket: globalThis.WebSocket,
      ...options,
    };
    this.#url = options.url;
    this.#name = this.#o.name;
    if (this.#o.since) this.#ids.highest = String(this.#o.since);
  }

  /**
   * on subscribes fn to events of type and returns a function that
   * unsubscribes it.
   * @param {string} type
   * @param {(ev: any) => void} fn
   */
  on(type, fn) {
    let set = this.#handlers.get(type);
    if (!set) this.#handlers.set(type, (set = new Set()));
    set.add(fn);
    return () => set.delete(fn);
  }

  #emit(type, ev) {
    const set = this.#handlers.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(ev);
      } catch (err) {
        // A failing handler must not break the connection's bookkeeping:
        // report its error as the browser does for event listeners.
        if (typeof globalThis.reportError === "function") globalThis.reportError(err);
        else
          setTimeout(() => {
            throw err;
          });
      }
    }
  }

  /** the connection state: "idle", "connecting", "open", "reconnecting" or "closed" */
  get state() {
    return this.#state;
  }
  /** whether the member is in the room (welcomed, not closed since) */
  get joined() {
    return this.#joined;
  }
  /** the room, as the welcome named it */
  get room() {
    return this.#room;
  }
  /** the member's name: as the welcome named it, else as asked */
  get name() {
    return this.#name;
  }
  /** the members known, sorted */
  get members() {
    return this.#members.list();
  }
  /** how many members the room has (more than members.length while pages are missing) */
  get memberCount() {
    return this.#members.count;
  }
  /** the highest message id seen: where a reconnect resumes */
  get lastId() {
    return this.#ids.highest;
  }
  /** the lowest message id seen: where "older messages" pages back from */
  get oldestId() {
    return this.#ids.lowest;
  }
  /** whether older history exists: null until a history page said */
  get moreHistory() {
    return this.#moreHistory;
  }
  /** when the pending reconnect is due (ms since the epoch), 0 if none */
  get retryAt() {
    return this.#timer === null ? 0 : this.#retryAt;
  }

  /**
   * connect opens the connection and joins. It does nothing while already
   * connecting or open; after close it starts over (resuming).
   */
  connect() {
    if (this.#wanted && this.#state !== "closed") return this;
    this.#wanted = true;
    this.#attempt = 0;
    this.#nameRetries = 0;
    this.#open();
    return this;
  }

  /**
   * close leaves the room for good: no reconnect follows.
   * @param {number} [code] default 1000
   * @param {string} [reason]
   */
  close(code = 1000, reason = "") {
    this.#wanted = false;
    this.#cancelTimer();
    const ws = this.#ws;
    this.#ws = null;
    this.#joined = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch {
        ws.close();
      }
    }
    this.#setState("closed", { code, reason, reconnect: false, explanation: "You left." });
  }

  /**
   * reconnectNow skips the wait of a pending reconnect.
   */
  reconnectNow() {
    if (this.#timer === null) return false;
    this.#cancelTimer();
    this.#open();
    return true;
  }

  /**
   * join asks to join under name on the open connection (after a bad_name
   * or name_taken error); later reconnects use the name too.
   * @param {string} name
   */
  join(name) {
    this.#name = name;
    if (this.#joined || !this.#ws || this.#ws.readyState !== OPEN) return false;
    return this.#sendJoin();
  }

  /**
   * send says text in the room. It returns false when not joined.
   * @param {string} text
   */
  send(text) {
    return this.#sendJSON({ type: "message", text: String(text) });
  }

  /**
   * sendBinary sends data (a Blob, an ArrayBuffer or a typed array) as a
   * binary message. It returns false when not joined.
   * @param {Blob | ArrayBuffer | ArrayBufferView} data
   */
  sendBinary(data) {
    if (!this.#joined || this.#ws.readyState !== OPEN) return false;
    this.#ws.send(data);
    return true;
  }

  /**
   * olderMessages asks for the page of history before the oldest message
   * seen (the latest page if none was). The answer is a "history" event.
   * @param {number} [limit]
   */
  olderMessages(limit = this.#o.historyLimit) {
    const req = { limit };
    if (this.#ids.lowest !== null) req.before = this.#ids.lowest;
    return this.requestHistory(req);
  }

  /**
   * requestHistory asks for a page of history; the answer is a "history"
   * event.
   * @param {{before?: string, limit?: number}} [req]
   */
  requestHistory(req = {}) {
    return this.#sendJSON({ type: "history", ...req });
  }

  /**
   * requestMembers asks for a page of the member list. The client pages
   * the whole list by itself after each welcome; this is for applications
   * that want to page by hand.
   * @param {{after?: string, limit?: number}} [req]
   */
  requestMembers(req = {}) {
    return this.#sendJSON({ type: "members", ...req });
  }

  #sendJSON(obj) {
    if (!this.#joined || !this.#ws || this.#ws.readyState !== OPEN) return false;
    this.#ws.send(JSON.stringify(obj));
    return true;
  }

  #sendJoin() {
    const join = { type: "join", name: this.#name };
    if (this.#ids.highest !== null) join.since = this.#ids.highest;
    this.#ws.send(JSON.stringify(join));
    return true;
  }

  #setState(state, info = {}) {
    const previous = this.#state;
    this.#state = state;
    this.#emit("state", { state, previous, ...info });
  }

  #cancelTimer() {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #resolveURL() {
    let url = this.#url;
    const loc = globalThis.location;
    if (!/^wss?:\/\//i.test(url) && loc) {
      const u = new URL(url, loc.href);
      u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
      url = u.href;
    }
    if (!this.#name && this.#ids.highest !== null) {
      // The server names this member (Identify): no join frame, so the
      // resume point travels in the URL.
      const u = new URL(url);
      u.searchParams.set("since", this.#ids.highest);
      url = u.href;
    }
    return url;
  }

  #open() {
    this.#opened = false;
    this.#joined = false;
    this.#setState("connecting", { attempt: this.#attempt });
    let ws;
    try {
      ws = new this.#o.WebSocket(this.#resolveURL(), SUBPROTOCOL);
    } catch (err) {
      this.#wanted = false;
      this.#setState("closed", { code: 0, reason: "", reconnect: false, explanation: `Cannot connect: ${err.message}` });
      return;
    }
    ws.binaryType = this.#o.binaryType;
    this.#ws = ws;
    ws.onopen = () => {
      this.#opened = true;
      if (this.#name) this.#sendJoin();
    };
    ws.onmessage = (e) => {
      if (typeof e.data === "string") {
        for (const ev of parseFrame(e.data)) this.#handle(ev);
      } else {
        this.#emit("binary", { data: e.data });
      }
    };
    ws.onerror = () => {}; // a close event follows and says more
    ws.onclose = (e) => this.#closed(ws, e.code, e.reason);
  }

  #closed(ws, code, reason) {
    if (ws !== this.#ws) return;
    this.#ws = null;
    const wasJoined = this.#joined;
    this.#joined = false;
    if (!this.#wanted) return;
    const info = explainClose(code, reason, { opened: this.#opened, normalReconnects: this.#o.normalReconnects });
    if (wasJoined && Date.now() - this.#welcomedAt >= this.#o.stableAfter) this.#attempt = 0;
    if (!info.reconnect || !this.#o.reconnect || this.#attempt >= this.#o.maxRetries) {
      this.#wanted = false;
      this.#setState("closed", info);
      return;
    }
    this.#retry(info);
  }

  #retry(info) {
    const delay = backoffDelay(this.#attempt, { base: this.#o.retryBase, max: this.#o.retryMax }, this.#o.random);
    this.#attempt++;
    this.#retryAt = Date.now() + delay;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#wanted) this.#open();
    }, delay);
    this.#setState("reconnecting", { ...info, delay, at: this.#retryAt, attempt: this.#attempt });
  }

  #handle(ev) {
    switch (ev.type) {
      case "welcome":
        return this.#welcome(ev);
      case "message":
        if (typeof ev.id === "string" && !this.#ids.add(ev.id)) {
          this.duplicates++;
          return;
        }
        return this.#emit("message", ev);
      case "history": {
        const messages = [];
        for (const m of ev.messages ?? []) {
          if (typeof m.id === "string") {
            if (this.#ids.has(m.id)) {
              this.duplicates++;
              continue;
            }
            this.#ids.note(m.id);
          }
          messages.push(m);
        }
        this.#moreHistory = !!ev.more;
        return this.#emit("history", { ...ev, messages, more: !!ev.more });
      }
      case "join": {
        const rejoined = !this.#members.add(ev.name);
        this.#emit("join", { ...ev, rejoined });
        return this.#membersChanged();
      }
      case "leave":
        this.#members.delete(ev.name);
        this.#emit("leave", ev);
        return this.#membersChanged();
      case "presence":
        this.#members.apply(ev.joined, ev.left);
        this.#emit("presence", { ...ev, joined: ev.joined ?? [], left: ev.left ?? [] });
        return this.#membersChanged();
      case "members": {
        const names = ev.members ?? [];
        this.#members.addPage(names, ev.count);
        this.#membersAfter = null;
        if (ev.more && names.length > 0) this.#pageMembers(names[names.length - 1]);
        return this.#membersChanged();
      }
      case "error":
        if (!this.#joined && ev.code === "name_taken" && this.#everJoined && this.#nameRetries < this.#o.nameRetries) {
          // Our previous connection may still hold the name until the
          // server notices it is gone: come back a little later.
          this.#nameRetries++;
          const ws = this.#ws;
          this.#ws = null;
          ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
          ws.close(1000, "name taken; retrying");
          return this.#retry({ code: 1000, reason: "", reconnect: true, explanation: "The previous connection still holds the name; trying again." });
        }
        return this.#emit("error", ev);
      default:
        return; // a newer server's event: ignored
    }
  }

  #welcome(w) {
    const resumed = this.#everJoined || this.#ids.highest !== null;
    this.#joined = true;
    this.#everJoined = true;
    this.#nameRetries = 0;
    this.#welcomedAt = Date.now();
    this.#room = w.room ?? "";
    this.#name = w.name ?? this.#name;
    const first = w.members ?? [];
    this.#members.reset(first, w.count);
    this.#membersAfter = null;
    const history = [];
    for (const m of w.history ?? []) {
      if (typeof m.id === "string" && !this.#ids.add(m.id)) {
        this.duplicates++;
        continue;
      }
      history.push(m);
    }
    this.#setState("open", { code: 0, reason: "", reconnect: true, explanation: `In ${this.#room} as ${this.#name}.` });
    this.#emit("welcome", { ...w, members: first, history, gap: !!w.gap, resumed });
    this.#membersChanged();
    if (!this.#members.complete && first.length > 0) this.#pageMembers(first[first.length - 1]);
  }

  #pageMembers(after) {
    if (this.#membersAfter === after) return;
    this.#membersAfter = after;
    this.requestMembers({ after, limit: this.#o.membersLimit });
  }

  #membersChanged() {
    this.#emit("members", { members: this.#members.list(), count: this.#members.count, complete: this.#members.complete });
  }
}
