// An independent, strict client for wsroom: the npm ws package.
//
// Usage: node client.mjs ws://127.0.0.1:PORT
//
// Runs the scenarios against the example chat server and prints one line
// per scenario, "ok NAME: ..." or "FAIL NAME: ...". In the flood scenario
// it prints "READY" once the flood is under way and the server has pinged;
// the caller then sends SIGTERM to the server, and every connection must
// see close 1001. Exits 0 when every scenario passed.

import WebSocket from 'ws';

const TIMEOUT = 10_000; // ms, for any one answer
const FLOOD_LIMIT = 200_000; // messages per connection, at most
const FLOOD_TIME = 30_000; // ms, at most, from READY to the server's close
const WINDOW = 256; // messages in flight per connection, at most

let failed = false;

function report(ok, name, detail) {
  if (!ok) failed = true;
  console.log(`${ok ? 'ok' : 'FAIL'} ${name}: ${detail}`);
}

// Conn is one connection: the messages received wait in a queue, pings
// are counted, and any 'error' (a protocol error the library detected)
// is kept.
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.pings = 0;
    this.errors = [];
    this.counted = 0; // messages received in counting mode
    this.counting = false;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        resolve({ code, reason: reason.toString() });
        this.wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      if (this.counting) {
        this.counted += isBinary ? 1 : data.toString().split('\n').length;
      } else {
        this.queue.push({ data, isBinary });
      }
      this.wake();
    });
    ws.on('ping', () => {
      this.pings++;
      this.wake();
    });
    ws.on('error', (e) => this.errors.push(e.code ? `${e.code}: ${e.message}` : e.message));
  }

  wake() {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  // wait resolves at the next event, or after ms.
  wait(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  async recv() {
    const deadline = Date.now() + TIMEOUT;
    while (this.queue.length === 0) {
      if (this.closeCode !== undefined) throw new Error(`closed with ${this.closeCode} ${this.errors.join('; ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no message within the timeout');
      await this.wait(left);
    }
    return this.queue.shift();
  }

  async text() {
    const m = await this.recv();
    if (m.isBinary) throw new Error('binary message where text was expected');
    return m.data.toString('utf8');
  }

  send(data, opts = {}) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (e) => (e ? reject(e) : resolve())));
  }

  close(code = 1000) {
    this.ws.close(code);
    return this.closed;
  }
}

function connect(url, protocols = []) {
  return new Promise((resolve, reject) => {
    // perMessageDeflate is offered, as by default: the server declines it.
    const ws = new WebSocket(url, protocols, { maxPayload: 1 << 20 });
    const c = new Conn(ws);
    ws.once('open', () => resolve(c));
    ws.once('error', reject);
  });
}

// Events reads the JSON protocol's events: one or more per text frame.
class Events {
  constructor(conn) {
    this.conn = conn;
    this.pending = [];
  }

  async next() {
    while (this.pending.length === 0) {
      const t = await this.conn.text();
      for (const line of t.split('\n')) this.pending.push(JSON.parse(line));
    }
    return this.pending.shift();
  }

  async until(pred) {
    for (;;) {
      const e = await this.next();
      if (pred(e)) return e;
    }
  }
}

async function echo(base) {
  const c = await connect(base + '/echo');
  try {
    if (c.ws.extensions !== '') return report(false, 'echo', `extension accepted: ${c.ws.extensions}`);
    for (const msg of ['héllo wörld ✓', Buffer.from([...Array(256).keys()]), 'x'.repeat(20000), '']) {
      await c.send(msg);
      const got = await c.recv();
      const same = typeof msg === 'string' ? !got.isBinary && got.data.toString('utf8') === msg : got.isBinary && Buffer.compare(got.data, msg) === 0;
      if (!same) return report(false, 'echo', `sent ${typeof msg}[${msg.length}], got ${got.isBinary ? 'binary' : 'text'}[${got.data.length}]`);
    }
    // One message in three frames, text then binary.
    await c.send('frag', { fin: false });
    await c.send('ment', { fin: false });
    await c.send('ed ✓', { fin: true });
    const t = await c.text();
    if (t !== 'fragmented ✓') return report(false, 'echo', `fragmented text came back as ${JSON.stringify(t)}`);
    await c.send(Buffer.from([0, 1]), { binary: true, fin: false });
    await c.send(Buffer.alloc(0), { binary: true, fin: false });
    await c.send(Buffer.from([2]), { binary: true, fin: true });
    const b = await c.recv();
    if (!b.isBinary || Buffer.compare(b.data, Buffer.from([0, 1, 2])) !== 0) return report(false, 'echo', `fragmented binary came back as ${b.data.toString('hex')}`);
    const { code } = await c.close();
    if (code !== 1000 || c.errors.length) return report(false, 'echo', `close ${code} ${c.errors.join('; ')}`);
    report(true, 'echo', 'text, binary, 20000 bytes, empty, fragmented text and binary echoed; deflate offer declined');
  } finally {
    c.ws.terminate();
  }
}

async function chatJSON(base) {
  const url = base + '/chat/interop-json';
  const alice = await connect(url, ['wsroom.v1']);
  const bob = await connect(url, ['wsroom.v1']);
  try {
    if (alice.ws.protocol !== 'wsroom.v1') return report(false, 'chat-json', `subprotocol ${alice.ws.protocol}`);
    const a = new Events(alice);
    const b = new Events(bob);
    await alice.send(JSON.stringify({ type: 'join', name: 'alice' }));
    let w = await a.until((e) => e.type === 'welcome' || e.type === 'error');
    if (w.type !== 'welcome' || JSON.stringify(w.members) !== '["alice"]') return report(false, 'chat-json', `alice's welcome: ${JSON.stringify(w)}`);
    await bob.send(JSON.stringify({ type: 'join', name: 'bob' }));
    w = await b.until((e) => e.type === 'welcome' || e.type === 'error');
    if (w.type !== 'welcome' || JSON.stringify([...w.members].sort()) !== '["alice","bob"]') return report(false, 'chat-json', `bob's welcome: ${JSON.stringify(w)}`);
    await a.until((e) => e.type === 'join' && e.name === 'bob');
    await bob.send(JSON.stringify({ type: 'message', text: 'hello from bob ✓' }));
    const m = await a.until((e) => e.type === 'message');
    if (m.from !== 'bob' || m.text !== 'hello from bob ✓') return report(false, 'chat-json', `alice got ${JSON.stringify(m)}`);
    await b.until((e) => e.type === 'message' && e.text === 'hello from bob ✓');
    const { code } = await bob.close();
    if (code !== 1000) return report(false, 'chat-json', `bob's close: ${code}`);
    await a.until((e) => e.type === 'leave' && e.name === 'bob');
    const errs = [...alice.errors, ...bob.errors];
    if (errs.length) return report(false, 'chat-json', errs.join('; '));
    report(true, 'chat-json', 'join, broadcast between two clients, leave seen by the other');
  } finally {
    alice.ws.terminate();
    bob.ws.terminate();
  }
}

async function chatPlain(base) {
  const url = base + '/chat/interop-plain';
  const carol = await connect(url);
  const dave = await connect(url);
  const lineUntil = async (c, want) => {
    for (;;) if ((await c.text()) === want) return;
  };
  try {
    if (carol.ws.protocol !== '') return report(false, 'chat-plain', `subprotocol ${carol.ws.protocol}`);
    await carol.send('login:carol');
    await lineUntil(carol, '欢迎【carol】来到聊天室!');
    await dave.send('login:dave');
    await lineUntil(dave, '欢迎【dave】来到聊天室!');
    await lineUntil(carol, '欢迎【dave】来到聊天室!');
    await dave.send('hi carol ✓');
    await lineUntil(carol, 'dave说 :"hi carol ✓"');
    await dave.close();
    await lineUntil(carol, '【dave】离开了聊天室!');
    const errs = [...carol.errors, ...dave.errors];
    if (errs.length) return report(false, 'chat-plain', errs.join('; '));
    report(true, 'chat-plain', 'login:NAME, lines both ways, leave seen by the other');
  } finally {
    carol.ws.terminate();
    dave.ws.terminate();
  }
}

async function flood(base) {
  const e = await connect(base + '/echo');
  const c = await connect(base + '/chat/interop-flood', ['wsroom.v1']);
  try {
    await c.send(JSON.stringify({ type: 'join', name: 'flooder' }));
    await new Events(c).until((ev) => ev.type === 'welcome');
    e.counting = c.counting = true;
    const payload = 'flood ✓ '.repeat(12);
    // A healthy client: at most WINDOW messages ahead of what came back
    // (a client that never reads is dropped as too slow, by design).
    const loop = async (conn, make) => {
      for (let i = 0; i < FLOOD_LIMIT && conn.closeCode === undefined; i++) {
        while (i - conn.counted > WINDOW && conn.closeCode === undefined) await conn.wait(TIMEOUT);
        try {
          await conn.send(make(i));
        } catch {
          return; // closed
        }
      }
    };
    const loops = [loop(e, () => payload), loop(c, (i) => JSON.stringify({ type: 'message', text: `${i} ${payload}` }))];
    const start = Date.now();
    while (!(e.counted >= 500 && c.counted >= 100 && e.pings >= 2 && c.pings >= 2)) {
      if (Date.now() - start > TIMEOUT || e.closeCode !== undefined || c.closeCode !== undefined) {
        return report(false, 'flood', `flood not under way: ${e.counted} echoes, ${c.counted} chat events, pings ${e.pings}/${c.pings}, close ${e.closeCode}/${c.closeCode}`);
      }
      await Promise.race([e.wait(10), c.wait(10)]);
    }
    console.log('READY');
    const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), FLOOD_TIME).unref());
    const closes = await Promise.race([Promise.all([e.closed, c.closed]), timeout]);
    if (closes === 'timeout') return report(false, 'flood', `no close within ${FLOOD_TIME}ms of READY`);
    await Promise.all(loops);
    const bad = [];
    for (const [name, conn, cl] of [['echo', e, closes[0]], ['chat', c, closes[1]]]) {
      if (cl.code !== 1001) bad.push(`${name}: close ${cl.code} ${cl.reason}`);
      if (conn.errors.length) bad.push(`${name}: ${conn.errors.join('; ')}`);
    }
    if (bad.length) return report(false, 'flood', bad.join('; '));
    report(true, 'flood', `${e.counted} echoes and ${c.counted} chat events, ${e.pings + c.pings} server pings answered, then close 1001 on both`);
  } finally {
    e.ws.terminate();
    c.ws.terminate();
  }
}

const base = process.argv[2];
for (const [name, scenario] of [['echo', echo], ['chat-json', chatJSON], ['chat-plain', chatPlain], ['flood', flood]]) {
  try {
    await scenario(base);
  } catch (err) {
    report(false, name, err && err.stack ? err.stack.split('\n')[0] : String(err));
  }
}
process.exit(failed ? 1 : 0);
