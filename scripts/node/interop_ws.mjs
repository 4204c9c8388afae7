// permessage-deflate interop with the Node `ws` library (target/node, installed by
// scripts/test.sh from scripts/node/package-lock.json), both directions:
//
//   node scripts/node/interop_ws.mjs clients URL
//       ws clients, one per perMessageDeflate variant (serverMaxWindowBits,
//       clientMaxWindowBits, serverNoContextTakeover, clientNoContextTakeover),
//       against the echo server at URL (Sockeye's examples/echo_server).
//   node scripts/node/interop_ws.mjs servers -- CLIENT_CMD...
//       ws servers, one per variant, each running `CLIENT_CMD ws://127.0.0.1:PORT AGENT`
//       once: an Autobahn-style echo client (Sockeye's examples/autobahn_client) that
//       asks /getCaseCount, echoes /runCase?case=1, then /updateReports.
//
// Each variant checks: permessage-deflate negotiated, the answer honours the offer
// (RFC 7692 section 7); text, binary, empty, 1 MiB and 40 similar small messages
// round-trip byte-exact; the close code comes back (clients). Prints `ok NAME` or
// `FAILED NAME: why`, then `N passed, N failed`; exit 0 when all passed. Every wait is
// bounded; every child is killed by its PID.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(process.env.SOCKEYE_NODE_MODULES || path.join(root, 'target/node/node_modules'), 'x.js'));
const { WebSocket, WebSocketServer } = require('ws');

const LIMIT = 60_000;
const seeded = crypto.createHash('sha256');
const bigBin = Buffer.alloc(1 << 20);
for (let i = 0; i < bigBin.length; i += 32) {
  seeded.update(String(i));
  if (i < bigBin.length / 2) crypto.createHash('sha256').update(String(i)).digest().copy(bigBin, i);
  else bigBin[i] = i % 251;
}
const bigText = 'permessage-deflate ✓ '.repeat(60000).slice(0, 1 << 20);
const similar = Array.from({ length: 40 }, (_, i) => JSON.stringify({ seq: i, symbol: 'SOCK', price: 100 + i, side: 'buy' }));
// [payload, isBinary]
const MESSAGES = [
  ['héllo from node ✓', false], [Buffer.from(Array.from({ length: 768 }, (_, i) => i % 256)), true],
  ['', false], [Buffer.alloc(0), true], [bigBin, true], [bigText, false], ['x'.repeat(300), false],
  ...similar.map((s) => [s, false]),
];

const BITS = [9, 10, 11, 12, 13, 14, 15];
const VARIANTS = [
  ['defaults', {}],
  ...BITS.map((b) => [`serverMaxWindowBits=${b}`, { serverMaxWindowBits: b }]),
  ...BITS.map((b) => [`clientMaxWindowBits=${b}`, { clientMaxWindowBits: b }]),
  ['serverNoContextTakeover', { serverNoContextTakeover: true }],
  ['clientNoContextTakeover', { clientNoContextTakeover: true }],
  ['both NoContextTakeover', { serverNoContextTakeover: true, clientNoContextTakeover: true }],
  ['all options', { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 11 }],
];

function parseExt(header) {
  return (header || '').split(',').map((item) => item.split(';').map((p) => p.trim()).filter(Boolean))
    .filter((parts) => parts.length)
    .map(([name, ...params]) => [name.toLowerCase(), Object.fromEntries(params.map((p) => {
      const [k, v] = p.split('=');
      return [k.trim().toLowerCase(), v === undefined ? null : v.trim().replace(/"/g, '')];
    }))]);
}

// Why the answer does not fit the offer (RFC 7692 section 7) or the server's limits, or null.
function checkAnswer(offer, answer, limits = {}) {
  const ans = parseExt(answer);
  if (!ans.length || ans[0][0] !== 'permessage-deflate') return `permessage-deflate not negotiated (answer ${JSON.stringify(answer)})`;
  if (ans.length !== 1) return `answer has ${ans.length} extensions: ${answer}`;
  const a = ans[0][1];
  const known = ['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'];
  if (Object.keys(a).some((k) => !known.includes(k))) return `unknown parameters in ${answer}`;
  const offers = parseExt(offer).filter(([n]) => n === 'permessage-deflate').map(([, p]) => p);
  if (!offers.length) return `no permessage-deflate in the offer ${offer}`;
  const bits = (v) => Number(v || 15);
  const fits = (o) => !(('server_no_context_takeover' in o && !('server_no_context_takeover' in a))
    || (o.server_max_window_bits && bits(a.server_max_window_bits) > bits(o.server_max_window_bits))
    || ('client_max_window_bits' in a && (!('client_max_window_bits' in o)
      || (o.client_max_window_bits && bits(a.client_max_window_bits) > bits(o.client_max_window_bits)))));
  if (!offers.some(fits)) return `answer ${answer} does not honour the offer ${offer}`;
  if (limits.serverNoContextTakeover && !('server_no_context_takeover' in a)) return `server_no_context_takeover missing from ${answer}`;
  if (limits.serverMaxWindowBits && bits(a.server_max_window_bits) > limits.serverMaxWindowBits) return `server_max_window_bits above ${limits.serverMaxWindowBits} in ${answer}`;
  return null;
}

const withTimeout = (p, what) => Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), LIMIT).unref())]);

