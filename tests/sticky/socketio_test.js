#!/usr/bin/env node
'use strict';
// socket.io through vigil's sticky proxy, end to end: the real vigil binary
// runs 4 instances of config/demo/chat_server.js behind [programs.chat.sticky],
// and 40 real socket.io-client clients with the default transports (HTTP
// long-polling, then the upgrade to a websocket) connect through it. Each
// client has its own identity: an X-Forwarded-For entry (--hash
// x-forwarded-for) or a source address 127.0.0.N (--hash ip). Checks: every
// client upgrades, none gets a connect_error ("Session ID unknown" is what
// a request reaching another instance gets), each stays on one instance from
// the handshake through the upgrade and several messages, the clients spread
// over >= 3 instances; then one instance is SIGKILLed: its clients reconnect
// to other instances, every other client keeps its connection and instance.
// Every wait is a poll with a deadline; any failure exits 1 saying what.
//   NODE_PATH=BUILD/node_sticky/node_modules node tests/sticky/socketio_test.js \
//       --vigil BUILD/vigil --hash x-forwarded-for|ip [--clients 40]
// A preflight without vigil first proves that the client really sends the
// identity on every polling request and on the websocket upgrade.
// --dev-proxy checks this test itself: vigil runs the instances without
// [programs.chat.sticky] and tests/sticky/dev_proxy.js routes instead.

const assert = require('assert');
const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');

const { io: connect } = require('socket.io-client');
const { Server } = require('socket.io');

const kChatServer = path.join(__dirname, '..', '..', 'config', 'demo', 'chat_server.js');
const kInstances = 4;
const kMessages = 3;  // chat messages per client per check

// ---------------------------------------------------------------------------
// arguments, failure, polling

function parseArgs(argv) {
  const a = { vigil: null, hash: null, clients: 40, devProxy: false };
  for (let i = 0; i < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--dev-proxy') {
      a.devProxy = true;
      --i;
    } else if (k === '--vigil') a.vigil = v;
    else if (k === '--hash') a.hash = v;
    else if (k === '--clients') a.clients = Number(v);
    else usage(`unknown argument ${k}`);
  }
  if (!a.vigil || !['ip', 'x-forwarded-for'].includes(a.hash)) usage('--vigil and --hash are required');
  a.vigil = path.resolve(a.vigil);  // vigil runs in its temp dir
  if (!(a.clients >= 8 && a.clients <= 200)) usage('--clients: 8..200');
  return a;
}
function usage(why) {
  console.error(`socketio_test: ${why}\nusage: socketio_test.js --vigil PATH --hash ip|x-forwarded-for [--clients N] [--dev-proxy]`);
  process.exit(2);
}

const cleanups = [];
let running = null;  // the Vigil, whose output a failure shows
class TestFailure extends Error {}
function check(cond, message) {
  if (!cond) throw new TestFailure(message);
}
function log(message) {
  console.log(`socketio_test: ${message}`);
}

