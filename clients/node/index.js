'use strict';
// vigil-heartbeat: tells vigil (or systemd) that this Node program is ready
// and alive, over the heartbeat fd (VIGIL_HEARTBEAT_FD) or NOTIFY_SOCKET, and
// exits the process when vigil is gone. A silent no-op when neither is set.
// No dependencies; must never throw into the caller or keep the process alive.

const fs = require('fs');
const childProcess = require('child_process');

const MAX_STATUS_BYTES = 1024; // vigil cuts STATUS text there (DESIGN.md)
const DEFAULT_INTERVAL_MS = 1000;

let transport = null; // null: not decided yet; then { kind: 'fd'|'notify'|'none', ... }
let timer = null;
let notifyWarned = false;

// Called when vigil is gone (EPIPE on the heartbeat fd). The default says so
// on stderr and exits with status 0: the monitor vanished, the program did
// not fail, and a child must not outlive its monitor. Replace it with
// onGone(fn) to clean up first (then exit yourself).
let goneHandler = (reason) => {
  try {
    fs.writeSync(2, `vigil is gone (${reason}); exiting\n`);
  } catch (_) {
    // stderr may be a pipe to the same dead vigil: nothing left to tell.
  }
  process.exit(0);
};

function warn(text) {
  try {
    fs.writeSync(2, `vigil-heartbeat: ${text}\n`);
  } catch (_) {
    // stderr closed: stay silent rather than throw into the caller.
  }
}

// Only a pipe or socket counts as the heartbeat fd: a process that merely
// inherited VIGIL_HEARTBEAT_FD (its fd 3 being some unrelated file) must not
// write heartbeats into it.
function heartbeatFd() {
  const value = process.env.VIGIL_HEARTBEAT_FD;
  if (!value || !/^[0-9]+$/.test(value)) return -1;
  const fd = Number(value);
  try {
    const st = fs.fstatSync(fd);
    return st.isFIFO() || st.isSocket() ? fd : -1;
  } catch (_) {
    return -1;
  }
}

function getTransport() {
  if (transport) return transport;
  const fd = heartbeatFd();
  const notifySocket = process.env.NOTIFY_SOCKET;
  if (fd >= 0) {
    transport = { kind: 'fd', fd };
  } else if (notifySocket && (notifySocket[0] === '/' || notifySocket[0] === '@')) {
    // Node has no AF_UNIX datagram sockets: hand the message to
    // systemd-notify(1), which speaks the protocol (abstract "@" names too).
    transport = { kind: 'notify', sentOk: false, noBlock: true };
  } else {
    transport = { kind: 'none' };
  }
  return transport;
}

function sendFd(t, line) {
  const buf = Buffer.from(line + '\n');
  try {
    // Lines are < PIPE_BUF bytes: the write is atomic, all or nothing.
    fs.writeSync(t.fd, buf);
    return true;
  } catch (err) {
    if (err.code === 'EPIPE') {
      // Node ignores SIGPIPE, so a vanished reader shows up here.
      transport = { kind: 'none' };
      stopTimer();
      goneHandler('EPIPE on heartbeat fd');
      return false;
    }
    if (err.code === 'EAGAIN' || err.code === 'EINTR') return false; // pipe full: dropped
    warn(`cannot write to heartbeat fd ${t.fd}: ${err.message}; heartbeats off`);
    transport = { kind: 'none' };
    stopTimer();
    return false;
  }
}

function sendNotify(t, line) {
  // --no-block: skip systemd-notify's BARRIER=1 round trip, which would hold
  // the event loop until the receiver has read the message (vigil's socket
  // is per instance, so no sender pid needs to be attributed in time).
  const args = t.noBlock === false ? [line] : ['--no-block', line];
  try {
    childProcess.execFileSync('systemd-notify', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: Object.assign({}, process.env, { LC_ALL: 'C' }),
      timeout: 5000,
    });
    t.sentOk = true;
    return true;
  } catch (err) {
    if (err.code === 'ENOENT') {
      if (!notifyWarned) {
        notifyWarned = true;
        warn('NOTIFY_SOCKET is set but systemd-notify is not installed and Node cannot ' +
             'send unix datagrams; heartbeats off (vigil gives fd 3 to every child)');
      }
      transport = { kind: 'none' };
      stopTimer();
      return false;
    }
    const stderr = err.stderr ? err.stderr.toString().trim() : err.message;
    if (t.noBlock !== false && /unrecognized option/.test(stderr)) {
      t.noBlock = false; // systemd < 246
      return sendNotify(t, line);
    }
    // Refused after an earlier success: nobody is bound any more, vigil died.
    if (t.sentOk && /Connection refused|No such file or directory/.test(stderr)) {
      transport = { kind: 'none' };
      stopTimer();
      goneHandler('systemd-notify: NOTIFY_SOCKET refused');
      return false;
    }
    if (!notifyWarned) {
      notifyWarned = true;
      warn(`systemd-notify failed: ${stderr}`);
    }
    return false;
  }
}

