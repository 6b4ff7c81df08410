// Switchboard webchat widget. A site adds
//
//   <script src="https://gw.example.com/chat/widget.js" async></script>
//
// and gets a floating chat button that opens the chat page in an iframe.
// Optional attributes on the script tag: data-label (button label and
// iframe title), data-color (the button's colour, and the chat's accent
// inside the frame), data-name (the visitor's display name, passed to the
// chat), data-position ("left" or "right").
//
// Its texts are in the instance's language (the lang option; "auto": the
// browser's), from the same catalogues as the page (assets/i18n.json),
// which the gateway writes into this file where the markers are.
//
// It runs on the host site, so it touches nothing but the two elements it
// creates, sets styles through the CSSOM (which host CSPs allow), and only
// listens to messages from its own iframe.
(function () {
  'use strict';

  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll('script[src*="widget.js"]');
    script = all[all.length - 1];
  }
  if (!script || !script.src) return;

  var src = new URL(script.src, location.href);
  var base = src.href.replace(/widget\.js(?:[?#].*)?$/, '');
  var origin = src.origin;
  var flag = 'switchboardWebchat:' + base;
  if (window[flag]) return; // loaded twice
  window[flag] = true;

  var TEXTS = /*@texts@*/null || {};
  var LANG = (function (want) {
    if (want !== 'auto' && TEXTS[want]) return want;
    var prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ''];
    for (var i = 0; i < prefs.length; i++) {
      var l = String(prefs[i] || '').toLowerCase();
      if (TEXTS[l]) return l;
      if (TEXTS[l.split('-')[0]]) return l.split('-')[0];
    }
    return 'en';
  })(/*@lang@*/"auto");
  function t(key) {
    var c = TEXTS[LANG] || TEXTS.en;
    return (c && c.strings[key]) || (TEXTS.en && TEXTS.en.strings[key]) || key;
  }

  var label = script.getAttribute('data-label') || t('widget_label');
  var color = script.getAttribute('data-color') || '#2563eb';
  var name = script.getAttribute('data-name') || '';
  var side = script.getAttribute('data-position') === 'left' ? 'left' : 'right';
  var CLOSE_EVENT = 'switchboard-webchat:close';
  var OPEN_EVENT = 'switchboard-webchat:open';
  var SVG = 'http://www.w3.org/2000/svg';

  var button, frame, open = false, loaded = false;

  function style(node, props) {
    for (var k in props) node.style.setProperty(k, props[k]);
  }

  function icon(paths) {
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '26');
    svg.setAttribute('height', '26');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    paths.forEach(function (d) {
      var p = document.createElementNS(SVG, 'path');
      p.setAttribute('d', d);
      p.setAttribute('fill', 'none');
      p.setAttribute('stroke', 'currentColor');
      p.setAttribute('stroke-width', '2');
      p.setAttribute('stroke-linecap', 'round');
      p.setAttribute('stroke-linejoin', 'round');
      svg.appendChild(p);
    });
    return svg;
  }

  var chatIcon = ['M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.6A8 8 0 1 1 21 12z'];
  var closeIcon = ['M6 6l12 12', 'M18 6L6 18'];

  function setIcon(paths) {
    while (button.firstChild) button.removeChild(button.firstChild);
    button.appendChild(icon(paths));
  }

  function small() {
    return window.matchMedia && window.matchMedia('(max-width: 480px)').matches;
  }

  function layoutFrame() {
    if (!frame) return;
    if (small()) {
      style(frame, {
        top: '0', left: '0', right: '0', bottom: '0',
        width: '100%', height: '100%', 'border-radius': '0'
      });
    } else {
      style(frame, {
        top: 'auto', bottom: '92px', width: '380px',
        height: 'min(620px, calc(100vh - 112px))', 'border-radius': '16px'
      });
      frame.style.setProperty(side, '20px');
      frame.style.setProperty(side === 'left' ? 'right' : 'left', 'auto');
    }
    // On a phone the frame covers the page; the button would sit on top.
    style(button, { display: open && small() ? 'none' : 'inline-flex' });
  }

  function makeFrame() {
    frame = document.createElement('iframe');
    var url = base + '?embed=1' + (name ? '&name=' + encodeURIComponent(name) : '') +
      (script.getAttribute('data-color') ? '&color=' + encodeURIComponent(color) : '');
    frame.src = url;
    frame.title = label;
    frame.setAttribute('allow', 'clipboard-write');
    style(frame, {
      position: 'fixed', border: '0', 'z-index': '2147483000',
      background: '#fff', 'box-shadow': '0 12px 40px rgba(0,0,0,0.22)',
      'color-scheme': 'normal', display: 'none'
    });
    frame.addEventListener('load', function () {
      loaded = true;
      if (open) focusChat();
    });
    document.body.appendChild(frame);
  }

  // focusChat asks the chat page to focus its input; the frame's own
  // document is another origin's, so it cannot be reached directly.
  function focusChat() {
    frame.focus();
    if (loaded) frame.contentWindow.postMessage({ type: OPEN_EVENT }, origin);
  }

  function setOpen(v) {
    open = v;
    if (open && !frame) makeFrame();
    if (frame) {
      style(frame, { display: open ? 'block' : 'none' });
      layoutFrame();
    }
    button.setAttribute('aria-expanded', open ? 'true' : 'false');
    button.setAttribute('aria-label', open ? t('widget_close') : label);
    setIcon(open ? closeIcon : chatIcon);
    if (open) {
      focusChat();
    } else {
      button.focus();
    }
  }

  function init() {
    button = document.createElement('button');
    button.type = 'button';
    button.title = label;
    style(button, {
      position: 'fixed', bottom: '20px', width: '60px', height: '60px',
      'z-index': '2147483001', border: '0', 'border-radius': '50%', padding: '0',
      background: color, color: '#fff', cursor: 'pointer',
      display: 'inline-flex', 'align-items': 'center', 'justify-content': 'center',
      'box-shadow': '0 6px 20px rgba(0,0,0,0.25)'
    });
    button.style.setProperty(side, '20px');
    button.addEventListener('click', function () { setOpen(!open); });
    setIcon(chatIcon);
    button.setAttribute('aria-expanded', 'false');
    button.setAttribute('aria-label', label);
    document.body.appendChild(button);

    window.addEventListener('message', function (e) {
      if (e.origin !== origin || !frame || e.source !== frame.contentWindow) return;
      if (e.data && e.data.type === CLOSE_EVENT) setOpen(false);
    });
    window.addEventListener('resize', layoutFrame);
    document.addEventListener('keydown', function (e) {
      if (open && e.key === 'Escape') setOpen(false);
    });
  }

  if (document.body) init();
  else document.addEventListener('DOMContentLoaded', init);
})();