// Polls `pred` (maybe async) every 50 ms until it returns a truthy value,
// which is returned; throws saying what was awaited after `ms`.
async function waitFor(what, pred, ms, describe = () => '') {
  const end = Date.now() + ms;
  for (;;) {
    let v;
    try {
      v = await pred();
    } catch (e) {
      if (e instanceof TestFailure) throw e;
      v = undefined;  // not up yet: try again
    }
    if (v) return v;
    if (Date.now() > end) throw new TestFailure(`timed out after ${ms} ms waiting for ${what}${describe()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// A promise that fails after `ms`, naming what did not happen in time.
function within(ms, what, promise) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TestFailure(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// ports and HTTP

function listenOn(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen({ port, host, exclusive: true }, () => resolve(s));
  });
}
async function freePort() {
  const s = await listenOn(0);
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}
// `count` consecutive free ports, none in `avoid`.
async function freePortRange(count, avoid) {
  for (let attempt = 0; attempt < 200; ++attempt) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    const held = [];
    for (let p = base; p < base + count && !avoid.includes(p); ++p) {
      const s = await listenOn(p);
      if (!s) break;
      held.push(s);
    }
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
    if (held.length === count) return base;
  }
  throw new TestFailure(`no ${count} consecutive free ports found`);
}

function httpGet(port, pathname, timeoutMs = 3000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------
// a client's identity and its life

// The options that make client n look like its own machine to the proxy.
function identity(hash, n) {
  if (hash === 'x-forwarded-for') {
    // Sent by engine.io-client on every polling request (xmlhttprequest-ssl)
    // and on the websocket upgrade (ws `headers`).
    return { label: `X-Forwarded-For 10.0.0.${n}`, xff: `10.0.0.${n}`, opts: { extraHeaders: { 'X-Forwarded-For': `10.0.0.${n}` } } };
  }
  // Polling: xmlhttprequest-ssl passes `agent` to http.request, and an
  // http.Agent hands its `localAddress` to every socket it opens. WebSocket:
  // engine.io-client passes `localAddress` (and `agent`) on to ws. All of
  // 127/8 is local on Linux.
  const addr = `127.0.0.${10 + n}`;
  return { label: `source ${addr}`, addr, opts: { agent: new http.Agent({ localAddress: addr }), localAddress: addr } };
}

// One socket.io client and everything it saw.
class Client {
  constructor(url, n, id) {
    this.n = n;
    this.id = id;
    this.hellos = [];       // {instance, pid}, one per (re)connection
    this.errors = [];       // connect_error / upgradeError messages
    this.disconnects = [];  // reasons
    this.upgrades = 0;
    this.socket = connect(url, {
      forceNew: true,  // one engine per client: no multiplexing over a shared Manager
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      timeout: 10000,
      ...id.opts,
    });
    this.socket.on('hello', (m) => this.hellos.push(m));
    this.socket.on('connect_error', (e) => this.errors.push(`connect_error: ${e.message}`));
    this.socket.on('disconnect', (reason) => this.disconnects.push(reason));
    // The Manager's "open" comes before the engine probes the upgrade.
    this.socket.io.on('open', () => {
      const engine = this.socket.io.engine;
      engine.on('upgrade', () => ++this.upgrades);
      engine.on('upgradeError', (e) => this.errors.push(`upgradeError: ${e.message}`));
    });
  }
  get name() {
    return `client ${this.n} (${this.id.label})`;
  }
  transport() {
    return this.socket.io.engine ? this.socket.io.engine.transport.name : 'none';
  }
  last() {
    return this.hellos[this.hellos.length - 1];
  }
  // Waits until connected over a websocket after `hellos` greetings, then
  // asks the instance who it is and sends kMessages chat messages: every
  // answer must come from the instance of the last greeting.
  async settle(hellos, ms) {
    // An error fails at once: a request that reached another instance is
    // refused ("Session ID unknown", seen here as an xhr or probe error).
    await waitFor(`${this.name}: greeting ${hellos} and the upgrade to websocket`, () => {
      check(this.errors.length === 0, `${this.name}: ${this.describeErrors()}`);
      return this.socket.connected && this.hellos.length >= hellos && this.transport() === 'websocket';
    }, ms, () => ` (connected ${this.socket.connected}, ${this.hellos.length} greetings, transport ${this.transport()})`);
    const hello = this.last();
    const who = await this.socket.timeout(ms).emitWithAck('whoami');
    check(who.instance === hello.instance && who.pid === hello.pid,
          `${this.name}: greeted by instance ${hello.instance} (pid ${hello.pid}) but whoami after the upgrade answered instance ${who.instance} (pid ${who.pid})`);
    check(who.transport === 'websocket', `${this.name}: the server sees transport ${who.transport}, not websocket`);
    for (let i = 0; i < kMessages; ++i) {
      const ack = await this.socket.timeout(ms).emitWithAck('chat', `message ${i} from client ${this.n}`);
      check(ack.instance === hello.instance && ack.pid === hello.pid,
            `${this.name}: chat message ${i} answered by instance ${ack.instance} (pid ${ack.pid}), not ${hello.instance} (pid ${hello.pid})`);
    }
    return hello;
  }
  describeErrors() {
    const more = this.errors.length > 3 ? ` and ${this.errors.length - 3} more` : '';
    return `${this.errors.slice(0, 3).join('; ')}${more}`;
  }
  close() {
    this.socket.io.opts.reconnection = false;
    this.socket.close();
  }
}

// ---------------------------------------------------------------------------
// preflight: the identity reaches the server on every request, no vigil

async function preflight(hash) {
  const server = http.createServer();
  const ioServer = new Server(server);
  ioServer.on('connection', (s) => {
    s.emit('hello', { instance: 'preflight', pid: process.pid });
    s.on('whoami', (ack) => ack({ instance: 'preflight', pid: process.pid, transport: s.conn.transport.name }));
    s.on('chat', (text, ack) => ack({ instance: 'preflight', pid: process.pid }));
  });
  // Added after socket.io's own listeners: these only look.
  const seen = [];
  const note = (kind) => (req) => {
    if (req.url.startsWith('/socket.io/'))
      seen.push({ kind, url: req.url, addr: req.socket.remoteAddress, xff: req.headers['x-forwarded-for'] });
  };
  server.on('request', note('polling'));
  server.on('upgrade', note('upgrade'));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const id = identity(hash, 7);
  const c = new Client(`http://127.0.0.1:${server.address().port}`, 7, id);
  try {
    await within(20000, 'the preflight client', c.settle(1, 10000));
  } finally {
    c.close();
    ioServer.close();
  }
  const polling = seen.filter((s) => s.kind === 'polling');
  const upgrades = seen.filter((s) => s.kind === 'upgrade');
  check(seen.length && seen[0].kind === 'polling', `preflight: the first request was not long-polling: ${JSON.stringify(seen[0])}`);
  check(polling.length >= 2 && upgrades.length === 1,
        `preflight: expected >= 2 polling requests and 1 upgrade, saw ${JSON.stringify(seen)}`);
  for (const s of seen) {
    if (hash === 'x-forwarded-for')
      check(s.xff === id.xff, `preflight: a ${s.kind} request without X-Forwarded-For ${id.xff}: ${JSON.stringify(s)}`);
    else
      check(s.addr === id.addr, `preflight: a ${s.kind} request from ${s.addr}, not ${id.addr}: ${JSON.stringify(s)}`);
  }
  log(`preflight: ${id.label} seen on ${polling.length} polling requests and the websocket upgrade`);
}

// ---------------------------------------------------------------------------
// vigil

class Vigil {
  constructor(binary, hash, ports, sticky) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-socketio-'));
    this.ports = ports;
    this.output = '';
    this.config = path.join(this.dir, 'vigil.toml');
    fs.writeFileSync(this.config, `
[vigil]
log_dir = "logs"
control_socket = "vigil.sock"

[http]
listen = "127.0.0.1:${ports.http}"

[programs.chat]
command = [${JSON.stringify(process.execPath)}, ${JSON.stringify(kChatServer)}]
instances = ${kInstances}
restart = "never"            # a killed instance stays down: its clients must go elsewhere
ready = "probe"
start_timeout = "30s"
stop_timeout = "5s"
${sticky ? '' : `port_base = ${ports.base}`}

[programs.chat.probe]
http = "http://127.0.0.1:{port}/whoami"
interval = "250ms"
timeout = "2s"
failures = 5
initial_delay = "0s"

` + (sticky ? `
[programs.chat.sticky]
listen = "127.0.0.1:${ports.sticky}"
port_base = ${ports.base}
hash = "${hash}"
` : ''));
    this.child = childProcess.spawn(binary, ['run', '-c', this.config], {
      cwd: this.dir,
      env: process.env,  // NODE_PATH reaches chat_server.js
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d) => {
      this.output += d;
      if (this.output.length > 200000) this.output = this.output.slice(-100000);
    };
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exit = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => resolve({ code, signal }));
      this.child.on('error', (e) => resolve({ error: e.message }));  // e.g. no such binary
    });
    this.exited = null;
    this.exit.then((e) => (this.exited = e));
  }
  alive() {
    check(!this.exited, `vigil exited (${JSON.stringify(this.exited)}):\n${this.output}`);
    return true;
  }
  async programs() {
    this.alive();
    const r = await httpGet(this.ports.http, '/api/v1/programs');
    check(r.status === 200, `GET /api/v1/programs: ${r.status} ${r.body}`);
    return JSON.parse(r.body).filter((p) => p.name === 'chat').sort((a, b) => a.index - b.index);
  }
  async metrics() {
    const r = await httpGet(this.ports.http, '/metrics');
    check(r.status === 200, `GET /metrics: ${r.status}`);
    return r.body;
  }
  async stop() {
    if (this.exited) return this.exited;
    this.child.kill('SIGTERM');
    try {
      return await within(20000, 'vigil to exit after SIGTERM', this.exit);
    } catch (e) {
      this.child.kill('SIGKILL');
      throw e;
    }
  }
}

