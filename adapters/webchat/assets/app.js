// Switchboard webchat page. Plain JavaScript, no build step, no
// dependencies; the WebSocket protocol is described in the adapter's
// README.md.
//
// Safety: every message is put into the page as text nodes and elements
// built with createElement/textContent, never through innerHTML, so a
// message can never inject HTML or script. The assistant's formatting
// comes from the server as HTML, which is parsed inertly and rebuilt from
// an allowlist (see copySafe); links only for http, https and mailto.
(function () {
  'use strict';

  var body = document.body;
  var PATH = body.getAttribute('data-path') || '/';
  var WELCOME = body.getAttribute('data-welcome') || '';
  var WELCOME_HTML = body.getAttribute('data-welcome-html') || '';
  var MAX_BYTES = parseInt(body.getAttribute('data-max-bytes'), 10) || 4000;
  var params = new URLSearchParams(location.search);
  var EMBED = params.get('embed') === '1';
  var NAME = (params.get('name') || '').slice(0, 64);

  var TYPING_TIMEOUT = 60000; // hide "typing…" if no reply comes
  var RETRY_DELAY = 3000; // first re-send of a message the server could not take
  var RATE_DELAY = 10000; // first re-send after "too many messages"
  var MIN_BACKOFF = 1000;
  var MAX_BACKOFF = 30000;
  var MAX_OUTBOX = 50;
  var CLOSE_EVENT = 'switchboard-webchat:close';
  var OPEN_EVENT = 'switchboard-webchat:open';

  var els = {
    messages: document.getElementById('messages'),
    scroller: document.getElementById('scroller'),
    typing: document.getElementById('typing'),
    input: document.getElementById('input'),
    send: document.getElementById('send'),
    form: document.getElementById('composer'),
    status: document.getElementById('status'),
    error: document.getElementById('composer-error'),
    close: document.getElementById('close')
  };

  // ---- storage -----------------------------------------------------------
  // localStorage may be unavailable (privacy modes, blocked third-party
  // storage in an iframe); the chat then works for the life of the page.
  var PREFIX = 'switchboard-webchat:' + PATH + ':';
  var memory = {};
  var storage = {
    get: function (key) {
      try { return window.localStorage.getItem(PREFIX + key); } catch (e) {
        return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null;
      }
    },
    set: function (key, value) {
      try { window.localStorage.setItem(PREFIX + key, value); } catch (e) { memory[key] = value; }
    },
    remove: function (key) {
      try { window.localStorage.removeItem(PREFIX + key); } catch (e) { delete memory[key]; }
    },
    keys: function (sub) {
      var out = [];
      try {
        for (var i = 0; i < window.localStorage.length; i++) {
          var k = window.localStorage.key(i);
          if (k && k.indexOf(PREFIX + sub) === 0) out.push(k.slice(PREFIX.length));
        }
      } catch (e) {
        for (var m in memory) if (m.indexOf(sub) === 0) out.push(m);
      }
      return out;
    }
  };

  // ---- state -------------------------------------------------------------
  var session = storage.get('session') || '';
  // lastSeq starts at 0 on every page load: the server keeps the history
  // and replays it. Reconnects within the page send the real value, so
  // only missed entries come back.
  var lastSeq = 0;
  var epoch = ''; // the server's incarnation of the session; see onWelcome
  var ws = null;
  var connected = false;
  var everConnected = false;
  var attempt = 0;
  var reconnectTimer = null;
  var retryTimers = {};
  var dialog = { operator: false, closed: false };
  var typingTimer = null;
  var replies = 0; // bot/operator messages seen, to place "typing…" right
  var repliesAtSend = {};

  // The outbox holds messages not yet acknowledged, one key per message so
  // that tabs of the same session never overwrite each other's.
  function outboxItems() {
    var items = [];
    storage.keys('outbox:').forEach(function (k) {
      try {
        var it = JSON.parse(storage.get(k));
        if (it && typeof it.id === 'string' && typeof it.text === 'string') items.push(it);
      } catch (e) { storage.remove(k); }
    });
    items.sort(function (a, b) { return (a.ts || '') < (b.ts || '') ? -1 : 1; });
    while (items.length > MAX_OUTBOX) storage.remove('outbox:' + items.shift().id);
    return items;
  }
  function outboxGet(id) {
    try { return JSON.parse(storage.get('outbox:' + id)); } catch (e) { return null; }
  }
  function outboxPut(item) { storage.set('outbox:' + item.id, JSON.stringify(item)); }
  function outboxRemove(id) {
    storage.remove('outbox:' + id);
    if (retryTimers[id]) { clearTimeout(retryTimers[id]); delete retryTimers[id]; }
  }

  function setLastSeq(seq) {
    lastSeq = seq;
    storage.set('last_seq', String(seq));
  }

  // ---- DOM helpers -------------------------------------------------------
  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }

  function nearBottom() {
    var s = els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }
  function scrollDown() { els.scroller.scrollTop = els.scroller.scrollHeight; }

  // change runs fn and keeps the view pinned to the bottom if it was there.
  function change(fn, force) {
    var stick = force || nearBottom();
    fn();
    if (stick) scrollDown();
  }

  function formatTime(ts) {
    var d = ts ? new Date(ts) : new Date();
    if (isNaN(d.getTime())) d = new Date();
    try { return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }); } catch (e) { return ''; }
  }

  // ---- the assistant's formatting -----------------------------------------
  // The server renders the assistant's Markdown once, for every network
  // alike (kit/richtext), into a handful of HTML elements: the message
  // frame's "html". It is parsed here into an inert document (DOMParser
  // runs no script and loads nothing) and rebuilt element by element from
  // an allowlist, so that even a bug on the server could not put a script,
  // a handler, a style or a foreign element into the page.
  function safeURL(raw) {
    var u;
    try { u = new URL(raw); } catch (e) { return null; }
    if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'mailto:') return null;
    return u.href;
  }

  var ALLOWED = { STRONG: 1, EM: 1, S: 1, CODE: 1, PRE: 1, A: 1, BLOCKQUOTE: 1, BR: 1 };
  var LANGUAGE = /^language-[A-Za-z0-9][A-Za-z0-9_+#.-]{0,31}$/;

  // copySafe appends to into what from holds, keeping only allowed
  // elements (with their allowed attributes) and the text of the rest.
  function copySafe(into, from) {
    for (var n = from.firstChild; n; n = n.nextSibling) {
      if (n.nodeType === 3) {
        into.appendChild(document.createTextNode(n.nodeValue));
        continue;
      }
      if (n.nodeType !== 1) continue;
      if (!ALLOWED[n.tagName]) {
        copySafe(into, n);
        continue;
      }
      var e = document.createElement(n.tagName.toLowerCase());
      if (n.tagName === 'A') {
        var href = safeURL(n.getAttribute('href'));
        if (!href) {
          copySafe(into, n);
          continue;
        }
        e.href = href;
        e.target = '_blank';
        e.rel = 'noopener noreferrer nofollow';
      } else if (n.tagName === 'CODE' && LANGUAGE.test(n.getAttribute('class') || '')) {
        e.className = n.getAttribute('class');
      }
      copySafe(e, n);
      into.appendChild(e);
    }
  }

  function renderHTML(container, html) {
    copySafe(container, new DOMParser().parseFromString(String(html), 'text/html').body);
  }

  // ---- bubbles -----------------------------------------------------------
  // bubble makes a message's bubble: the user's own text as typed, the
  // assistant's and operator's from the server's html when there is one.
  function bubble(from, text, ts, id, html) {
    var node = el('div', 'msg msg-' + from);
    if (id) node.setAttribute('data-id', id);
    if (from === 'operator') node.appendChild(el('div', 'msg-label', 'Operator'));
    var t = el('div', 'msg-text');
    if (from !== 'user' && html) renderHTML(t, html); else t.textContent = text;
    node.appendChild(t);
    var meta = el('div', 'msg-meta');
    var time = el('time', 'msg-time', formatTime(ts));
    if (ts) time.setAttribute('datetime', ts);
    meta.appendChild(time);
    meta.appendChild(el('span', 'msg-state'));
    node.appendChild(meta);
    return node;
  }

  function setState(node, cls, text) {
    if (!node) return;
    node.classList.remove('pending', 'retrying', 'failed');
    if (cls) node.classList.add(cls);
    var s = node.querySelector('.msg-state');
    if (s) s.textContent = text || '';
  }

  function findByID(id) {
    var kids = els.messages.children;
    for (var i = 0; i < kids.length; i++) {
      if (kids[i].getAttribute('data-id') === id) return kids[i];
    }
    return null;
  }

  // Confirmed entries go before the first message still waiting to be
  // sent, which stay at the bottom until the server takes them.
  function placeConfirmed(node) {
    var waiting = els.messages.querySelector('.msg.pending, .msg.retrying');
    if (waiting && waiting !== node) els.messages.insertBefore(node, waiting);
    else if (!waiting) els.messages.appendChild(node);
  }

  function confirmBubble(node) {
    if (!node || !(node.classList.contains('pending') || node.classList.contains('retrying'))) return;
    setState(node, null, '');
    placeConfirmed(node);
  }

  function note(text) {
    var n = el('div', 'msg msg-system');
    n.appendChild(el('div', 'msg-text', text));
    placeConfirmed(n);
  }

  function showTyping() {
    els.typing.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT);
  }
  function hideTyping() {
    clearTimeout(typingTimer);
    els.typing.hidden = true;
  }

  function setStatus(text) {
    els.status.textContent = text;
    body.classList.toggle('offline', !!text);
  }

  // ---- protocol ----------------------------------------------------------
  function send(frame) {
    if (!ws || !connected) return false;
    try { ws.send(JSON.stringify(frame)); return true; } catch (e) { return false; }
  }

  function sendItem(item) {
    send({ type: 'message', id: item.id, text: item.text });
  }

  function onWelcome(f) {
    if (typeof f.session === 'string' && f.session) {
      session = f.session;
      storage.set('session', session);
    }
    // A server that never issued the seqs we have seen restarted (or
    // forgot the session): it replays everything it has, and we start
    // counting again. It decides the same way from our hello.
    if ((epoch && f.epoch !== epoch) || (typeof f.last_seq === 'number' && f.last_seq < lastSeq)) lastSeq = 0;
    epoch = typeof f.epoch === 'string' ? f.epoch : '';
    connected = true;
    everConnected = true;
    attempt = 0;
    setStatus('');
    outboxItems().forEach(sendItem);
  }

  function onMessage(f) {
    if (typeof f.seq !== 'number' || f.seq <= lastSeq) return; // seen already
    setLastSeq(f.seq);
    change(function () {
      if (f.from === 'user') {
        var mine = f.id ? findByID(f.id) : null;
        if (mine) {
          outboxRemove(f.id);
          confirmBubble(mine);
        } else {
          placeConfirmed(bubble('user', String(f.text), f.ts, f.id));
        }
        return;
      }
      replies++;
      hideTyping();
      placeConfirmed(bubble(f.from === 'operator' ? 'operator' : 'bot', String(f.text), f.ts, null, f.html));
    });
  }

  function onEvent(f) {
    if (typeof f.seq === 'number') {
      if (f.seq <= lastSeq) return;
      setLastSeq(f.seq);
    }
    var operator = !!f.operator;
    var closed = !!f.closed;
    change(function () {
      if (operator !== dialog.operator) {
        note(operator ? 'You are now chatting with a human operator' : 'You are now chatting with the assistant');
      }
      if (closed && !dialog.closed) {
        note('This conversation was closed');
        hideTyping();
      }
    });
    dialog = { operator: operator, closed: closed };
  }

  function onAck(f) {
    if (typeof f.id !== 'string') return;
    var node = findByID(f.id);
    outboxRemove(f.id);
    change(function () {
      confirmBubble(node);
      // "typing…" only for a message sent from this page, and only if no
      // reply has come since it was sent.
      if (Object.prototype.hasOwnProperty.call(repliesAtSend, f.id)) {
        if (repliesAtSend[f.id] === replies && !dialog.closed) showTyping();
        delete repliesAtSend[f.id];
      }
    });
  }

  function onError(f) {
    if (f.code === 'too_many_connections') {
      setStatus('This chat is open in too many windows.');
      return;
    }
    if (typeof f.id !== 'string' || !f.id) {
      if (window.console) console.warn('chat error:', f.error);
      return;
    }
    var node = findByID(f.id);
    var item = outboxGet(f.id);
    if (f.retry) {
      if (!item) return; // acknowledged meanwhile (through another tab)
      setState(node, 'retrying', 'Not sent yet, retrying…');
      item.tries = (item.tries || 0) + 1;
      outboxPut(item);
      var base = f.code === 'rate_limited' ? RATE_DELAY : RETRY_DELAY;
      var delay = Math.min(MAX_BACKOFF, base * Math.pow(2, Math.min(item.tries - 1, 4)));
      if (!retryTimers[f.id]) {
        retryTimers[f.id] = setTimeout(function () {
          delete retryTimers[f.id];
          var again = outboxGet(f.id);
          if (again) sendItem(again);
        }, delay);
      }
      return;
    }
    outboxRemove(f.id);
    setState(node, 'failed', 'Not sent: ' + String(f.error || 'error'));
  }

  function handle(f) {
    if (!f || typeof f !== 'object') return;
    switch (f.type) {
      case 'welcome': onWelcome(f); break;
      case 'message': onMessage(f); break;
      case 'event': onEvent(f); break;
      case 'ack': onAck(f); break;
      case 'error': onError(f); break;
    }
  }

  // ---- connection --------------------------------------------------------
  function wsURL() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + PATH + 'ws';
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (ws) return;
    setStatus(everConnected || attempt > 0 ? 'Reconnecting…' : 'Connecting…');
    var sock;
    try { sock = new WebSocket(wsURL()); } catch (e) { scheduleReconnect(0); return; }
    ws = sock;
    sock.onopen = function () {
      if (sock !== ws) return;
      sock.send(JSON.stringify({ type: 'hello', session: session, last_seq: lastSeq, epoch: epoch, name: NAME }));
    };
    sock.onmessage = function (e) {
      if (sock !== ws) return;
      var f;
      try { f = JSON.parse(e.data); } catch (err) { return; }
      handle(f);
    };
    sock.onclose = function (e) {
      if (sock !== ws) return;
      ws = null;
      connected = false;
      scheduleReconnect(e.code);
    };
  }

  // Exponential backoff with jitter, 1s up to 30s; a server that refused
  // us on policy grounds gets the long wait straight away.
  function scheduleReconnect(code) {
    attempt++;
    var base = Math.min(MAX_BACKOFF, MIN_BACKOFF * Math.pow(2, attempt - 1));
    if (code === 1008) base = MAX_BACKOFF;
    var delay = base / 2 + Math.random() * base / 2;
    if (els.status.textContent !== 'This chat is open in too many windows.') setStatus('Reconnecting…');
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (ws) return;
    attempt = 0;
    connect();
  }

  // ---- composer ----------------------------------------------------------
  function utf8Length(s) {
    if (window.TextEncoder) return new TextEncoder().encode(s).length;
    return unescape(encodeURIComponent(s)).length;
  }

  function newID() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return window.crypto.randomUUID();
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  function autoresize() {
    els.input.style.height = 'auto';
    els.input.style.height = Math.min(els.input.scrollHeight, 200) + 'px';
  }

  function submit() {
    var text = els.input.value.replace(/^\s+|\s+$/g, '');
    if (!text) return;
    if (utf8Length(text) > MAX_BYTES) {
      els.error.textContent = 'This message is too long (at most ' + MAX_BYTES + ' bytes).';
      return;
    }
    els.error.textContent = '';
    var item = { id: newID(), text: text, ts: new Date().toISOString() };
    outboxPut(item);
    repliesAtSend[item.id] = replies;
    change(function () {
      var node = bubble('user', text, item.ts, item.id);
      setState(node, 'pending', 'Sending…');
      els.messages.appendChild(node);
    }, true);
    els.input.value = '';
    autoresize();
    sendItem(item);
  }

  els.form.addEventListener('submit', function (e) {
    e.preventDefault();
    submit();
    els.input.focus();
  });
  els.input.addEventListener('keydown', function (e) {
    // Enter sends, Shift+Enter is a new line; Enter that confirms an IME
    // composition (229) is not a send.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  // Some input paths (synthesized key events, some IMEs) deliver the
  // Enter character separately from the keydown; keep it out of the box.
  els.input.addEventListener('keypress', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) e.preventDefault();
  });
  els.input.addEventListener('input', function () {
    autoresize();
    if (els.error.textContent) els.error.textContent = '';
  });

  // ---- embedding ---------------------------------------------------------
  if (EMBED) {
    body.classList.add('embedded');
    els.close.hidden = false;
    els.close.addEventListener('click', function () {
      // The message carries nothing secret; the widget checks its origin.
      window.parent.postMessage({ type: CLOSE_EVENT }, '*');
    });
    window.addEventListener('message', function (e) {
      if (e.source === window.parent && e.data && e.data.type === OPEN_EVENT) els.input.focus();
    });
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') window.parent.postMessage({ type: CLOSE_EVENT }, '*');
    });
  }

  // ---- start -------------------------------------------------------------
  if (WELCOME) {
    var w = bubble('bot', WELCOME, null, null, WELCOME_HTML);
    w.classList.add('msg-welcome');
    w.querySelector('.msg-meta').remove();
    els.messages.appendChild(w);
  }
  // Messages typed before a reload and never acknowledged: show them as
  // waiting; they are re-sent (same id, the gateway dedupes) once connected.
  outboxItems().forEach(function (item) {
    var node = bubble('user', item.text, item.ts, item.id);
    setState(node, 'pending', 'Sending…');
    els.messages.appendChild(node);
  });
  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') reconnectNow();
  });
  connect();
  scrollDown();
})();
