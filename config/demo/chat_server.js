#!/usr/bin/env node
'use strict';
// Demo and test server for vigil's sticky proxy: a socket.io chat, one
// process per instance, each on 127.0.0.1:$PORT (vigil gives instance i
// PORT=port_base+i and relays its sticky listener to them). socket.io's
// long-polling handshake only works when every request of a client reaches
// the same process ("Session ID unknown" otherwise): that is what sticky
// routing is for.
//   GET /        a page that connects, says which instance it is on, and chats
//   GET /whoami  {"instance", "pid", "clients"} (vigil's probe, the test)
//   socket.io    on connection: "hello" {instance, pid}; "whoami" (ack) ->
//                {instance, pid, transport}; "chat" text (ack) -> broadcast
//                {instance, pid, text} and ack {instance, pid}
// Chat messages reach the clients of this instance only: there is no
// cross-instance adapter (socket.io's redis adapter would add one); the
// demo is about sticky routing, not about a shared room.
//   PORT=3141 node config/demo/chat_server.js
// socket.io comes from NODE_PATH (`make run` and the tests set it to
// BUILD/node_sticky/node_modules, installed from tests/sticky/package-lock.json
// by tests/sticky/npm_ci.sh), else from build/node_sticky next to this repo.

const http = require('http');
const path = require('path');

function load(name) {
  try {
    return require(name);
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
  }
  const fallback = path.join(__dirname, '..', '..', 'build', 'node_sticky', 'node_modules', name);
  try {
    return require(fallback);
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
    console.error(`chat_server: cannot find the npm package "${name}" (NODE_PATH=${process.env.NODE_PATH || ''}, ` +
                  `nor ${fallback}); install it with: bash tests/sticky/npm_ci.sh build/node_sticky`);
    process.exit(1);
  }
}
const { Server } = load('socket.io');

const instance = process.env.VIGIL_INSTANCE || '0';
const pid = process.pid;
const kMaxText = 500;  // longer chat messages are cut, not relayed whole

const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>vigil sticky chat</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}#log{height:20em;overflow-y:auto;border:1px solid #ccc;padding:.5em}
#log p{margin:.2em 0}.sys{color:#777}</style></head>
<body><h1>vigil sticky chat</h1>
<p>Connected to instance <b id="instance">?</b> (pid <span id="pid">?</span>, transport <span id="transport">?</span>).
Reload the page: you stay on the same instance. Messages reach the clients of that instance.</p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" size="50" maxlength="${kMaxText}"> <button>send</button></form>
<script src="/socket.io/socket.io.js"></script>
<script>
const $ = (id) => document.getElementById(id);
const log = (text, cls) => { const p = document.createElement('p'); p.textContent = text; if (cls) p.className = cls;
  $('log').appendChild(p); $('log').scrollTop = $('log').scrollHeight; };
const socket = io();
const transport = () => { $('transport').textContent = socket.io.engine.transport.name; };
socket.on('connect', () => { transport(); socket.io.engine.on('upgrade', transport); });
socket.on('hello', (m) => { $('instance').textContent = m.instance; $('pid').textContent = m.pid;
  log('connected to instance ' + m.instance + ' (pid ' + m.pid + ')', 'sys'); });
socket.on('disconnect', (reason) => log('disconnected: ' + reason + '; reconnecting', 'sys'));
socket.on('chat', (m) => log('[' + m.instance + '] ' + m.text));
$('form').addEventListener('submit', (e) => { e.preventDefault(); const t = $('text').value.trim();
  if (t) socket.emit('chat', t); $('text').value = ''; });
</script></body></html>
`;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/whoami') {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({ instance, pid, clients: io.engine.clientsCount }) + '\n');
  } else if (url.pathname === '/') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(page);
  } else {
    res.statusCode = 404;
    res.end('not found\n');
  }
});

// maxHttpBufferSize bounds what one client can make this process buffer.
const io = new Server(server, { maxHttpBufferSize: 16 * 1024 });

io.on('connection', (socket) => {
  socket.emit('hello', { instance, pid });
  socket.on('whoami', (ack) => {
    if (typeof ack === 'function') ack({ instance, pid, transport: socket.conn.transport.name });
  });
  socket.on('chat', (text, ack) => {
    const m = { instance, pid, text: String(text).slice(0, kMaxText) };
    io.emit('chat', m);
    if (typeof ack === 'function') ack({ instance, pid });
  });
});

const port = Number(process.env.PORT || 0);
server.listen({ port, host: '127.0.0.1' }, () => {
  console.log(`chat_server[${instance}]: pid ${pid}, listening on http://127.0.0.1:${server.address().port}`);
});

function shutdown(signal) {
  console.log(`chat_server[${instance}]: ${signal}, closing ${io.engine.clientsCount} connections`);
  // Closes every socket.io connection (the clients reconnect, through vigil,
  // to another instance) and the listener; then the loop is empty.
  io.close(() => process.exit(0));
  // An idle keep-alive connection would hold server.close() open.
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 3000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
