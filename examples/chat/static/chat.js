// The chat page: wsroom.js does the protocol; this file only draws.
// Everything a user typed (names, messages) is set with textContent, never
// parsed as HTML.
import { Client, SUBPROTOCOL } from "/wsroom.js";

const $ = (id) => document.getElementById(id);
const log = $("log");
let client = null;
let countdown = 0;

const JOIN_ERRORS = new Set(["name_taken", "bad_name", "room_full", "join_refused", "server_full"]);
const ERROR_WORDS = {
  name_taken: "That name is taken in this room: pick another.",
  bad_name: "That name is not allowed (empty, too long, or with invisible characters).",
  room_full: "The room is full.",
  rate_limited: "You are sending too fast: that message was dropped.",
  unavailable: "The server cannot reach its storage right now: try again in a moment.",
  server_full: "The server is full: try again later.",
  not_joined: "You are not in the room yet.",
  bad_frame: "The server sent something this page cannot read.",
};

// colorFor gives each name a stable, readable color.
function colorFor(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${h % 360} 55% 38%)`;
}

function timeOf(ts) {
  const d = new Date(ts);
  const t = document.createElement("time");
  t.className = "time";
  t.dateTime = d.toISOString();
  t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  t.title = d.toLocaleString();
  return t;
}

function messageItem(m) {
  const li = document.createElement("li");
  li.className = "msg";
  if (m.id) li.dataset.id = m.id;
  if (client && m.from && m.from === client.name) li.classList.add("mine");
  const meta = document.createElement("div");
  meta.className = "meta";
  const from = document.createElement("span");
  from.className = "from";
  from.textContent = m.from || "server";
  from.style.color = m.from ? colorFor(m.from) : "var(--muted)";
  meta.append(from, timeOf(m.ts));
  const text = document.createElement("div");
  text.className = "text";
  text.textContent = m.text;
  li.append(meta, text);
  return li;
}

function noteItem(cls, text) {
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = text;
  return li;
}

// append adds items at the end, following the log down if it was there.
function append(...items) {
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  log.append(...items);
  if (atEnd) log.scrollTop = log.scrollHeight;
}

// prepend adds older items at the top without moving what is on screen.
function prepend(items) {
  const before = log.scrollHeight;
  log.prepend(...items);
  log.scrollTop += log.scrollHeight - before;
}

function renderMembers(ev) {
  const me = client?.name;
  $("members").replaceChildren(
    ...ev.members.map((n) => {
      const li = document.createElement("li");
      li.textContent = n;
      if (n === me) {
        li.className = "me";
        const you = document.createElement("span");
        you.className = "you";
        you.textContent = "(you)";
        li.append(you);
      }
      return li;
    }),
  );
  // A big room's list is paged on demand; a small one's by the client.
  const big = !ev.complete && ev.count > 1000;
  $("count").textContent = ev.complete ? `(${ev.count})` : big ? `(${ev.count})` : `(${ev.count}, loading…)`;
  $("more-members").hidden = !big;
}

function setJoined(joined) {
  $("text").disabled = $("sendbtn").disabled = !joined;
  $("older").disabled = !joined || client.moreHistory === false;
}

// joinButton makes the form's button Join, or Leave while in a room.
function joinButton(leave) {
  $("joinbtn").textContent = leave ? "Leave" : "Join";
  $("joinbtn").classList.toggle("leave", leave);
}

function setStatus(state, label, detail = "") {
  $("status").dataset.state = state;
  delete $("status").dataset.buffered;
  document.body.dataset.state = state;
  $("state").textContent = label;
  $("detail").textContent = detail;
  $("retry").hidden = state !== "reconnecting";
}

const TRANSPORTS = { websocket: "WebSocket", sse: "HTTP fallback (SSE + POST)" };

// showTransport says which transport the client uses: WebSocket, or the
// HTTP fallback where a proxy or firewall blocks WebSocket.
function showTransport() {
  const t = client?.transport ?? "websocket";
  $("transport").textContent = TRANSPORTS[t] ?? t;
  $("transport").dataset.transport = t;
}

function onState(s) {
  clearInterval(countdown);
  showTransport();
  switch (s.state) {
    case "connecting":
      setStatus("connecting", s.attempt ? `Reconnecting (attempt ${s.attempt})…` : "Connecting…", s.buffered ? s.explanation : "");
      if (s.buffered) $("status").dataset.buffered = "1";
      setJoined(false);
      break;
    case "open":
      setStatus("open", "Connected", `in ${client.room} as ${client.name}`);
      setJoined(true);
      break;
    case "reconnecting": {
      const tick = () => {
        const secs = Math.max(0, Math.ceil((s.at - Date.now()) / 1000));
        setStatus("reconnecting", `Reconnecting in ${secs} s`, s.explanation + (s.code ? ` (code ${s.code})` : ""));
      };
      tick();
      countdown = setInterval(tick, 250);
      setJoined(false);
      break;
    }
    case "closed":
      setStatus("closed", "Disconnected", s.explanation + (s.code && s.code !== 1000 ? ` (code ${s.code})` : ""));
      setJoined(false);
      joinButton(false);
      break;
  }
}

function join() {
  const room = $("room").value.trim() || "lobby";
  const name = $("name").value.trim();
  if (!name) {
    $("name").focus();
    return;
  }
  localStorage.setItem("wsroom.name", name);
  log.replaceChildren();
  $("older").textContent = "Older messages";
  client = new Client({ url: "/chat/" + encodeURIComponent(room), name });
  window.wsroomClient = client; // for the console, and the page's tests
  showTransport();
  client.on("state", onState);
  client.on("welcome", (w) => {
    if (w.gap) append(noteItem("gap", "Some messages sent while you were away could not be recovered."));
    if (w.resumed) {
      const n = w.history.length;
      append(noteItem("event", n ? `Back in the room: ${n} message${n > 1 ? "s" : ""} sent while you were away.` : "Back in the room."));
    }
    append(...w.history.map(messageItem));
    if (!w.resumed) append(noteItem("event", `You joined ${w.room} as ${w.name}.`));
    setJoined(true);
  });
  client.on("message", (m) => append(messageItem(m)));
  client.on("history", (h) => {
    prepend(h.messages.map(messageItem));
    $("older").disabled = !h.more;
    if (!h.more) $("older").textContent = "No older messages";
  });
  client.on("join", (j) => {
    if (!j.rejoined) append(noteItem("event", `${j.name} joined`));
  });
  client.on("leave", (l) => append(noteItem("event", `${l.name} left`)));
  client.on("presence", (p) => {
    if (p.joined.length) append(noteItem("event", `${p.joined.length} joined: ${p.joined.slice(0, 5).join(", ")}${p.joined.length > 5 ? "…" : ""}`));
    if (p.left.length) append(noteItem("event", `${p.left.length} left: ${p.left.slice(0, 5).join(", ")}${p.left.length > 5 ? "…" : ""}`));
  });
  client.on("members", renderMembers);
  client.on("binary", (b) => append(noteItem("event", `(a binary message, ${b.data.size ?? b.data.byteLength} bytes)`)));
  client.on("error", (e) => {
    const words = ERROR_WORDS[e.code] ?? e.message;
    if (!client.joined && JOIN_ERRORS.has(e.code)) {
      client.close();
      setStatus("closed", "Not joined", words);
      joinButton(false);
      return;
    }
    const li = noteItem("error", words);
    li.title = e.code;
    append(li);
  });
  joinButton(true);
  client.connect();
}

$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  if (client && client.state !== "closed") {
    client.close();
    return;
  }
  join();
});
$("send").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value;
  if (text.trim() && client?.send(text)) $("text").value = "";
});
$("older").addEventListener("click", () => {
  if (client?.olderMessages()) $("older").disabled = true;
});
$("retry").addEventListener("click", () => client?.reconnectNow());
addEventListener("online", () => client?.reconnectNow());

const params = new URLSearchParams(location.search);
$("room").value = params.get("room") || $("room").value;
$("name").value = params.get("name") || localStorage.getItem("wsroom.name") || "";
$("transport").title = `subprotocol ${SUBPROTOCOL}`;
$("members-box").open = matchMedia("(min-width: 641px)").matches;
$("more-members").addEventListener("click", () => client?.loadMoreMembers());
document.documentElement.dataset.ready = "1";
