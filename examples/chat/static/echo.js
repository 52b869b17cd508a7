// The echo page: what the seed article's demo did, on wsroom's /echo
// endpoint. Text comes back as text; a drawing goes out as one binary
// message (the canvas as a PNG Blob) and comes back as a Blob.
import { explainClose } from "/wsroom.js";

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d");
const bytes = new Intl.NumberFormat("en");
let ws = null;
let shown = "";
// The last image sent and received, for a look in the console (and the
// page's tests).
const echo = (window.echoState = { sent: null, received: null });

function setStatus(state, label, detail = "") {
  $("status").dataset.state = state;
  $("state").textContent = label;
  $("detail").textContent = detail;
  $("reconnect").hidden = state !== "closed";
}

function enable(on) {
  for (const id of ["sendtext", "sendimg", "text"]) $(id).disabled = !on;
}

function connect() {
  const url = new URL("/echo", location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  let opened = false;
  ws = new WebSocket(url);
  ws.binaryType = "blob";
  setStatus("connecting", "Connecting…");
  enable(false);
  ws.onopen = () => {
    opened = true;
    setStatus("open", "Connected", "to /echo: everything sent comes back");
    enable(true);
  };
  ws.onmessage = (e) => {
    if (typeof e.data === "string") $("textout").textContent = e.data;
    else showImage(e.data);
  };
  ws.onclose = (e) => {
    const info = explainClose(e.code, e.reason, { opened });
    setStatus("closed", "Disconnected", info.explanation + (e.code && e.code !== 1000 ? ` (code ${e.code})` : ""));
    enable(false);
  };
}

async function showImage(blob) {
  echo.received = blob;
  if (shown) URL.revokeObjectURL(shown);
  shown = URL.createObjectURL(blob);
  const img = $("echoed");
  img.src = shown;
  img.hidden = false;
  let same = false;
  if (echo.sent) {
    const [a, b] = await Promise.all([echo.sent.arrayBuffer(), blob.arrayBuffer()]);
    const x = new Uint8Array(a);
    const y = new Uint8Array(b);
    same = x.length === y.length && x.every((v, i) => v === y[i]);
  }
  $("imgout").textContent = `Echoed ${bytes.format(blob.size)} bytes` + (echo.sent ? ` (sent ${bytes.format(echo.sent.size)}): ${same ? "identical" : "DIFFERENT"}` : "");
  $("imgout").dataset.same = String(same);
}

function clearPad() {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, pad.width, pad.height);
}

// Drawing with a pointer (mouse, pen or finger).
let last = null;
function at(e) {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
}
pad.addEventListener("pointerdown", (e) => {
  pad.setPointerCapture(e.pointerId);
  last = at(e);
});
pad.addEventListener("pointermove", (e) => {
  if (!last) return;
  const p = at(e);
  ctx.strokeStyle = "#2f6fde";
  ctx.lineWidth = 4;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...last);
  ctx.lineTo(...p);
  ctx.stroke();
  last = p;
});
for (const t of ["pointerup", "pointercancel"]) pad.addEventListener(t, () => (last = null));

$("textform").addEventListener("submit", (e) => {
  e.preventDefault();
  if (ws?.readyState === WebSocket.OPEN) ws.send($("text").value);
});
$("sendimg").addEventListener("click", () => {
  pad.toBlob((blob) => {
    if (!blob || ws?.readyState !== WebSocket.OPEN) return;
    echo.sent = blob;
    echo.received = null;
    ws.send(blob);
    $("imgout").textContent = `Sent ${bytes.format(blob.size)} bytes…`;
    delete $("imgout").dataset.same;
  }, "image/png");
});
$("clear").addEventListener("click", clearPad);
$("noise").addEventListener("click", () => {
  const img = ctx.createImageData(pad.width, pad.height);
  const rnd = new Uint32Array(img.data.buffer);
  for (let i = 0; i < rnd.length; i += 16384) crypto.getRandomValues(rnd.subarray(i, i + 16384)); // 64 KiB a call at most
  for (let i = 3; i < img.data.length; i += 4) img.data[i] = 255;
  ctx.putImageData(img, 0, 0);
});
$("reconnect").addEventListener("click", connect);

clearPad();
connect();
document.documentElement.dataset.ready = "1";
