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

  // ---- texts -------------------------------------------------------------
  // Every text the page shows comes from the catalogues (assets/i18n.js,
  // made from the adapter's assets/i18n.json); the instance's lang option
  // picks one, or "auto" the first of the browser's languages that has
  // one, else English. The operator's title and placeholder win.
  var TEXTS = window.switchboardWebchatTexts || {};
  function pickLang(want) {
    if (want !== 'auto' && TEXTS[want]) return want;
    var prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ''];
    for (var i = 0; i < prefs.length; i++) {
      var l = String(prefs[i] || '').toLowerCase();
      if (TEXTS[l]) return l;
      var base = l.split('-')[0];
      if (TEXTS[base]) return base;
    }
    return 'en';
  }
  var LANG = pickLang(body.getAttribute('data-lang') || 'auto');
  var CAT = TEXTS[LANG] || { dir: 'ltr', strings: {} };
  function t(key, n) {
    var s = (CAT.strings && CAT.strings[key]) || (TEXTS.en && TEXTS.en.strings[key]) || key;
    return n === undefined ? s : s.replace('{n}', String(n));
  }
  function applyTexts() {
    var root = document.documentElement;
    root.lang = LANG;
    root.dir = CAT.dir === 'rtl' ? 'rtl' : 'ltr';
    var title = body.getAttribute('data-title') || t('title');
    document.title = title;
    document.getElementById('title').textContent = title;
    document.getElementById('input').placeholder = body.getAttribute('data-placeholder') || t('placeholder');
    Array.prototype.forEach.call(document.querySelectorAll('[data-i18n]'), function (n) {
      n.textContent = t(n.getAttribute('data-i18n'));
    });
    Array.prototype.forEach.call(document.querySelectorAll('[data-i18n-label]'), function (n) {
      n.setAttribute('aria-label', t(n.getAttribute('data-i18n-label')));
    });
  }
  applyTexts();

  // The widget's data-color, passed as ?color=: the accent inside the
  // chat too. Only a plain colour is taken (no url(), no ";"), and only
  // one the browser parses as a colour.
  var COLOR = /^(#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,32}|(rgb|rgba|hsl|hsla)\([0-9.,%\s\/]{1,64}\))$/;
  (function (c) {
    if (c && COLOR.test(c) && window.CSS && CSS.supports && CSS.supports('color', c)) {
      document.documentElement.style.setProperty('--accent', c);
    }
  })(params.get('color') || '');

  // Why a message is late or was not delivered, by the status frame's
  // reason (and the page's own: offline, rate limited).
  var DELAYED = { unreachable: t('delayed_unreachable'), throttled: t('delayed_throttled'), refused: t('delayed_refused') };
  var FAILED = { unreachable: t('failed_unreachable'), throttled: t('failed_throttled'), refused: t('failed_refused') };

  var TYPING_TIMEOUT = 60000; // hide "typing…" if no reply comes
  var RETRY_DELAY = 3000; // first re-send of a message the server could not take
  var RATE_DELAY = 10000; // first re-send after "too many messages"
  var MIN_BACKOFF = 1000;
  var MAX_BACKOFF = 30000;
  var MAX_OUTBOX = 50;
  var ANSWER_TIMEOUT = 15000; // a sent message with no answer is sent again
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
  // The latest delivery status per client message id (status frames),
  // applied whenever its bubble shows up or is confirmed.
  var statuses = {};
  // The outbox is sent one message at a time, in typed order: inFlight
  // is the id sent and not answered yet. A message refused for now
  // (rate limited) holds back those typed after it, so none overtakes it.
  var inFlight = null;
  var inFlightTimer = null;

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
    items.sort(function (a, b) {
      if (typeof a.n === 'number' && typeof b.n === 'number' && a.n !== b.n) return a.n - b.n;
      return (a.ts || '') < (b.ts || '') ? -1 : (a.ts || '') > (b.ts || '') ? 1 : 0;
    });
    while (items.length > MAX_OUTBOX) storage.remove('outbox:' + items.shift().id);
    return items;
  }
  function outboxGet(id) {
    try { return JSON.parse(storage.get('outbox:' + id)); } catch (e) { return null; }
  }
  function outboxPut(item) {
    if (typeof item.n !== 'number') {
      // Typed order, across reloads and tabs: timestamps tie in a burst.
      item.n = (parseInt(storage.get('outbox_n'), 10) || 0) + 1;
      storage.set('outbox_n', String(item.n));
    }
    storage.set('outbox:' + item.id, JSON.stringify(item));
  }
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
    if (from === 'operator') node.appendChild(el('div', 'msg-label', t('operator')));
    var textEl = el('div', 'msg-text');
    if (from !== 'user' && html) renderHTML(textEl, html); else textEl.textContent = text;
    node.appendChild(textEl);
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
    node.classList.remove('pending', 'retrying', 'failed', 'delayed', 'undelivered', 'resending');
    if (cls) node.classList.add(cls);
    var s = node.querySelector('.msg-state');
    if (s) s.textContent = text || '';
    var old = node.querySelector('.msg-retry');
    if (old) old.remove();
    if (cls === 'undelivered') {
      var b = el('button', 'msg-retry', t('retry'));
      b.type = 'button';
      b.addEventListener('click', function () { retryMessage(node); });
      node.querySelector('.msg-meta').appendChild(b);
    }
  }

  // applyStatus shows on node what the server last said of its delivery.
  function applyStatus(node) {
    var id = node && node.getAttribute('data-id');
    var st = id && statuses[id];
    if (!st || node.classList.contains('pending') || node.classList.contains('retrying') || node.classList.contains('resending')) return;
    if (st.state === 'delayed') setState(node, 'delayed', DELAYED[st.reason] || DELAYED.unreachable);
    else if (st.state === 'failed') setState(node, 'undelivered', FAILED[st.reason] || FAILED.unreachable);
    else setState(node, null, '');
  }

  // retryMessage sends an undelivered message again, with the same id
  // and the retry flag: the gateway asks the core to queue it again.
  function retryMessage(node) {
    var id = node.getAttribute('data-id');
    var text = node.querySelector('.msg-text').textContent;
    delete statuses[id];
    repliesAtSend[id] = replies;
    setState(node, 'resending', connected ? t('sending') : t('offline'));
    outboxPut({ id: id, text: text, ts: new Date().toISOString(), retry: true });
    pump();
  }

  // The messages still waiting say whether the page is offline.
  function showWaiting() {
    Array.prototype.forEach.call(els.messages.querySelectorAll('.msg.pending, .msg.resending'), function (n) {
      var s = n.querySelector('.msg-state');
      if (s) s.textContent = connected ? t('sending') : t('offline');
    });
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
    if (!node) return;
    if (node.classList.contains('resending')) {
      // A retry: the message keeps its place in the history.
      setState(node, null, '');
      applyStatus(node);
      return;
    }
    if (!(node.classList.contains('pending') || node.classList.contains('retrying'))) return;
    setState(node, null, '');
    placeConfirmed(node);
    applyStatus(node);
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
    var f = { type: 'message', id: item.id, text: item.text };
    if (item.retry) f.retry = true;
    return send(f);
  }

  // pump sends the oldest message of the outbox, unless one is in flight
  // or the oldest waits to be retried: one at a time, in typed order.
  function pump() {
    if (!connected || inFlight) return;
    var items = outboxItems();
    if (!items.length || retryTimers[items[0].id]) return;
    var item = items[0];
    if (!sendItem(item)) return;
    inFlight = item.id;
    clearTimeout(inFlightTimer);
    inFlightTimer = setTimeout(function () { answered(item.id); }, ANSWER_TIMEOUT);
  }

  // answered ends the flight of id (acknowledged, refused, or no answer
  // in time) and sends the next.
  function answered(id) {
    if (inFlight !== id) return;
    inFlight = null;
    clearTimeout(inFlightTimer);
    pump();
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
    inFlight = null;
    showWaiting();
    pump();
  }

  function onMessage(f) {
    if (typeof f.seq !== 'number' || f.seq <= lastSeq) return; // seen already
    setLastSeq(f.seq);
    change(function () {
      if (f.from === 'user') {
        var mine = f.id ? findByID(f.id) : null;
        if (mine) {
          if (!mine.classList.contains('resending')) outboxRemove(f.id);
          confirmBubble(mine);
        } else {
          var n = bubble('user', String(f.text), f.ts, f.id);
          placeConfirmed(n);
          applyStatus(n);
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
        note(operator ? t('now_operator') : t('now_assistant'));
      }
      if (closed && !dialog.closed) {
        note(t('closed'));
        hideTyping();
      }
    });
    dialog = { operator: operator, closed: closed };
  }

  // onStatus shows what became of a message on its way to the assistant:
  // late (and why), not delivered (with a Retry button), or delivered
  // after all. The "typing…" dots stop: nobody is answering it now.
  function onStatus(f) {
    if (typeof f.seq === 'number') {
      if (f.seq <= lastSeq) return;
      setLastSeq(f.seq);
    }
    if (typeof f.id !== 'string' || !f.id) return;
    statuses[f.id] = { state: String(f.state), reason: String(f.reason || '') };
    if (f.state !== 'delivered') {
      hideTyping();
      delete repliesAtSend[f.id];
    }
    var node = findByID(f.id);
    if (node) change(function () { applyStatus(node); });
  }

  function onAck(f) {
    if (typeof f.id !== 'string') return;
    var node = findByID(f.id);
    outboxRemove(f.id);
    answered(f.id);
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
      setStatus(t('too_many_windows'));
      return;
    }
    if (typeof f.id !== 'string' || !f.id) {
      if (window.console) console.warn('chat error:', f.error);
      return;
    }
    var node = findByID(f.id);
    var item = outboxGet(f.id);
    if (f.retry) {
      if (!item) { answered(f.id); return; } // acknowledged meanwhile (through another tab)
      var limited = f.code === 'rate_limited';
      // deliver_failed: the gateway itself could not take the message
      // (its store is failing, or it is stopping); anything else retryable
      // gets the plain text.
      var reason = limited ? t('rate_limited') : f.code === 'deliver_failed' ? t('service_busy') : t('retrying');
      if (!item.retry) setState(node, 'retrying', reason);
      item.tries = (item.tries || 0) + 1;
      outboxPut(item);
      var base = limited ? RATE_DELAY : RETRY_DELAY;
      var delay = Math.min(MAX_BACKOFF, base * Math.pow(2, Math.min(item.tries - 1, 4)));
      if (!retryTimers[f.id]) {
        retryTimers[f.id] = setTimeout(function () {
          delete retryTimers[f.id];
          pump();
        }, delay);
      }
      answered(f.id);
      return;
    }
    outboxRemove(f.id);
    answered(f.id);
    var why = f.code === 'empty' ? t('error_empty') : f.code === 'too_long' ? t('error_too_long') : t('error_other');
    setState(node, 'failed', why);
  }

  function handle(f) {
    if (!f || typeof f !== 'object') return;
    switch (f.type) {
      case 'welcome': onWelcome(f); break;
      case 'message': onMessage(f); break;
      case 'event': onEvent(f); break;
      case 'ack': onAck(f); break;
      case 'error': onError(f); break;
      case 'status': onStatus(f); break;
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
    setStatus(everConnected || attempt > 0 ? t('reconnecting') : t('connecting'));
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
      inFlight = null;
      showWaiting();
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
    if (els.status.textContent !== t('too_many_windows')) setStatus(t('reconnecting'));
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
      els.error.textContent = t('too_long', MAX_BYTES);
      return;
    }
    els.error.textContent = '';
    var item = { id: newID(), text: text, ts: new Date().toISOString() };
    outboxPut(item);
    repliesAtSend[item.id] = replies;
    change(function () {
      var node = bubble('user', text, item.ts, item.id);
      setState(node, 'pending', connected ? t('sending') : t('offline'));
      els.messages.appendChild(node);
    }, true);
    els.input.value = '';
    autoresize();
    pump();
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
    if (item.retry) return; // in the history: the replay shows it
    var node = bubble('user', item.text, item.ts, item.id);
    setState(node, 'pending', t('offline'));
    els.messages.appendChild(node);
  });
  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible') reconnectNow();
  });
  connect();
  scrollDown();
})();
