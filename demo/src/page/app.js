// Sockeye chat: one WebSocket, every state of it on screen.
//
// Reconnects with the policy of sockeye_proto::reconnect_policy (ReconnectPolicy::DEFAULT):
// the ceiling for attempt n is min(30 s, 500 ms × 2^(n-1)); the delay is drawn uniformly
// between 10 ms and the ceiling (full jitter); a connection that stayed open 10 s starts
// the count again; close codes that say this client broke the rules (1002, 1003, 1007,
// 1008, 1009, 1010, 1015, 3000, 3003) are not retried: reconnecting would only repeat it.
// A heartbeat (an application ping every `heartbeat` ms, answered by the server) catches
// a connection that died silently, which a browser's WebSocket cannot see by itself.
'use strict';

const POLICY = { initial: 500, multiplier: 2, cap: 30000, floor: 10, stableAfter: 10000 };
const FATAL = new Set([1002, 1003, 1007, 1008, 1009, 1010, 1015, 3000, 3003]);
const CODES = {
  1000: 'normal closure', 1001: 'going away', 1002: 'protocol error', 1003: 'unsupported data',
  1005: 'no status', 1006: 'abnormal closure', 1007: 'invalid payload', 1008: 'policy violation',
  1009: 'message too big', 1010: 'mandatory extension', 1011: 'internal error',
  1012: 'service restart', 1013: 'try again later', 1014: 'bad gateway', 1015: 'TLS handshake',
  4000: 'heartbeat timeout',
};

const params = new URLSearchParams(location.search);
const HEARTBEAT = Math.max(500, Number(params.get('heartbeat')) || 15000);
const $ = (id) => document.getElementById(id);

// What happened, in order, for whoever drives the page (tests, the console).
const demo = window.sockeyeDemo = {
  state: 'idle', detail: '', events: [], you: null, http: null,
  send: (text) => send({ type: 'say', text }),
  sendRaw: (data) => ws && ws.send(data),
};

let ws = null;          // the current WebSocket, if any
let attempt = 0;        // reconnect attempts in a row
let openedAt = 0;       // when the current connection opened
let retryTimer = 0;
let wanted = false;     // whether the user wants to be connected
let server = null;      // the server instance whose sequence numbers we saw
let lastSeq = 0;
let beatTimer = 0;
let lastHeard = 0;
let pingId = 0;
let countdownFrame = 0;
const users = new Map(); // name -> http

function describe(code, reason) {
  const name = CODES[code] ? ` ${CODES[code]}` : '';
  return `${code}${name}${reason ? ` — ${reason}` : ''}`;
}

function setState(state, detail, extra) {
  demo.state = state;
  demo.detail = detail;
  demo.events.push({ state, detail, at: Date.now(), ...extra });
  $('status').dataset.state = state;
  $('state').textContent = state;
  $('detail').textContent = detail;
  const open = state === 'open';
  $('text').disabled = !open;
  $('send').disabled = !open;
  $('disconnect').disabled = !(open || state === 'connecting' || state === 'reconnecting');
  $('connect').textContent = state === 'reconnecting' ? 'Reconnect now' : (open ? 'Rename' : 'Connect');
  if (state !== 'reconnecting') stopCountdown();
}

function line(kind, text, extra) {
  const log = $('log');
  const li = document.createElement('li');
  li.className = kind + (extra ? ` ${extra}` : '');
  li.textContent = text;
  append(log, li);
  return li;
}

function append(log, li) {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.append(li);
  while (log.children.length > 500) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function hue(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return h % 360;
}

function chat(message) {
  if (message.seq <= lastSeq) return; // already shown (history after a reconnect)
  lastSeq = message.seq;
  const li = document.createElement('li');
  li.className = 'chat' + (message.from === demo.you ? ' mine' : '');
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = new Date(message.at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = message.from;
  from.style.color = `hsl(${hue(message.from)} 60% 38%)`;
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = message.text;
  li.append(time, from, text);
  append($('log'), li);
}

function showUsers() {
  const list = $('users');
  list.replaceChildren();
  for (const name of [...users.keys()].sort()) {
    const li = document.createElement('li');
    li.textContent = name + (name === demo.you ? ' (you)' : '');
    const via = document.createElement('span');
    via.className = 'via';
    via.textContent = users.get(name) || '';
    li.append(via);
    list.append(li);
  }
  $('count').textContent = users.size ? `(${users.size})` : '';
}

function send(message) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(message));
  return true;
}

function wsUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const name = $('name').value.trim();
  return `${scheme}//${location.host}/ws${name ? `?name=${encodeURIComponent(name)}` : ''}`;
}

function connect() {
  clearTimeout(retryTimer);
  wanted = true;
  if (ws) detach(ws).close(1000, 'reconnecting');
  const url = wsUrl();
  $('url').textContent = url;
  $('attempt').textContent = attempt ? `${attempt} (reconnect)` : '1st connect';
  setState('connecting', attempt ? `reconnect attempt ${attempt}` : url);
  const socket = ws = new WebSocket(url);
  socket.onopen = () => {
    openedAt = Date.now();
    lastHeard = openedAt;
    $('compression').textContent = socket.extensions || 'none';
    setState('open', `connected to ${location.host}`);
    heartbeat();
  };
  socket.onmessage = (e) => {
    lastHeard = Date.now();
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    receive(m);
  };
  socket.onclose = (e) => closed(e.code, e.reason, e.wasClean);
  socket.onerror = () => {}; // onclose follows, with the code
}

