// kith: live updates for the page served by your own daemon. The page works without this
// script; with it, new posts, presence and replication progress appear without a reload.
// Everything inserted was rendered (and escaped) by the server; this script only places it.
'use strict';
(function () {
  if (!('EventSource' in window)) return;
  var live = document.getElementById('live');
  function say(text) { if (live) live.textContent = text; }
  function element(html) {
    var t = document.createElement('template');
    t.innerHTML = html;
    return t.content.firstElementChild;
  }
  function each(attr, value, fn) {
    var list = document.querySelectorAll('[' + attr + ']');
    for (var i = 0; i < list.length; i++) {
      if (list[i].getAttribute(attr) === value) fn(list[i]);
    }
  }
  var source = null;
  function connect() {
    source = new EventSource('/events');
    source.addEventListener('post', onPost);
    source.addEventListener('presence', onPresence);
    source.addEventListener('progress', onProgress);
    source.addEventListener('dm', onDm);
    source.addEventListener('connections', onConnections);
  }
  // A page left (or kept in the back-forward cache) gives its stream back: a browser opens
  // only a few connections to one host, and streams kept by old pages would starve new ones.
  window.addEventListener('pagehide', function () { if (source) { source.close(); source = null; } });
  window.addEventListener('pageshow', function () { if (!source) connect(); });
  function onPost(e) {
    var d = JSON.parse(e.data);
    var timeline = document.querySelector('[data-live="timeline"]');
    if (timeline) {
      var old = document.getElementById(d.thread_id);
      if (old) old.parentNode.removeChild(old);
      timeline.insertBefore(element(d.thread), timeline.firstChild);
      say('New post');
    }
    var posts = document.querySelector('[data-live="posts"]');
    if (posts && posts.getAttribute('data-author') === d.author && !document.getElementById(d.post_id)) {
      posts.insertBefore(element(d.post), posts.firstChild);
      say('New post');
    }
  }
  function onPresence(e) {
    var d = JSON.parse(e.data);
    each('data-presence', d.id, function (el) {
      el.classList.toggle('online', d.online);
      var state = el.querySelector('.state');
      if (state) state.textContent = d.online ? 'online' : 'offline';
    });
    each('data-status', d.id, function (el) { el.textContent = d.status || ''; });
  }
  function onProgress(e) {
    var d = JSON.parse(e.data);
    each('data-feed', d.feed, function (el) {
      el.max = Math.max(d.target, 1);
      el.value = d.held;
      el.textContent = d.held + ' of ' + d.target;
    });
    each('data-feed-text', d.feed, function (el) { el.textContent = d.held + ' of ' + d.target; });
  }
  function onDm(e) {
    var d = JSON.parse(e.data);
    var inbox = document.querySelector('[data-live="inbox"]');
    if (inbox) {
      var old = document.getElementById(d.conversation_id);
      if (old) old.parentNode.removeChild(old);
      inbox.insertBefore(element(d.conversation), inbox.firstChild);
      var empty = document.getElementById('inbox-empty');
      if (empty) empty.parentNode.removeChild(empty);
      say('New private message');
    }
    var thread = document.querySelector('[data-live="dm-thread"]');
    if (thread && d.participants.indexOf(thread.getAttribute('data-with')) >= 0 &&
        !document.getElementById(d.message_id)) {
      thread.appendChild(element(d.message));
      say('New private message');
    }
  }
  function onConnections(e) {
    var d = JSON.parse(e.data);
    var list = document.querySelector('[data-live="connections"]');
    if (list) list.parentNode.replaceChild(element(d.html), list);
  }
  connect();
})();
