#!/usr/bin/env node
'use strict';
// Demo: an HTTP service using the vigil heartbeat client. READY once it
// listens, a beat from its own event loop, STATUS with the request count and
// MEMORY every few seconds, STOPPING on SIGTERM. Runs as-is without vigil.
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

server.listen(Number(process.env.PORT || 0), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address();
  console.log(`node_app[${instance}]: listening on http://${address}:${port} (heartbeat: ${hb.transport()})`);
  hb.ready();
  hb.status(`listening on ${port}, 0 requests`);
  hb.start(); // WATCHDOG=1 every WATCHDOG_USEC/2 (else 1s), from this event loop
});

// STATUS and MEMORY every few seconds; unref'd like the beat timer.
setInterval(() => {
  hb.status(`listening on ${server.address() ? server.address().port : '?'}, ${requests} requests`);
  hb.reportMemory();
}, 3000).unref();

function shutdown(signal) {
  console.log(`node_app[${instance}]: ${signal}, stopping after ${requests} requests`);
  hb.stopping();
  hb.stop();
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