function detach(socket) {
  socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
  return socket;
}

function receive(m) {
  switch (m.type) {
    case 'welcome': {
      demo.you = m.you;
      demo.http = m.http;
      if (server !== m.server) {
        if (server !== null) line('system', 'the server restarted: a new room');
        server = m.server;
        lastSeq = 0;
      }
      $('name').value = m.you;
      $('http').textContent = `${m.http}${m.http === 'HTTP/2' ? ' (RFC 8441 extended CONNECT)' : ' (Upgrade: websocket)'}`;
      $('compression').textContent = ws.extensions || (m.compression ? 'permessage-deflate' : 'none');
      $('text').maxLength = m.max_text;
      users.clear();
      for (const u of m.users) users.set(u.name, u.http);
      showUsers();
      line('system', `open: you are ${m.you}, over ${m.http}${m.compression ? ', compressed (permessage-deflate)' : ''}`, 'good');
      for (const c of m.history) chat(c);
      demo.events.push({ state: 'welcome', you: m.you, http: m.http, at: Date.now() });
      break;
    }
    case 'chat': chat(m); break;
    case 'join':
      users.set(m.name, m.http); showUsers();
      line('system', `${m.name} joined (${m.http})`);
      break;
    case 'leave':
      users.delete(m.name); showUsers();
      line('system', `${m.name} ${m.why}`);
      break;
    case 'info': line('info', m.text); break;
    case 'pong': break;
  }
}

function heartbeat() {
  clearTimeout(beatTimer);
  $('heartbeat').textContent = `every ${HEARTBEAT} ms`;
  beatTimer = setTimeout(() => {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const sent = Date.now();
    send({ type: 'ping', id: ++pingId });
    beatTimer = setTimeout(() => {
      if (lastHeard >= sent) { heartbeat(); return; }
      // Nothing for a whole heartbeat: the connection is gone without a word. Closing
      // it would wait for a Close that never comes, so drop it and carry on at once.
      const socket = ws;
      detach(socket).close(4000, 'heartbeat timeout');
      closed(4000, `no answer to a heartbeat in ${HEARTBEAT} ms`, false);
    }, HEARTBEAT);
  }, HEARTBEAT);
}

function closed(code, reason, wasClean) {
  clearTimeout(beatTimer);
  const was = ws;
  ws = null;
  users.clear();
  showUsers();
  const what = describe(code, reason);
  const extra = { code, reason, wasClean };
  line('system', `closed: ${what}${wasClean ? '' : ' (not clean)'}`, 'bad');
  if (!wanted) {
    setState('closed', `closed ${what}`, extra);
    return;
  }
  if (FATAL.has(code)) {
    wanted = false;
    setState('closed', `closed ${what}; not reconnecting (press Connect)`, extra);
    return;
  }
  // A connection that stayed up long enough starts the count again.
  if (was && openedAt && Date.now() - openedAt >= POLICY.stableAfter) attempt = 0;
  openedAt = 0;
  attempt += 1;
  const ceiling = Math.min(POLICY.cap, POLICY.initial * POLICY.multiplier ** (attempt - 1));
  const floor = Math.min(POLICY.floor, ceiling);
  const delay = Math.round(floor + Math.random() * (ceiling - floor));
  const detail = `reconnecting in ${delay} ms (attempt ${attempt}) after ${what}`;
  setState('reconnecting', detail, { ...extra, delay, attempt });
  line('system', detail);
  countdown(delay);
  retryTimer = setTimeout(connect, delay);
}

function countdown(delay) {
  stopCountdown();
  const bar = $('countdown-bar');
  const end = performance.now() + delay;
  $('countdown').hidden = false;
  const tick = () => {
    const left = Math.max(0, end - performance.now());
    bar.style.transform = `scaleX(${delay ? left / delay : 0})`;
    if (left > 0) countdownFrame = requestAnimationFrame(tick);
  };
  tick();
}

function stopCountdown() {
  cancelAnimationFrame(countdownFrame);
  $('countdown').hidden = true;
}

$('say').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('text');
  const text = input.value.trim();
  if (text && send({ type: 'say', text })) input.value = '';
  input.focus();
});

$('who').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('name').value.trim();
  if (name) localStorage.setItem('sockeye-demo-name', name);
  attempt = 0;
  connect();
});

$('disconnect').addEventListener('click', () => {
  wanted = false;
  clearTimeout(retryTimer);
  if (ws) ws.close(1000, 'bye');
  else setState('closed', 'disconnected');
});

$('name').value = params.get('name') || localStorage.getItem('sockeye-demo-name') || '';
$('heartbeat').textContent = `every ${HEARTBEAT} ms`;
connect();