// The value of `name{program="chat",index="i"}` per index.
function series(text, name) {
  const out = {};
  const re = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const m of text.matchAll(re)) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.program === 'chat') out[labels.index] = Number(m[2]);
  }
  return out;
}

function spread(clients) {
  const by = {};
  for (const c of clients) (by[c.last().instance] ||= []).push(c);
  return by;
}
function describeSpread(by) {
  return Object.keys(by).sort().map((k) => `instance ${k}: ${by[k].length}`).join(', ');
}

async function run(args) {
  await preflight(args.hash);

  const http_ = await freePort();
  const sticky = await freePort();
  const base = await freePortRange(kInstances, [http_, sticky]);
  const vigil = new Vigil(args.vigil, args.hash, { http: http_, sticky, base }, !args.devProxy);
  running = vigil;
  cleanups.push(async () => {
    if (!vigil.exited) {
      vigil.child.kill('SIGKILL');
      await vigil.exit;
    }
  });
  log(`vigil: config ${vigil.config}; sticky 127.0.0.1:${sticky}, instances on ${base}..${base + kInstances - 1}, hash ${args.hash}`);

  // Ready: all 4 running (their probe passed), so all 4 routable.
  const ready = await waitFor('4 chat instances running (probe passed) in GET /api/v1/programs', async () => {
    const ps = await vigil.programs();
    return ps.length === kInstances && ps.every((p) => p.state === 'running' && p.pid) && ps;
  }, 60000, () => (vigil.exited ? `; vigil exited:\n${vigil.output}` : ''));
  const pidOf = Object.fromEntries(ready.map((p) => [String(p.index), p.pid]));
  for (const p of ready) {
    const who = JSON.parse((await httpGet(base + p.index, '/whoami')).body);
    check(who.instance === String(p.index) && who.pid === p.pid,
          `instance ${p.index} (pid ${p.pid} in the API) answers /whoami on port ${base + p.index} with ${JSON.stringify(who)}`);
  }
  log(`4 instances running: pids ${JSON.stringify(pidOf)}`);
  if (args.devProxy) {
    const proxy = await require('./dev_proxy.js').startDevProxy(sticky, base, kInstances, args.hash);
    cleanups.push(async () => proxy.close());
    log('--dev-proxy: tests/sticky/dev_proxy.js routes, not vigil');
  }

  // 40 clients, all at once.
  const url = `http://127.0.0.1:${sticky}`;
  const clients = [];
  for (let n = 1; n <= args.clients; ++n) clients.push(new Client(url, n, identity(args.hash, n)));
  cleanups.push(async () => clients.forEach((c) => c.close()));
  await within(60000, `${args.clients} clients to connect, upgrade and chat`,
               Promise.all(clients.map((c) => c.settle(1, 30000))));
  for (const c of clients) {
    check(c.errors.length === 0, `${c.name}: ${c.describeErrors()}`);
    check(c.disconnects.length === 0, `${c.name}: disconnected (${c.disconnects.join(', ')}) before any instance was killed`);
    check(c.hellos.length === 1, `${c.name}: greeted ${c.hellos.length} times (reconnected)`);
    check(c.upgrades === 1 && c.transport() === 'websocket', `${c.name}: ${c.upgrades} upgrades, transport ${c.transport()}`);
    check(pidOf[c.last().instance] === c.last().pid,
          `${c.name}: greeted by pid ${c.last().pid} as instance ${c.last().instance}; the API says pid ${pidOf[c.last().instance]}`);
  }
  const by = spread(clients);
  log(`${args.clients} clients upgraded to websocket, each on one instance: ${describeSpread(by)}`);
  check(Object.keys(by).length >= 3, `the clients spread over only ${Object.keys(by).length} instances (${describeSpread(by)}); expected >= 3`);

  // vigil counts one open connection per client (its websocket) once the
  // polling requests are done.
  const open = args.devProxy ? 'not counted (--dev-proxy)' : await waitFor(`vigil_sticky_connections to sum to ${args.clients} per the clients' instances`, async () => {
    const s = series(await vigil.metrics(), 'vigil_sticky_connections');
    return Object.keys(by).every((k) => s[k] === by[k].length) && Object.values(s).reduce((a, b) => a + b, 0) === args.clients && s;
  }, 15000, () => '');
  log(`vigil_sticky_connections: ${JSON.stringify(open)}`);

  // Kill the busiest instance.
  const victim = Object.keys(by).sort((a, b) => by[b].length - by[a].length || a - b)[0];
  const victims = by[victim];
  const others = clients.filter((c) => c.last().instance !== victim);
  const before = new Map(others.map((c) => [c, c.last()]));
  log(`SIGKILL instance ${victim} (pid ${pidOf[victim]}) with ${victims.length} clients`);
  process.kill(pidOf[victim], 'SIGKILL');

  await within(60000, `the ${victims.length} clients of instance ${victim} to reconnect elsewhere`,
               Promise.all(victims.map(async (c) => {
                 await waitFor(`${c.name}: the disconnect from the killed instance`, () => c.disconnects.length >= 1, 30000);
                 const hello = await c.settle(2, 30000);
                 check(hello.instance !== victim, `${c.name}: reconnected to instance ${hello.instance}, the killed one`);
               })));
  const after = spread(victims);
  log(`the clients of instance ${victim} reconnected to: ${describeSpread(after)}`);

  for (const c of others) {
    const hello = await within(30000, `${c.name} to answer after the kill`, c.settle(1, 15000));
    const was = before.get(c);
    check(c.disconnects.length === 0, `${c.name}: disconnected (${c.disconnects.join(', ')}) when instance ${victim} was killed`);
    check(c.hellos.length === 1 && hello.instance === was.instance && hello.pid === was.pid,
          `${c.name}: was on instance ${was.instance} (pid ${was.pid}), now ${hello.instance} (pid ${hello.pid})`);
  }
  for (const c of clients) check(c.errors.length === 0, `${c.name}: ${c.describeErrors()}`);
  log(`the other ${others.length} clients kept their connection and instance`);

  const final = spread(clients);
  if (!args.devProxy) await waitFor(`vigil_sticky_connections to follow the clients (${describeSpread(final)}, 0 on instance ${victim})`, async () => {
    const s = series(await vigil.metrics(), 'vigil_sticky_connections');
    return (s[victim] || 0) === 0 && Object.keys(final).every((k) => s[k] === final[k].length);
  }, 15000);

  clients.forEach((c) => c.close());
  const exit = await vigil.stop();
  check(exit.code === 0, `vigil exited with ${JSON.stringify(exit)} after SIGTERM:\n${vigil.output}`);
  fs.rmSync(vigil.dir, { recursive: true, force: true });
  log('ok');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  try {
    await run(args);
    process.exit(0);
  } catch (e) {
    console.error(`socketio_test: FAIL (--hash ${args.hash}): ${e instanceof TestFailure ? e.message : e.stack}`);
    if (running) console.error(`vigil's output (last 4000 bytes; its files are in ${running.dir}):\n${running.output.slice(-4000)}`);
    for (const f of cleanups.reverse()) {
      try {
        await within(10000, 'cleanup', f());
      } catch (_) { /* already failing */ }
    }
    process.exit(1);
  }
}

main();
