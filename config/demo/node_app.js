#!/usr/bin/env node
'use strict';
// Demo: an HTTP service using the vigil heartbeat client. READY once it
// listens, a beat from its own event loop, STATUS with the request count and
// MEMORY every few seconds, STOPPING on SIGTERM, then it finishes the
// requests at hand and exits. With `listen` on its program it serves the
// socket vigil holds at fd 3 (systemd socket activation), shared by every
// instance and kept across restarts. Runs as-is without vigil.
//   PORT=8080 node config/demo/node_app.js     (PORT unset or 0: any free port)
//   GET /        -> a greeting with the request count
//   GET /health  -> "ok"
//   GET /block?ms=N -> blocks the event loop N ms (shows how a hang is seen)

const http = require('http');
const path = require('path');
const hb = require(path.join(__dirname, '..', '..', 'clients', 'node'));

const instance = process.env.VIGIL_INSTANCE || '0';
let requests = 0;

const server = http.createServer((req, res) => {
  requests++;
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/health') {
    res.end('ok\n');
  } else if (url.pathname === '/block') {
    const until = Date.now() + Math.min(Number(url.searchParams.get('ms')) || 0, 600000);
    while (Date.now() < until) { /* a stuck loop: no beats get out */ }
    res.end('unblocked\n');
  } else {
    res.end(`hello from node_app instance ${instance}, request ${requests}\n`);
  }
});

// A socket passed by vigil (or systemd) at fd 3; LISTEN_PID guards against
// variables inherited from a parent they were meant for.
const activated = process.env.LISTEN_PID === String(process.pid) && Number(process.env.LISTEN_FDS) >= 1;
const where = activated ? { fd: 3 } : { port: Number(process.env.PORT || 0), host: process.env.HOST || '127.0.0.1' };

function describe() {
  const a = server.address();
  return a && typeof a === 'object' ? `http://${a.address}:${a.port}` : `fd 3 (${process.env.LISTEN_FDNAMES})`;
}

server.listen(where, () => {
  console.log(`node_app[${instance}]: listening on ${describe()} (heartbeat: ${hb.transport()})`);
  hb.ready();
  hb.status(`listening on ${describe()}, 0 requests`);
  hb.start(); // WATCHDOG=1 every WATCHDOG_USEC/2 (else 1s), from this event loop
});

// STATUS and MEMORY every few seconds; unref'd like the beat timer.
setInterval(() => {
  hb.status(`listening on ${describe()}, ${requests} requests`);
  hb.reportMemory();
}, 3000).unref();

function shutdown(signal) {
  console.log(`node_app[${instance}]: ${signal}, stopping after ${requests} requests`);
  hb.stopping();
  hb.stop();
  // Takes nothing new (the other instances and a held socket's backlog do),
  // finishes the requests at hand, drops idle keep-alive connections.
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
