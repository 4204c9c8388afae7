// The browser demo (demo/, sockeye-demo) in a real browser: headless Chromium (Debian's
// /usr/bin/chromium, or $SOCKEYE_CHROMIUM) driven by playwright-core (target/node).
//
//   node scripts/node/demo_test.mjs PATH/TO/sockeye-demo [SCREENSHOT.png]
//
// Starts the demo server itself (by PID, on a free loopback port; the page comes from
// the WebSocket's own origin) and checks, each check bounded:
//   chat       two pages (alice, bob) see each other join and chat both ways
//   kick       bob's `/kick alice ...` closes alice with 1008 and the reason, shown in
//              her page, which does not reconnect by itself; Connect brings her back
//   killed     the server killed (SIGKILL): both pages show 1006 abnormal closure and
//              "reconnecting in N ms"; the server started again on the same port: both
//              reconnect by themselves (backoff) and chat again
//   heartbeat  the server frozen (SIGSTOP): the page's heartbeat notices the silent
//              connection (4000) and reconnects once the server runs again (SIGCONT)
//   shutdown   the server stopped (SIGTERM): the pages see 1001 going away and the
//              server exits by itself
//   http2      over HTTPS (--tls, self-signed, Chromium --ignore-certificate-errors) the
//              page's wss:// is carried over HTTP/2: the page says so, the server's
//              /stats counts it as an HTTP/2 WebSocket, two pages chat over it, and a
//              Disconnect (1000) closes cleanly on both ends
// Takes a screenshot of alice's page (default target/demo-test/demo.png; the docs'
// docs/demo.png is taken this way). Prints `ok CHECK` or `FAILED CHECK: why` per check,
// then `N passed, N failed`; exit 0 when all passed. Every process it starts is stopped
// by its PID; the whole run is cut off after 110 s.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(process.env.SOCKEYE_NODE_MODULES || path.join(root, 'target/node/node_modules'), 'x.js'));
const { chromium } = require('playwright-core');

const [binary, shotArg] = process.argv.slice(2);
if (!binary) { console.error('usage: demo_test.mjs PATH/TO/sockeye-demo [SCREENSHOT.png]'); process.exit(2); }
const outDir = path.join(root, 'target/demo-test');
fs.mkdirSync(outDir, { recursive: true });
const screenshot = path.resolve(shotArg || path.join(outDir, 'demo.png'));

const WAIT = 15_000; // the bound of every single wait
const started = Date.now();
const servers = new Set();
let browser = null;
const results = [];

function log(text) { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`); }

// --- the server, by PID ------------------------------------------------------
let serverCount = 0;
async function startServer(args) {
  const logFile = path.join(outDir, `server-${++serverCount}.log`);
  const out = fs.openSync(logFile, 'w');
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', out] });
  servers.add(child);
  child.on('exit', () => servers.delete(child));
  const url = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no URL printed within ${WAIT} ms (log: ${logFile})`)), WAIT);
    child.stdout.on('data', (chunk) => {
      seen += chunk;
      fs.appendFileSync(logFile, chunk);
      const m = seen.match(/(https?:\/\/\S+\/)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`the server exited (${code ?? signal}) before printing its URL (log: ${logFile})`)); });
  });
  child.stdout.on('data', (chunk) => fs.appendFileSync(logFile, chunk));
  log(`server pid ${child.pid} at ${url} (${args.join(' ')})`);
  return { child, url, logFile };
}

// Sends `signal` to the server's PID and waits (bounded) for it to exit.
async function stopServer(server, signal) {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
  process.kill(child.pid, signal);
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), WAIT));
  const result = await Promise.race([exited, timeout]);
  if (!result) { process.kill(child.pid, 'SIGKILL'); throw new Error(`pid ${child.pid} did not exit within ${WAIT} ms of ${signal}`); }
  log(`server pid ${child.pid} exited (${result.code ?? result.signal}) after ${signal}`);
  return result;
}

