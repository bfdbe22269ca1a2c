// The status page in a real browser (Debian's chromium, driven by
// playwright-core) against the real vigil binary running a steady, a
// crashing and a hung program:
//   - no console error; every program and its state shown;
//   - the crasher's restart count rises on screen without a reload, and its
//     reason shows; the hung one is restarted for "hung";
//   - without a token no action button shows and a forged POST gets 401;
//     with the token pasted, restart through the button gives a new pid;
//   - the detail view shows the instance's log tail and charts;
//   - at 375 px wide nothing overflows horizontally;
//   - the assets carry a Content-Security-Policy and an ETag (304 on match).
// Screenshots go to --out (in the build folder).
//   node tests/page/page_test.js --vigil BUILD/vigil --out BUILD/page_screenshots
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const VIGIL = path.resolve(args.vigil);
const OUT = args.out || path.join(os.tmpdir(), 'vigil-page-screenshots');
const CHROMIUM = args.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'page-test-token-' + process.pid;

let passed = 0;
let failed = 0;
function check(cond, what) {
  if (cond) { passed++; console.log(`ok   ${what}`); } else { failed++; console.log(`FAIL ${what}`); }
  return cond;
}
async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}
function request(port, method, pathname, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathname, headers, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
async function instances(port) {
  const r = await request(port, 'GET', '/api/v1/programs');
  return JSON.parse(r.body);
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-page-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'token'), TOKEN + '\n', { mode: 0o600 });
  fs.writeFileSync(path.join(dir, 'vigil.toml'), `
[vigil]
log_dir = "logs"
control_socket = "vigil.sock"
sample_interval = "1s"

[http]
listen = "127.0.0.1:${port}"
token_file = "token"

[programs.steady]
command = ["sleep", "100000"]
instances = 2
memory_limit = "512MiB"

[programs.crasher]
command = ["sh", "-c", "echo crasher starting; sleep 0.3; echo crasher fails >&2; exit 3"]
restart_delay = "300ms"
restart_delay_max = "600ms"
restart_window = "0s"

[programs.hung]
command = ["sleep", "100000"]
restart_delay = "300ms"
restart_window = "0s"
[programs.hung.heartbeat]
interval = "1s"
misses = 1
grace = "1s"
`);
  const vigil = childProcess.spawn(VIGIL, ['run', '-c', path.join(dir, 'vigil.toml')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let vigilLog = '';
  vigil.stdout.on('data', (d) => { vigilLog += d; });
  vigil.stderr.on('data', (d) => { vigilLog += d; });
  let browser;
  try {
    await until('vigil to answer', async () => (await instances(port)).length === 4);

    // The assets: policy, cache validators.
    const root = await request(port, 'GET', '/');
    check(root.status === 200 && /text\/html/.test(root.headers['content-type']), 'GET / is the HTML page');
    check(/default-src 'none'/.test(root.headers['content-security-policy'] || ''), 'GET / forbids external requests by CSP');
    const etag = root.headers.etag;
    check(!!etag && (await request(port, 'GET', '/', { 'If-None-Match': etag })).status === 304, 'GET / with its ETag is 304');
    for (const [p, type] of [['/page.js', 'javascript'], ['/page.css', 'text/css'], ['/favicon.svg', 'image/svg+xml']]) {
      const r = await request(port, 'GET', p);
      check(r.status === 200 && (r.headers['content-type'] || '').includes(type), `${p} is served as ${type}`);
    }

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    const problems = [];
    const watch = (page, name) => {
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: console: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`${name}: request failed: ${r.url()}`));
      page.on('request', (r) => { if (!r.url().startsWith(`http://127.0.0.1:${port}/`)) problems.push(`${name}: external request ${r.url()}`); });
    };

    // ---- Without a token: looks, cannot act.
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    watch(page, 'desktop');
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.evaluate(() => { window.__notReloaded = true; });
    for (const name of ['steady', 'crasher', 'hung'])
      await page.waitForSelector(`section[data-program="${name}"] tbody tr`, { timeout: 15000 });
    const shown = await page.$$eval('tbody tr', (rows) => rows.map((r) => r.querySelector('.state').textContent));
    check(shown.length === 4, `every instance has a row (${shown.length})`);
    check(await page.$eval('section[data-program="steady"] .counts', (e) => e.textContent.startsWith('2/2 running')),
      'the steady program\'s summary says 2/2 running');
    const restartsOnScreen = () => page.$eval('section[data-program="crasher"] .restarts', (e) => Number(e.textContent));
    const first = await restartsOnScreen();
    await until('the crasher\'s restarts to rise on screen', async () => (await restartsOnScreen()) >= first + 2);
    check(true, `the crasher's restart count rises on screen (${first} -> ${await restartsOnScreen()})`);
    check(await page.evaluate(() => window.__notReloaded === true), 'without a reload of the page');
    const reason = await page.$eval('section[data-program="crasher"] tbody tr', (e) => e.textContent);
    check(/exit/.test(reason) && /code 3/.test(reason), `the crasher's reason shows (${reason.slice(0, 160)})`);
    await until('the hung program to be restarted for hung', async () =>
      /hung/.test(await page.$eval('section[data-program="hung"] tbody tr', (e) => e.textContent)));
    check(true, 'the hung program shows reason hung');
    check((await page.$$('button[data-action]')).length === 0, 'without a token no action button shows');
    // Forged from outside the page (a page's own 401 would be a console error).
    const forged = (await request(port, 'POST', '/api/v1/programs/steady/restart', { Origin: 'http://evil.example' })).status;
    check(forged === 401, `a forged POST without a token is refused (${forged})`);
    const wrong = (await request(port, 'POST', '/api/v1/programs/steady/restart?index=0', { Authorization: 'Bearer nope' })).status;
    check(wrong === 401, `a POST with a wrong token is refused (${wrong})`);
    await page.screenshot({ path: path.join(OUT, 'desktop.png'), fullPage: true });

    // Detail view by keyboard: the crasher's log and charts.
    await page.focus('section[data-program="crasher"] tbody tr');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#detail[open]');
    await until('the log tail in the detail view', async () =>
      /crasher fails/.test(await page.$eval('#detail-log', (e) => e.textContent)));
    check(true, 'the detail view shows the log tail');
    await until('the charts', async () => (await page.$$('#detail-charts .chart')).length === 4);
    check(true, 'the detail view draws the history charts');
    check(/code 3/.test(await page.$eval('#detail-exits', (e) => e.textContent)), 'the detail view lists recent exits');
    await page.screenshot({ path: path.join(OUT, 'detail.png'), fullPage: false });
    await page.keyboard.press('Escape');
    await page.waitForSelector('#detail:not([open])', { state: 'attached' });

    // ---- With the token: restart steady[0] through its button.
    await page.click('#unlock');
    await page.fill('#token', TOKEN);
    await page.press('#token', 'Enter');
    const button = 'section[data-program="steady"] tr[data-key="steady/0"] button[data-action="restart"]';
    await page.waitForSelector(button, { timeout: 10000 });
    check(await page.evaluate(() => !location.href.includes('token')), 'the token is not in the URL');
    const before = (await instances(port)).find((i) => i.name === 'steady' && i.index === 0).pid;
    await page.click(button);
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    await page.waitForSelector('.toast', { timeout: 10000 });
    const toastText = await page.$eval('.toast', (e) => e.textContent);
    check(/restart steady\[0\]/.test(toastText), `the action shows its result (${toastText})`);
    const after = await until('a new pid for steady[0]', async () => {
      const i = (await instances(port)).find((x) => x.name === 'steady' && x.index === 0);
      return i.pid && i.pid !== before && i.state === 'running' ? i.pid : null;
    });
    check(after !== before, `restart through the button gives a new pid (${before} -> ${after})`);
    await until('the new pid on screen', async () =>
      (await page.$eval('tr[data-key="steady/0"]', (e) => e.textContent)).includes(String(after)));
    check(true, 'the new pid shows on the page');
    const other = (await instances(port)).find((x) => x.name === 'steady' && x.index === 1);
    check(other.restarts === 0, 'the other instance was not restarted');
    await page.screenshot({ path: path.join(OUT, 'controls.png'), fullPage: true });

    // ---- A phone, dark.
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'dark' });
    const ppage = await phone.newPage();
    watch(ppage, 'phone');
    await ppage.goto(`http://127.0.0.1:${port}/`);
    await ppage.waitForSelector('section[data-program="hung"] tbody tr');
    const width = await ppage.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    check(width.scroll <= width.client && width.client <= 375, `at 375 px nothing overflows (${width.scroll} <= ${width.client})`);
    const wide = await ppage.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
      .map((e) => e.tagName + '.' + e.className).slice(0, 5));
    check(wide.length === 0, `no element reaches past the right edge (${wide.join(', ')})`);
    await ppage.screenshot({ path: path.join(OUT, 'phone-dark.png'), fullPage: true });

    check(problems.length === 0, `no console error, page error or external request (${problems.join('; ')})`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${e.message}`);
    console.log(vigilLog.split('\n').slice(-30).join('\n'));
  } finally {
    if (browser) await browser.close();
    vigil.kill('SIGTERM');
    await new Promise((r) => { if (vigil.exitCode !== null) r(); else vigil.on('exit', r); });
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`screenshots in ${OUT}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
