// A real browser against a WebSocket echo server: headless Chromium (Debian's
// /usr/bin/chromium, or $SOCKEYE_CHROMIUM) driven by playwright-core (target/node).
//
//   node scripts/node/interop_chromium.mjs ws://127.0.0.1:PORT/
//
// The page comes from a small HTTP server this script starts on another loopback port
// (the echo server serves no HTML); Chromium runs with
// --disable-features=LocalNetworkAccessChecks so that nothing stands between the page
// and the loopback WebSocket. In the page: `ws.extensions` names permessage-deflate;
// text, binary, empty, and 4 MiB text and binary messages come back exactly; the page
// closes with 4000 'bye' and its onclose sees code 4000, wasClean. Prints `ok CHECK` or
// `FAILED CHECK: why` per check, then `N passed, N failed`; exit 0 when all passed.
// Bounded: 60 s for the page's work, the browser and the HTTP server stopped at the end.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(process.env.SOCKEYE_NODE_MODULES || path.join(root, 'target/node/node_modules'), 'x.js'));
const { chromium } = require('playwright-core');

const url = process.argv[2];
if (!url) { console.error('usage: interop_chromium.mjs WS_URL'); process.exit(2); }

const PAGE = `<!doctype html><meta charset="utf-8"><title>sockeye interop</title><script>
async function runChecks(url) {
  const results = [];
  const check = (name, why) => results.push([name, why || null]);
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  const queue = [];
  let waiter = null;
  ws.onmessage = (e) => { if (waiter) { const w = waiter; waiter = null; w(e.data); } else queue.push(e.data); };
  const closed = new Promise((res) => { ws.onclose = (e) => res(e); });
  const next = () => queue.length ? Promise.resolve(queue.shift()) : new Promise((res) => { waiter = res; });
  await new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('the connection failed')); });
  check('extensions: permessage-deflate', /permessage-deflate/.test(ws.extensions) ? null : 'ws.extensions = ' + JSON.stringify(ws.extensions));
  results.push(['# extensions', ws.extensions]);
  const same = (a, b) => {
    if (typeof a === 'string') return a === b;
    if (!(b instanceof ArrayBuffer) || a.byteLength !== b.byteLength) return false;
    const x = new Uint8Array(a), y = new Uint8Array(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  };
  const bigBin = new Uint8Array(4 << 20);
  for (let i = 0; i < bigBin.length; i++) bigBin[i] = i < bigBin.length / 2 ? (i * 2654435761 >>> 24) & 255 : i % 251;
  const bigText = 'permessage-deflate from Chromium ✓ '.repeat(130000).slice(0, 4 << 20);
  const cases = [['text', 'héllo from Chromium ✓'], ['binary', new Uint8Array([0, 1, 2, 254, 255]).buffer],
                 ['empty text', ''], ['empty binary', new ArrayBuffer(0)],
                 ['4 MiB binary', bigBin.buffer], ['4 MiB text', bigText]];
  for (const [name, m] of cases) {
    ws.send(m);
    const got = await next();
    check(name, same(m, got) ? null : 'came back different (' + (typeof got) + ', ' + (got.length ?? got.byteLength) + ')');
  }
  ws.close(4000, 'bye');
  const e = await closed;
  check('close 4000 seen in onclose', e.code === 4000 && e.wasClean ? null : 'code=' + e.code + ' reason=' + JSON.stringify(e.reason) + ' wasClean=' + e.wasClean);
  results.push(['# close', 'code=' + e.code + ' reason=' + JSON.stringify(e.reason)]);
  return results;
}
</script>`;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  res.end(PAGE);
});
await new Promise((res) => server.listen(0, '127.0.0.1', res));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

let browser;
let results = [];
const timer = setTimeout(() => { console.log('FAILED   chromium: no result within 90 s'); process.exit(1); }, 90_000);
try {
  browser = await chromium.launch({
    executablePath: process.env.SOCKEYE_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-features=LocalNetworkAccessChecks'],
    timeout: 60_000,
  });
  const page = await browser.newPage();
  page.setDefaultTimeout(60_000);
  await page.goto(pageUrl);
  results = await page.evaluate((u) => runChecks(u), url);
} catch (e) {
  results.push(['chromium', String(e.message || e).split('\n')[0]]);
} finally {
  if (browser) await browser.close().catch(() => {});
  server.close();
  clearTimeout(timer);
}
let failed = 0;
let passed = 0;
for (const [name, why] of results) {
  if (name.startsWith('#')) { console.log(`${name}: ${why}`); continue; }
  if (why) failed += 1; else passed += 1;
  console.log(why ? `FAILED   ${name}: ${why}` : `ok       ${name}`);
}
if (!passed && !failed) failed = 1;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
