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
// Where WebSocket is blocked (a proxy that strips the Upgrade header, or
// passes nothing after it), the Client falls back to wsroom's HTTP fallback
// by itself: Server-Sent Events down, POSTs up (EventStreamSocket), and
// keeps to it for the rest of the session; `client.transport` says which
// is in use. The API is the same either way.
//
// The Client joins, splits batched frames, keeps a live member set, pages
// history and members, and reconnects with exponential backoff and full
// jitter, resuming after the highest message id it has seen so that nothing
// is missed and nothing is shown twice. It stops for good on the close codes
// after which coming back cannot help (see FINAL_CLOSE_CODES) and says why.
//
// The helpers it is built from (parseFrame, backoffDelay, IdSet, MemberSet,
// explainClose, EventStreamParser, EventStreamSocket) are exported too; they
// need no browser.

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

/**
 * EventStreamParser reads the Server-Sent Events format (the HTML
 * standard's "text/event-stream") from text chunks split anywhere, and
 * returns the events each chunk completes. Comments (heartbeats) return
 * nothing; `bytes` counts everything read.
 */
export class EventStreamParser {
  #buf = "";
  #data = [];
  #event = "";
  #id = null;
  #start = true;
  /** characters read, comments included */
  bytes = 0;
  /** the last event id seen ("" until one is) */
  lastEventId = "";

  /**
   * push reads a chunk and returns the events it completed.
   * @param {string} chunk
   * @returns {Array<{event: string, data: string, id: string}>}
   */
  push(chunk) {
    this.bytes += chunk.length;
    if (this.#start && chunk.length > 0) {
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      this.#start = false;
    }
    this.#buf += chunk;
    const out = [];
    let at = 0;
    for (;;) {
      const cr = this.#buf.indexOf("\r", at);
      const lf = this.#buf.indexOf("\n", at);
      if (cr < 0 && lf < 0) break;
      let end, next;
      if (cr >= 0 && (lf < 0 || cr < lf)) {
        if (cr + 1 >= this.#buf.length) break; // a CR at the end: LF may follow
        end = cr;
        next = this.#buf[cr + 1] === "\n" ? cr + 2 : cr + 1;
      } else {
        end = lf;
        next = lf + 1;
      }
      this.#line(this.#buf.slice(at, end), out);
      at = next;
    }
    this.#buf = this.#buf.slice(at);
    return out;
  }

  #line(line, out) {
    if (line === "") {
      if (this.#id !== null) this.lastEventId = this.#id;
      this.#id = null;
      if (this.#data.length > 0) out.push({ event: this.#event || "message", data: this.#data.join("\n"), id: this.lastEventId });
      this.#data = [];
      this.#event = "";
      return;
    }
    if (line[0] === ":") return; // a comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    switch (field) {
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
    }
  }
}

/** The request header of a fallback POST naming its stream. */
export const TOKEN_HEADER = "Wsroom-Token";

const HTTP_REASONS = {
  400: "bad request",
  401: "not logged in",
  403: "forbidden (not allowed from this page, or refused by the server)",
  404: "no such endpoint",
  409: "your identity is already connected",
  426: "the server speaks WebSocket only",
  429: "too many connections from your address",
  501: "the server cannot stream",
  503: "the server is unavailable or full",
};

/** How long a stream may take to bring its first event (ms). */
const OPEN_TIMEOUT = 30000;

/** HTTP statuses of a refused stream after which retrying cannot help. */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 409, 501]);
/** HTTP statuses of a refused POST after which a new stream cannot help. */
const POST_FINAL_STATUSES = new Set([400, 401, 403, 415]);

/**
 * EventStreamSocket is wsroom's HTTP fallback with the part of the
 * WebSocket interface the Client uses: a Server-Sent Events stream (read
 * with fetch) brings the events down, and POSTs, one at a time so that
 * they keep their order, carry the frames up, batched while one is in
 * flight. It POSTs an empty body when it has had nothing to send for the
 * heartbeat the server announced (the server drops a client that stops
 * POSTing), and closes as lost (1006) when the stream stays silent longer
 * than the server's heartbeat allows. When nothing of the stream arrives
 * within bufferedAfter ms, something on the way (a proxy) may be holding
 * it back: it calls onbuffered, and gives up (1006) after 30 s.
 *
 * Its close event has, besides code and reason, the HTTP status of a
 * refused stream (status) and whether retrying can help (final).
 */