// Send raw protocol text: one "KEY=VALUE" line. Returns true when sent.
function send(line) {
  const t = getTransport();
  if (t.kind === 'fd') return sendFd(t, line);
  if (t.kind === 'notify') return sendNotify(t, line);
  return false;
}

// Recommended beat interval in ms: WATCHDOG_USEC / 2, as systemd's
// sd_watchdog_enabled; 0 when no heartbeat is configured. WATCHDOG_PID is
// not compared with process.pid: under vigil any process of the child's
// tree may beat (e.g. `npm start` -> node).
function intervalMs() {
  const value = process.env.WATCHDOG_USEC;
  if (!value || !/^[0-9]+$/.test(value)) return 0;
  return Number(value) / 2000;
}

function stopTimer() {
  if (timer) {
    clearInterval(timer);
    timer = null;
  }
}

// Beat now and then every intervalMs (default: WATCHDOG_USEC / 2, else 1000).
// The timer is unref'd: it never keeps an otherwise finished program alive,
// and it only fires while the event loop turns, so a blocked loop stops the
// beats and vigil sees the hang. Calling start() again restarts the timer.
// Returns true when there is somewhere to send to.
function start(options) {
  const opts = options || {};
  stopTimer();
  if (getTransport().kind === 'none') return false;
  let ms = opts.intervalMs !== undefined ? Number(opts.intervalMs) : intervalMs();
  if (!(ms > 0)) ms = DEFAULT_INTERVAL_MS;
  beat();
  if (getTransport().kind === 'none') return false; // the first beat found vigil gone
  timer = setInterval(beat, Math.max(1, Math.round(ms)));
  timer.unref();
  return true;
}

// Stop the periodic beats (send stopping() too when shutting down cleanly).
function stop() {
  stopTimer();
}

function beat() {
  return send('WATCHDOG=1');
}

function ready() {
  return send('READY=1');
}

// WATCHDOG=trigger: this program knows it is hung; vigil restarts it now.
function trigger() {
  return send('WATCHDOG=trigger');
}

// STOPPING=1: a clean shutdown has begun; no hang detection from here.
function stopping() {
  return send('STOPPING=1');
}

// STATUS=text for `vigil status`: control characters become spaces, cut at
// 1024 bytes on a character boundary.
function status(text) {
  if (getTransport().kind === 'none') return false;
  // eslint-disable-next-line no-control-regex
  let buf = Buffer.from(String(text).replace(/[\x00-\x1f\x7f]/g, ' '));
  if (buf.length > MAX_STATUS_BYTES) {
    let end = MAX_STATUS_BYTES;
    while (end > 0 && (buf[end] & 0xc0) === 0x80) end--;
    buf = buf.subarray(0, end);
  }
  return send('STATUS=' + buf.toString());
}

// MEMORY=bytes: memory this program reports about itself.
function memory(bytes) {
  const n = Math.floor(Number(bytes));
  if (!Number.isFinite(n) || n < 0) return false;
  return send('MEMORY=' + String(n));
}

// MEMORY=<resident set size of this process>.
function reportMemory() {
  if (getTransport().kind === 'none') return false;
  const rss = typeof process.memoryUsage.rss === 'function'
    ? process.memoryUsage.rss() : process.memoryUsage().rss;
  return memory(rss);
}

// Replace what happens when vigil is gone; fn(reason) should end the process.
function onGone(fn) {
  if (typeof fn === 'function') goneHandler = fn;
}

// 'fd', 'notify' or 'none': where messages go.
function transportKind() {
  return getTransport().kind;
}

module.exports = {
  start, stop, beat, ready, trigger, stopping, status, memory, reportMemory,
  send, intervalMs, onGone, transport: transportKind,
};