// Sends every message and checks its echo; resolves null or why it failed.
function exchange(ws) {
  return new Promise((resolve) => {
    let i = 0;
    const next = () => {
      if (i === MESSAGES.length) return resolve(null);
      const [m, bin] = MESSAGES[i];
      ws.send(m, { binary: bin });
    };
    ws.on('message', (data, isBinary) => {
      const [m, bin] = MESSAGES[i];
      const want = bin ? m : Buffer.from(m, 'utf8');
      if (isBinary !== bin || !Buffer.from(data).equals(want)) {
        return resolve(`message ${i} (${want.length} bytes, binary=${bin}) came back as ${data.length} bytes, binary=${isBinary}`);
      }
      i += 1;
      next();
    });
    ws.on('close', () => resolve(`closed after ${i} of ${MESSAGES.length} messages`));
    next();
  });
}

async function runClient(url, name, opts) {
  const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0, ...opts }, maxPayload: 256 << 20 });
  let offer = null;
  let answer = null;
  ws.on('upgrade', (res) => { answer = res.headers['sec-websocket-extensions'] || null; offer = ws._req ? ws._req.getHeader('sec-websocket-extensions') : null; }); // ws._req: still set during 'upgrade' (ws 8, pinned)
  ws.on('error', () => {});
  try {
    await withTimeout(new Promise((res, rej) => { ws.once('open', res); ws.once('error', rej); ws.once('unexpected-response', (_r, resp) => rej(new Error(`HTTP ${resp.statusCode}`))); }), 'open');
    let why = checkAnswer(offer, answer) || await withTimeout(exchange(ws), 'echoes');
    const closed = new Promise((res) => ws.once('close', (code) => res(code)));
    ws.close(4000, 'bye');
    const code = await withTimeout(closed, 'close');
    if (!why && code !== 4000) why = `the close code came back as ${code}`;
    return [name, why, answer];
  } catch (e) {
    ws.terminate();
    return [name, String(e.message || e), null];
  }
}

async function runServer(cmd, name, opts) {
  const state = { why: 'the client never ran the case', answer: null };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0, ...opts }, maxPayload: 256 << 20 });
  await new Promise((res) => wss.once('listening', res));
  const answers = new Map();
  wss.on('headers', (headers, req) => { answers.set(req, headers.find((h) => /^sec-websocket-extensions:/i.test(h)) || null); });
  wss.on('connection', async (ws, req) => {
    ws.on('error', () => {});
    if (req.url.startsWith('/getCaseCount')) ws.send('1');
    else if (req.url.startsWith('/runCase')) {
      const answer = (answers.get(req) || '').replace(/^sec-websocket-extensions:\s*/i, '') || null;
      state.answer = answer;
      state.why = checkAnswer(req.headers['sec-websocket-extensions'], answer, opts) || await withTimeout(exchange(ws), 'echoes').catch((e) => e.message);
    }
    ws.close(1000);
  });
  const port = wss.address().port;
  const child = spawn(cmd[0], [...cmd.slice(1), `ws://127.0.0.1:${port}`, 'interop'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  const code = await withTimeout(new Promise((res) => child.on('exit', (c) => res(c))), 'client exit').catch(() => { child.kill('SIGKILL'); return 'timeout'; });
  for (const c of wss.clients) c.terminate();
  await new Promise((res) => wss.close(res));
  let why = state.why;
  if (!why && code !== 0) why = `the client exited ${code}: ${out.slice(-300)}`;
  return [name, why, state.answer];
}

const [mode, ...rest] = process.argv.slice(2);
let results;
if (mode === 'clients' && rest.length === 1) {
  results = [];
  for (const [name, opts] of VARIANTS) results.push(await runClient(rest[0], name, opts));
} else if (mode === 'servers' && rest[0] === '--' && rest.length > 1) {
  results = [];
  for (const [name, opts] of VARIANTS) results.push(await runServer(rest.slice(1), name, opts));
} else {
  console.error('usage: interop_ws.mjs clients URL | servers -- CLIENT_CMD...');
  process.exit(2);
}
for (const [name, why, answer] of results) console.log(why ? `FAILED   ${name}: ${why}` : `ok       ${name}  [${answer}]`);
const failed = results.filter(([, why]) => why).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
