'use strict';
// A stand-in for vigil's sticky proxy, to check socketio_test.js itself
// (`--dev-proxy`): the same routing in a few lines of node (rendezvous hash
// of the client's address or first X-Forwarded-For entry over the instance
// ports, the next port when a connect fails). Not a test of vigil, and not
// run by ctest.

const crypto = require('crypto');
const net = require('net');

function score(key, index) {
  return crypto.createHash('sha256').update(`${key}/${index}`).digest().readBigUInt64BE(0);
}

function forwardedFor(head) {
  const m = /^x-forwarded-for:[ \t]*([^,\r\n]*)/im.exec(head.toString('latin1'));
  return m && m[1].trim();
}

// Listens on 127.0.0.1:port; instance i is 127.0.0.1:base+i.
function startDevProxy(port, base, instances, hash) {
  const server = net.createServer((client) => {
    client.pause();
    client.once('data', (first) => {
      client.pause();
      const key = (hash === 'x-forwarded-for' && forwardedFor(first)) || client.remoteAddress;
      const order = [...Array(instances).keys()].sort((a, b) => (score(key, b) > score(key, a) ? 1 : -1));
      const tryNext = () => {
        const i = order.shift();
        if (i === undefined) return client.destroy();
        const upstream = net.connect(base + i, '127.0.0.1');
        upstream.once('error', tryNext);
        upstream.once('connect', () => {
          upstream.removeListener('error', tryNext);
          upstream.on('error', () => client.destroy());
          client.on('error', () => upstream.destroy());
          upstream.write(first);
          client.pipe(upstream);
          upstream.pipe(client);
          client.resume();
        });
      };
      tryNext();
    });
    client.on('error', () => {});
    client.resume();
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

module.exports = { startDevProxy };