export class EventStreamSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSING = 2;
  static CLOSED = 3;

  readyState = 0;
  protocol = SUBPROTOCOL;
  binaryType = "blob";
  /** @type {string} the stream's URL (http: or https:) */
  url;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  /** called once when nothing arrives for bufferedAfter ms after the response */
  onbuffered = null;

  #fetch;
  #ac = new AbortController();
  #bufferedAfter;
  #hello = null;
  #post = "";
  #queue = [];
  #posting = false;
  #lastPost = 0;
  #lastByte = 0;
  #timers = [];
  #parser = new EventStreamParser();

  /**
   * @param {string} url ws:, wss:, http: or https: URL of the chat endpoint
   * @param {string | string[]} [_protocols] ignored: the fallback speaks wsroom.v1
   * @param {{fetch?: typeof fetch, bufferedAfter?: number}} [o]
   */
  constructor(url, _protocols, o = {}) {
    const u = new URL(url, globalThis.location?.href);
    if (u.protocol === "ws:") u.protocol = "http:";
    if (u.protocol === "wss:") u.protocol = "https:";
    this.url = u.href;
    this.#fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
    this.#bufferedAfter = o.bufferedAfter ?? 5000;
    this.#start();
  }

  async #start() {
    // A proxy that buffers the stream may hold back even the response's
    // headers: the wait starts with the request.
    this.#timers.push(
      setTimeout(() => {
        if (this.readyState === 0 && this.#parser.bytes === 0) this.onbuffered?.();
      }, this.#bufferedAfter),
      setTimeout(() => {
        if (this.readyState === 0) this.#end(1006, `nothing arrived in ${OPEN_TIMEOUT / 1000} s`);
      }, OPEN_TIMEOUT),
    );
    let res;
    try {
      res = await this.#fetch(this.url, {
        headers: { Accept: "text/event-stream" },
        credentials: "include",
        cache: "no-store",
        signal: this.#ac.signal,
      });
    } catch (err) {
      return this.#end(1006, "", { error: String(err?.message ?? err) });
    }
    if (this.readyState >= 2) return;
    const ctype = res.headers.get("Content-Type") ?? "";
    if (!res.ok || !ctype.startsWith("text/event-stream")) {
      let text = "";
      try {
        text = (await res.text()).trim().slice(0, 200);
      } catch {
        // the body is not needed to say why
      }
      const status = res.ok ? 0 : res.status;
      const why = status ? `HTTP ${status}${HTTP_REASONS[status] ? ", " + HTTP_REASONS[status] : ""}${text ? ": " + text : ""}` : "not an event stream";
      return this.#end(1006, why, { status, final: FINAL_STATUSES.has(status) });
    }
    this.#lastByte = Date.now();
    try {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.readyState >= 2) break;
        this.#lastByte = Date.now();
        for (const ev of this.#parser.push(decoder.decode(value, { stream: true }))) {
          this.#event(ev);
          if (this.readyState >= 2) return;
        }
      }
    } catch (err) {
      return this.#end(1006, "", { error: String(err?.message ?? err) });
    }
    this.#end(1006, "");
  }

  #event(ev) {
    switch (ev.event) {
      case "stream": {
        let h;
        try {
          h = JSON.parse(ev.data);
        } catch {
          return this.#end(1002, "unreadable stream event");
        }
        this.#hello = h;
        this.#post = new URL(h.post ?? "", this.url).href;
        this.readyState = 1;
        this.#lastPost = Date.now();
        if (h.heartbeat > 0) {
          this.#timers.push(setInterval(() => this.#beat(), Math.max(h.heartbeat / 2, 50)));
        }
        return this.onopen?.({});
      }
      case "close": {
        let c = {};
        try {
          c = JSON.parse(ev.data);
        } catch {
          // a close all the same
        }
        return this.#end(typeof c.code === "number" ? c.code : 1006, typeof c.reason === "string" ? c.reason : "");
      }
      case "message":
        if (ev.data.startsWith('{"type":"binary"')) {
          let bytes;
          try {
            bytes = Uint8Array.from(atob(JSON.parse(ev.data).data), (c) => c.charCodeAt(0));
          } catch {
            return this.onmessage?.({ data: ev.data });
          }
          return this.onmessage?.({ data: this.binaryType === "arraybuffer" ? bytes.buffer : new Blob([bytes]) });
        }
        return this.onmessage?.({ data: ev.data });
    }
  }

  #beat() {
    const h = this.#hello;
    const now = Date.now();
    if (now - this.#lastByte > h.timeout + h.heartbeat) {
      return this.#end(1006, "the server's heartbeat stopped");
    }
    if (now - this.#lastPost >= h.heartbeat && this.#queue.length === 0 && !this.#posting) {
      this.#queue.push("");
      this.#pump();
    }
  }

  /**
   * send queues a text frame (a string) or a binary message for the next
   * POST.
   * @param {string | Blob | ArrayBuffer | ArrayBufferView} data
   */
  send(data) {
    if (this.readyState === 0) throw new DOMException("still connecting", "InvalidStateError");
    if (this.readyState !== 1) return;
    this.#queue.push(data);
    this.#pump();
  }

  // #batch takes the next POST's body from the queue: text frames joined
  // by newlines within the server's limit, or one binary message.
  #batch() {
    const first = this.#queue.shift();
    if (typeof first !== "string") return { body: first, type: "application/octet-stream" };
    const max = this.#hello.maxText > 0 ? this.#hello.maxText : Infinity;
    let body = first;
    while (this.#queue.length > 0 && typeof this.#queue[0] === "string" && this.#queue[0] !== "" && body.length + 1 + this.#queue[0].length <= max) {
      body += (body ? "\n" : "") + this.#queue.shift();
    }
    return { body, type: "text/plain;charset=UTF-8" };
  }

  async #pump() {
    if (this.#posting) return;
    this.#posting = true;
    try {
      while (this.#queue.length > 0 && this.readyState === 1) {
        const { body, type } = this.#batch();
        for (let tries = 0; ; tries++) {
          let res;
          this.#lastPost = Date.now();
          try {
            res = await this.#fetch(this.#post, {
              method: "POST",
              headers: { [TOKEN_HEADER]: this.#hello.token, "Content-Type": type },
              body,
              credentials: "include",
              cache: "no-store",
            });
          } catch (err) {
            return this.#end(1006, "", { error: String(err?.message ?? err) });
          }
          if (res.status === 429 && tries < 5 && this.readyState === 1) {
            const wait = 1000 * (Number(res.headers.get("Retry-After")) || 1);
            await new Promise((resolve) => this.#timers.push(setTimeout(resolve, wait)));
            continue;
          }
          if (res.status === 202 || res.status === 413) break; // 413: the stream closes with 1009
          // 404: the stream ended (the server will not take this token any
          // more), worth a new one; 400, 403, 415: the server will not take
          // this page's POSTs at all.
          const status = res.status;
          return this.#end(1006, `a POST got HTTP ${status}${HTTP_REASONS[status] ? ", " + HTTP_REASONS[status] : ""}`, {
            status,
            final: POST_FINAL_STATUSES.has(status),
          });
        }
      }
    } finally {
      this.#posting = false;
    }
  }

  /** close ends the stream; no close event follows (as after WebSocket.close, once the handlers are removed). */
  close(code = 1000, reason = "") {
    if (this.readyState >= 2) return;
    this.#end(code, reason, { wasClean: true });
  }

  #end(code, reason, extra = {}) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    for (const t of this.#timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.#timers = [];
    this.#queue = [];
    this.#ac.abort();
    this.onclose?.({ code, reason, wasClean: false, status: 0, final: false, ...extra });
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
  /**
   * the transport in use, or about to be: "websocket", or "sse" (the HTTP
   * fallback: Server-Sent Events down, POSTs up)
   */
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
  #membersCursor = null; // the last name of the last page received
  #membersTimer = null;
  #moreHistory = null;
  #probing = false; // trying the fallback after WebSocket failed
  #gotFrame = false;
  #fallbackTimer = null;

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
      membersAuto: 1000,
      membersPageDelay: 100,
      nameRetries: 8,
      binaryType: "blob",
      random: Math.random,
      WebSocket: globalThis.WebSocket,
      transports: ["websocket", "sse"],
      fallbackAfter: 8000,
      bufferedAfter: 5000,
      fetch: undefined,
      storage: undefined,
      ...options,
    };
    this.#url = options.url;
    this.#name = this.#o.name;
    if (this.#o.since) this.#ids.highest = String(this.#o.since);
    const t = this.#o.transports;
    if (!Array.isArray(t) || t.length === 0 || t.some((x) => x !== "websocket" && x !== "sse")) {
      throw new TypeError('wsroom: transports is a list of "websocket" and "sse"');
    }
    this.transport = t.includes("websocket") && this.#remembered() !== "sse" ? "websocket" : "sse";
  }

  // The fallback chosen in this session (sessionStorage), per endpoint.
  #storageKey() {
    const u = new URL(this.#url, globalThis.location?.href ?? "http://localhost/");
    return `wsroom.transport ${u.host}${u.pathname}`;
  }

  #storage() {
    try {
      return this.#o.storage ?? globalThis.sessionStorage ?? null;
    } catch {
      return null; // storage disabled
    }
  }

  #remembered() {
    try {
      return this.#storage()?.getItem(this.#storageKey()) ?? null;
    } catch {
      return null;
    }
  }

  #remember(transport) {
    try {
      const st = this.#storage();
      if (!st) return;
      if (transport) st.setItem(this.#storageKey(), transport);
      else st.removeItem(this.#storageKey());
    } catch {
      // storage full or disabled: the choice is not remembered
    }
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
    this.#cancelMembers();
    this.#cancelFallback();
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

  #cancelFallback() {
    if (this.#fallbackTimer !== null) clearTimeout(this.#fallbackTimer);
    this.#fallbackTimer = null;
  }

  // #canFallback reports whether a WebSocket that failed before any frame
  // arrived may be replaced by the fallback.
  #canFallback() {
    return this.transport === "websocket" && this.#o.transports.includes("sse") && !this.#gotFrame;
  }

  // #fallBack drops the WebSocket attempt and tries the fallback at once.
  #fallBack(ws) {
    this.#cancelFallback();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close();
      } catch {
        // it never opened
      }
    }
    this.#ws = null;
    this.#probing = true;
    this.transport = "sse";
    this.#open();
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
    this.#gotFrame = false;
    this.#setState("connecting", { attempt: this.#attempt, transport: this.transport });
    let ws;
    try {
      if (this.transport === "sse") {
        ws = new EventStreamSocket(this.#resolveURL(), SUBPROTOCOL, { fetch: this.#o.fetch, bufferedAfter: this.#o.bufferedAfter });
      } else {
        ws = new this.#o.WebSocket(this.#resolveURL(), SUBPROTOCOL);
      }
    } catch (err) {
      this.#wanted = false;
      this.#setState("closed", { code: 0, reason: "", reconnect: false, explanation: `Cannot connect: ${err.message}` });
      return;
    }
    ws.binaryType = this.#o.binaryType;
    this.#ws = ws;
    if (this.#canFallback() && this.#o.fallbackAfter > 0) {
      // A proxy may let the upgrade through and then pass nothing.
      this.#fallbackTimer = setTimeout(() => {
        this.#fallbackTimer = null;
        if (this.#ws === ws && !this.#gotFrame && this.#wanted) this.#fallBack(ws);
      }, this.#o.fallbackAfter);
    }
    if (this.transport === "sse") {
      ws.onbuffered = () => {
        if (this.#ws !== ws) return;
        this.#setState(this.#state, {
          attempt: this.#attempt,
          transport: "sse",
          buffered: true,
          explanation: "Nothing arrives over HTTP: a proxy on the way is holding back the event stream (or the server does not answer).",
        });
      };
    }
    ws.onopen = () => {
      this.#opened = true;
      if (this.transport === "sse" && this.#probing) {
        this.#probing = false;
        this.#remember("sse"); // for the rest of the session
      }
      if (this.#name) this.#sendJoin();
    };
    ws.onmessage = (e) => {
      this.#gotFrame = true;
      this.#cancelFallback();
      if (typeof e.data === "string") {
        for (const ev of parseFrame(e.data)) this.#handle(ev);
      } else {
        this.#emit("binary", { data: e.data });
      }
    };
    ws.onerror = () => {}; // a close event follows and says more
    ws.onclose = (e) => this.#closed(ws, e.code, e.reason, e);
  }

  #closed(ws, code, reason, e = {}) {
    if (ws !== this.#ws) return;
    this.#cancelFallback();
    if (this.#wanted && !this.#opened && this.#canFallback()) {
      // The upgrade failed (a proxy that does not do WebSocket, or the
      // server is down): try the fallback at once.
      return this.#fallBack(null);
    }
    this.#ws = null;
    const wasJoined = this.#joined;
    this.#joined = false;
    this.#cancelMembers();
    if (!this.#wanted) return;
    if (this.transport === "sse" && !this.#opened) {
      const probing = this.#probing;
      this.#probing = false;
      if (e.status === 426 || probing) {
        // The fallback is off (426), or did not work either (the server
        // is down?): WebSocket again next time.
        if (e.status === 426) this.#remember(null);
        if (this.#o.transports.includes("websocket")) this.transport = "websocket";
      }
    }
    const info = explainClose(code, reason, { opened: this.#opened, normalReconnects: this.#o.normalReconnects });
    if (e.status) {
      info.explanation = `The server refused the connection (${reason}).`;
      if (e.final) info.reconnect = false;
    }
    info.transport = this.transport;
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
        if (names.length > 0) this.#membersCursor = names[names.length - 1];
        if (!ev.more) this.#membersCursor = null;
        else if (names.length > 0) this.#pageMembers(names[names.length - 1]);
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
    this.#membersCursor = first.length > 0 && !this.#members.complete ? first[first.length - 1] : null;
    if (this.#membersCursor !== null) this.#pageMembers(this.#membersCursor);
  }

  /**
   * loadMoreMembers asks for the next page of the member list, for rooms
   * bigger than membersAuto, whose list the client does not page by
   * itself. It returns false when the list is complete or a page is on
   * its way.
   */
  loadMoreMembers() {
    if (this.#membersCursor === null || this.#membersAfter !== null) return false;
    return this.#pageMembers(this.#membersCursor, true);
  }

  // pageMembers asks for the page after a name: at once when asked by hand,
  // else after membersPageDelay (pages cost the rate limit) and only in a
  // room of at most membersAuto members (in a bigger one, paging every
  // member list after every welcome would cost more than it is worth).
  #pageMembers(after, now = false) {
    if (this.#membersAfter === after) return false;
    if (!now && this.#members.count > this.#o.membersAuto) return false;
    this.#membersAfter = after;
    if (now) return this.requestMembers({ after, limit: this.#o.membersLimit });
    this.#membersTimer = setTimeout(() => {
      this.#membersTimer = null;
      if (!this.requestMembers({ after, limit: this.#o.membersLimit })) this.#membersAfter = null;
    }, this.#o.membersPageDelay);
    return true;
  }

  #cancelMembers() {
    if (this.#membersTimer !== null) clearTimeout(this.#membersTimer);
    this.#membersTimer = null;
    this.#membersAfter = null;
  }

  #membersChanged() {
    this.#emit("members", { members: this.#members.list(), count: this.#members.count, complete: this.#members.complete });
  }
}
