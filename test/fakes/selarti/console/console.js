// Operator console of the Selarti simulator: lists the dialogs, takes one
// over and answers in it as a human. Everything is built with textContent:
// the transcript is visitors' text.
(function () {
  'use strict';
  var list = document.getElementById('list');
  var lines = document.getElementById('lines');
  var title = document.getElementById('title');
  var state = document.getElementById('state');
  var take = document.getElementById('take');
  var form = document.getElementById('reply');
  var text = document.getElementById('text');
  var status = document.getElementById('status');
  var selected = null, dialogs = [], shown = '';

  var FROM = { user: 'Visitor', bot: 'Assistant', operator: 'Operator' };

  function post(path, body) {
    return fetch('api/' + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body)
    }).then(function (r) {
      if (!r.ok) return r.text().then(function (t) { throw new Error(t || r.status); });
      status.textContent = '';
      return refresh();
    }).catch(function (e) { status.textContent = String(e.message || e); });
  }

  function name(d) { return d.title || ('Visitor ' + d.thread.slice(-6)); }

  function render() {
    list.textContent = '';
    dialogs.forEach(function (d) {
      var li = document.createElement('li');
      li.textContent = name(d);
      if (d.operator && !d.human) {
        var f = document.createElement('div');
        f.className = 'flag';
        f.textContent = 'asks for a human';
        li.appendChild(f);
      }
      if (d.thread === selected) li.className = 'sel';
      li.addEventListener('click', function () { selected = d.thread; shown = ''; render(); });
      list.appendChild(li);
    });
    var d = dialogs.filter(function (x) { return x.thread === selected; })[0];
    if (!d) {
      take.hidden = true;
      form.hidden = true;
      return;
    }
    title.textContent = name(d);
    state.textContent = d.human ? 'You have this conversation' : (d.operator ? 'Waiting for a human' : 'The assistant answers');
    take.hidden = d.human;
    form.hidden = false;
    var key = d.thread + ':' + (d.lines || []).length;
    if (key === shown) return;
    shown = key;
    lines.textContent = '';
    (d.lines || []).forEach(function (l) {
      var p = document.createElement('div');
      p.className = 'line ' + l.from;
      var b = document.createElement('b');
      b.textContent = (FROM[l.from] || l.from) + ':';
      p.appendChild(b);
      p.appendChild(document.createTextNode(' ' + l.text));
      lines.appendChild(p);
    });
    lines.scrollTop = lines.scrollHeight;
  }

  function refresh() {
    return fetch('api/dialogs').then(function (r) { return r.json(); }).then(function (ds) {
      dialogs = ds || [];
      if (!selected && dialogs.length) selected = dialogs[0].thread;
      render();
    }).catch(function (e) { status.textContent = String(e.message || e); });
  }

  take.addEventListener('click', function () { post('takeover', { thread: selected }); });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var t = text.value.trim();
    if (!t || !selected) return;
    text.value = '';
    post('reply', { thread: selected, text: t });
  });
  refresh();
  setInterval(refresh, 1000);
})();