// Waits (bounded) for the server's log to show `pattern`.
async function waitLog(server, pattern) {
  const end = Date.now() + WAIT;
  while (!pattern.test(fs.readFileSync(server.logFile, 'utf8'))) {
    if (Date.now() > end) throw new Error(`the server log (${server.logFile}) never showed ${pattern}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function getJson(url) {
  const lib = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { rejectUnauthorized: false, timeout: WAIT }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => { try { resolve(JSON.parse(body)); } catch (e) { reject(e); } });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

// --- pages -------------------------------------------------------------------
async function openPage(context, url, name, extra = '') {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.errors = errors;
  await page.goto(`${url}?name=${name}${extra}`);
  await waitOpen(page);
  return page;
}

const demoState = (page) => page.evaluate(() => ({ state: window.sockeyeDemo.state, detail: window.sockeyeDemo.detail }));

// Open and welcomed (the server's first message arrived) since event number `since`.
async function waitOpen(page, since = 0) {
  await page.waitForFunction((n) => {
    const d = window.sockeyeDemo;
    return d && d.state === 'open' && d.events.slice(n).some((e) => e.state === 'welcome');
  }, since, { timeout: WAIT });
}

const eventCount = (page) => page.evaluate(() => window.sockeyeDemo.events.length);

async function say(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

async function waitLine(page, selector, text) {
  await page.waitForFunction(([s, t]) => [...document.querySelectorAll(s)].some((li) => li.textContent.includes(t)),
    [selector, text], { timeout: WAIT });
}

async function check(name, body) {
  const t0 = Date.now();
  try {
    await body();
    results.push([name, null]);
    log(`ok       ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    const why = String(e.message || e).split('\n')[0];
    results.push([name, why]);
    log(`FAILED   ${name}: ${why}`);
  }
}

function assert(cond, why) { if (!cond) throw new Error(why); }

// --- the run ---------------------------------------------------------------------
const deadline = setTimeout(async () => {
  console.log('FAILED   demo: no result within 110 s');
  await cleanup();
  process.exit(1);
}, 110_000);

async function cleanup() {
  if (browser) await Promise.race([browser.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  for (const child of servers) { try { process.kill(child.pid, 'SIGKILL'); } catch {} }
}

let fatal = null;
try {
  browser = await chromium.launch({
    executablePath: process.env.SOCKEYE_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--ignore-certificate-errors'],
    timeout: 60_000,
  });
  log(`chromium ${browser.version()}`);
  let server = await startServer(['--addr', '127.0.0.1:0']);
  const port = new URL(server.url).port;
  const context = await browser.newContext({ viewport: { width: 1180, height: 720 } });
  let alice, bob;

  await check('chat: two pages talk through the server', async () => {
    alice = await openPage(context, server.url, 'alice');
    bob = await openPage(context, server.url, 'bob');
    await waitLine(alice, '#log li.system', 'bob joined (HTTP/1.1)');
    await say(alice, 'hello from alice, ça va ?');
    await waitLine(bob, '#log li.chat', 'hello from alice, ça va ?');
    await say(bob, 'hi alice, bob here');
    await waitLine(alice, '#log li.chat', 'hi alice, bob here');
    const users = await alice.textContent('#users');
    assert(users.includes('alice') && users.includes('bob'), `alice's user list: ${users}`);
    const compression = await alice.textContent('#compression');
    assert(/permessage-deflate/.test(compression), `compression shown: ${compression}`);
  });

  await check('kick: 1008 and its reason shown, no reconnect until asked', async () => {
    await say(bob, '/kick alice spamming the room');
    await alice.waitForFunction(() => window.sockeyeDemo.state === 'closed', null, { timeout: WAIT });
    const detail = await alice.textContent('#detail');
    assert(detail.includes('1008') && detail.includes('policy violation') && detail.includes('kicked by bob: spamming the room'),
      `alice's page shows: ${detail}`);
    const event = await alice.evaluate(() => window.sockeyeDemo.events.findLast((e) => e.state === 'closed'));
    assert(event.code === 1008 && event.reason === 'kicked by bob: spamming the room' && event.wasClean,
      `onclose saw ${JSON.stringify(event)}`);
    await waitLine(bob, '#log li.system', 'alice closed by the server (1008 kicked by bob: spamming the room)');
    await alice.waitForTimeout(1200);
    const { state } = await demoState(alice);
    assert(state === 'closed', `alice's page reconnected by itself (${state})`);
    const since = await eventCount(alice);
    await alice.click('#connect');
    await waitOpen(alice, since);
  });

  await check('killed: 1006 abnormal, reconnecting in N ms, back when the server returns', async () => {
    const sinceA = await eventCount(alice);
    const sinceB = await eventCount(bob);
    await stopServer(server, 'SIGKILL');
    for (const page of [alice, bob]) {
      await page.waitForFunction((n) => window.sockeyeDemo.events.slice(n).some((e) => e.state === 'reconnecting'), page === alice ? sinceA : sinceB, { timeout: WAIT });
      const event = await page.evaluate((n) => window.sockeyeDemo.events.slice(n).find((e) => e.state === 'reconnecting'), page === alice ? sinceA : sinceB);
      assert(event.code === 1006 && !event.wasClean && /^reconnecting in \d+ ms \(attempt 1\) after 1006 abnormal closure/.test(event.detail),
        `the page showed: ${JSON.stringify(event)}`);
      await waitLine(page, '#log li.system', 'closed: 1006 abnormal closure');
    }
    await alice.waitForTimeout(700); // a failed attempt or two while the server is away
    server = await startServer(['--addr', `127.0.0.1:${port}`]);
    await waitOpen(alice, sinceA);
    await waitOpen(bob, sinceB);
    await waitLine(alice, '#log li.system', 'the server restarted');
    await say(bob, 'bob is back');
    await waitLine(alice, '#log li.chat', 'bob is back');
    await say(alice, 'so is alice');
    await waitLine(bob, '#log li.chat', 'so is alice');
    const attempts = await alice.evaluate((n) => window.sockeyeDemo.events.slice(n).filter((e) => e.state === 'reconnecting').map((e) => e.delay), sinceA);
    log(`alice's reconnect delays: ${attempts.join(', ')} ms`);
  });

  await alice.screenshot({ path: screenshot });
  log(`screenshot: ${path.relative(root, screenshot)}`);

  await check('heartbeat: a frozen server is noticed (4000) and the page reconnects', async () => {
    const carol = await openPage(context, server.url, 'carol', '&heartbeat=700');
    const since = await eventCount(carol);
    process.kill(server.child.pid, 'SIGSTOP');
    try {
      await carol.waitForFunction((n) => window.sockeyeDemo.events.slice(n).some((e) => e.state === 'reconnecting'), since, { timeout: WAIT });
    } finally {
      process.kill(server.child.pid, 'SIGCONT');
    }
    const event = await carol.evaluate((n) => window.sockeyeDemo.events.slice(n).find((e) => e.state === 'reconnecting'), since);
    assert(event.code === 4000 && /no answer to a heartbeat/.test(event.detail), `carol's page showed: ${JSON.stringify(event)}`);
    await waitOpen(carol, since);
    await carol.close();
  });

  await check('shutdown: SIGTERM closes every page with 1001, the server exits', async () => {
    const since = await eventCount(bob);
    const exit = await stopServer(server, 'SIGTERM');
    assert(exit.code === 0, `the server exited with ${JSON.stringify(exit)}`);
    await bob.waitForFunction((n) => window.sockeyeDemo.events.slice(n).some((e) => e.state === 'reconnecting'), since, { timeout: WAIT });
    const event = await bob.evaluate((n) => window.sockeyeDemo.events.slice(n).find((e) => e.state === 'reconnecting'), since);
    assert(event.code === 1001 && event.reason === 'the server is shutting down' && event.wasClean,
      `bob's page showed: ${JSON.stringify(event)}`);
  });
  const pageErrors = [...alice.errors, ...bob.errors].filter((e) => !/WebSocket connection to .* failed/.test(e));
  await context.close();

  await check('http2: wss:// over HTTPS is carried over HTTP/2 (RFC 8441)', async () => {
    const tls = await startServer(['--tls', '--addr', '127.0.0.1:0']);
    assert(tls.url.startsWith('https://'), `printed ${tls.url}`);
    const ctx = await browser.newContext();
    try {
      const dave = await openPage(ctx, tls.url, 'dave');
      const erin = await openPage(ctx, tls.url, 'erin');
      const protocol = await dave.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
      assert(protocol === 'h2', `the page itself came over ${protocol}`);
      await say(dave, 'over h2');
      await waitLine(erin, '#log li.chat', 'over h2');
      const seen = await dave.evaluate(() => window.sockeyeDemo.http);
      assert(seen === 'HTTP/2', `the server told the page its WebSocket came over ${seen}`);
      const stats = await getJson(`${tls.url}stats`);
      log(`/stats over TLS: ${JSON.stringify({ http1: stats.http1, http2: stats.http2 })}`);
      assert(stats.http2.accepted >= 2 && stats.http2.open >= 2 && stats.http1.accepted === 0,
        `/stats: ${JSON.stringify(stats)}`);
      // The close handshake over an HTTP/2 stream: dave disconnects (1000), cleanly on
      // both ends, and erin sees him leave.
      await dave.click('#disconnect');
      await dave.waitForFunction(() => window.sockeyeDemo.state === 'closed', null, { timeout: WAIT });
      const event = await dave.evaluate(() => window.sockeyeDemo.events.at(-1));
      assert(event.code === 1000 && event.wasClean, `dave's page saw ${JSON.stringify(event)}`);
      await waitLine(erin, '#log li.system', 'dave left (closed 1000)');
      await waitLog(tls, /dave: open over HTTP\/2, permessage-deflate/);
      await waitLog(tls, /dave: ended: clean code=1000 reason=bye/);
    } finally {
      await ctx.close();
      await stopServer(tls, 'SIGTERM');
    }
  });

  await check('no errors in the pages', async () => {
    assert(pageErrors.length === 0, pageErrors.join(' | '));
  });
} catch (e) {
  fatal = String(e.message || e).split('\n')[0];
} finally {
  await cleanup();
  clearTimeout(deadline);
}
if (fatal) results.push(['demo', fatal]);
let failed = 0;
let passed = 0;
for (const [name, why] of results) {
  if (why) failed += 1; else passed += 1;
  console.log(why ? `FAILED   ${name}: ${why}` : `ok       ${name}`);
}
if (!passed && !failed) failed = 1;
console.log(`time: ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
