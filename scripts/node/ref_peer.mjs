// Reference peers with permessage-deflate on, from the Node `ws` library (installed by
// scripts/test.sh into target/node from scripts/node/package-lock.json). They stand in
// for Sockeye's examples to check the test harness itself and to time Autobahn's
// compression cases against a fast known-good peer:
//
//   node scripts/node/ref_peer.mjs serve [ADDR]              echo server like
//        examples/echo_server: prints `listening on HOST:PORT`, echoes every message,
//        accepts permessage-deflate (threshold 0: every message compressed)
//   node scripts/node/ref_peer.mjs autobahn-client URL AGENT  the Autobahn client loop
//        like examples/autobahn_client, offering permessage-deflate
//
// Loopback only; the server runs until killed, the client until its loop ends.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(path.join(process.env.SOCKEYE_NODE_MODULES || path.join(root, 'target/node/node_modules'), 'x.js'));
const { WebSocket, WebSocketServer } = require('ws');

const deflate = { threshold: 0 };
const [mode, a1, a2] = process.argv.slice(2);

if (mode === 'serve') {
  const [host, port] = (a1 || '127.0.0.1:9001').split(':');
  const wss = new WebSocketServer({ host, port: Number(port), perMessageDeflate: deflate, maxPayload: 256 << 20 });
  wss.on('listening', () => console.log(`listening on ${host}:${wss.address().port}`));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
} else if (mode === 'autobahn-client' && a1 && a2) {
  const url = a1.replace(/\/+$/, '');
  const run = (u, onMessage) => new Promise((resolve) => {
    const ws = new WebSocket(u, { perMessageDeflate: deflate, maxPayload: 256 << 20 });
    ws.on('message', (data, isBinary) => onMessage(ws, data, isBinary));
    ws.on('error', () => {});
    ws.on('close', () => resolve());
  });
  let count = 0;
  await run(`${url}/getCaseCount`, (_ws, data) => { count = Number(data.toString()); });
  console.log(`${count} cases`);
  for (let i = 1; i <= count; i++) {
    await run(`${url}/runCase?case=${i}&agent=${a2}`, (ws, data, isBinary) => ws.send(data, { binary: isBinary }));
  }
  await run(`${url}/updateReports?agent=${a2}`, () => {});
  console.log('reports updated');
} else {
  console.error('usage: ref_peer.mjs serve [ADDR] | autobahn-client URL AGENT');
  process.exit(2);
}
