// ocpoll console: the few live parts. Every page works without this script; it adds the resource checkboxes
// ⇄ event.poller.configuration sync, the interval slider, the live events table, chart, polls and change feed,
// copy buttons, and clickable rows.
"use strict";
(function () {
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var csrf = $('meta[name="csrf-token"]');

  // The OAuth callback's page shows the new instance: give it the instance's address (and drop the code).
  var canonical = $('meta[name="ocpoll-canonical"]');
  if (canonical && window.history && history.replaceState) history.replaceState(null, "", canonical.content);

  // Resources ⇄ the event.poller.configuration code view.
  var code = $("#poller-configuration");
  var status = $("#poller-status");
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="resource"][data-poller]'));
  function read() {
    var text = code.value.trim();
    if (text === "") return {};
    try {
      var v = JSON.parse(text);
      if (v && typeof v === "object" && !Array.isArray(v)) return v;
    } catch (e) { /* said below */ }
    return null;
  }
  function say(text) { if (status) status.textContent = text; }
  if (code) {
    boxes.forEach(function (box) {
      box.addEventListener("change", function () {
        var v = read();
        if (v === null) {
          box.checked = !box.checked;
          say("The JSON below cannot be read; fix it first, then tick the resource again.");
          return;
        }
        if (box.checked) v[box.value] = JSON.parse(box.getAttribute("data-poller"));
        else delete v[box.value];
        code.value = JSON.stringify(v, null, 2);
        say(box.checked ? box.value + " added." : box.value + " removed.");
      });
    });
    code.addEventListener("input", function () {
      var v = read();
      if (v === null) { say("Not valid JSON yet."); return; }
      say("");
      boxes.forEach(function (box) { box.checked = Object.prototype.hasOwnProperty.call(v, box.value); });
    });
  }

  // The interval: number and slider move together.
  var minutes = $("#interval"), slider = $("#interval-range");
  if (minutes && slider) {
    slider.addEventListener("input", function () { minutes.value = slider.value; });
    minutes.addEventListener("input", function () {
      var m = parseFloat(minutes.value);
      if (!isNaN(m)) slider.value = Math.max(1, Math.min(60, Math.round(m)));
    });
  }

  // Rows open their event (the date cell's link does the same for the keyboard).
  document.addEventListener("click", function (e) {
    var row = e.target.closest && e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a, button, input")) window.location = row.getAttribute("data-href");
  });

  function get(url, etag, done) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", url);
    if (csrf) xhr.setRequestHeader("x-csrf-token", csrf.content);
    if (etag) xhr.setRequestHeader("If-None-Match", etag);
    xhr.onload = function () {
      if (xhr.status === 200) done(xhr.responseText, xhr.getResponseHeader("ETag"));
      else if (xhr.status === 401) window.location = "/ui/sign-in";
    };
    xhr.send();
  }

  // The events table: the newest page, every 2 s; new rows on top, statuses updated in place.
  var table = $("#events[data-live]");
  if (table) {
    var body = table.tBodies[0], total = $("#events-total"), tag = null, limit = 50;
    var cell = function (row, text, cls) {
      var td = row.insertCell(-1);
      if (cls) td.className = cls;
      td.textContent = text;
      return td;
    };
    var refresh = function () {
      get(table.getAttribute("data-live"), tag, function (text, etag) {
        tag = etag;
        var page = JSON.parse(text);
        if (total) total.textContent = page.total;
        var top = body.rows.length ? parseInt(body.rows[0].getAttribute("data-seq"), 10) : -1;
        var fresh = page.events.filter(function (e) { return e.seq > top; });
        for (var i = fresh.length - 1; i >= 0; i--) {
          var e = fresh[i], row = body.insertRow(0);
          row.setAttribute("data-seq", e.seq);
          row.setAttribute("data-href", e.href);
          row.className = "fresh";
          var link = document.createElement("a"), when = document.createElement("time");
          link.href = e.href;
          when.dateTime = e.date;
          when.textContent = e.dateText;
          link.appendChild(when);
          row.insertCell(-1).appendChild(link);
          cell(row, e.type);
          cell(row, e.resource);
          var id = document.createElement("code");
          id.textContent = e.objectId;
          row.insertCell(-1).appendChild(id);
          cell(row, e.status, "status").setAttribute("data-status", e.status);
        }
        while (body.rows.length > limit) body.deleteRow(-1);
        page.events.forEach(function (e) {
          var row = body.querySelector('tr[data-seq="' + e.seq + '"]');
          var st = row && row.querySelector("td.status");
          if (st && st.textContent !== e.status) { st.textContent = e.status; st.setAttribute("data-status", e.status); }
        });
      });
    };
    setInterval(refresh, 2000);
  }

  // The chart of the last hour: drawn now when the page came without it, then every 10 s.
  var chart = $("#chart[data-src]");
  if (chart) {
    var chartTag = null;
    var draw = function () {
      get(chart.getAttribute("data-src"), chartTag, function (svg, etag) {
        chartTag = etag;
        var doc = new DOMParser().parseFromString(svg, "image/svg+xml");
        var fresh = doc.documentElement, old = chart.querySelector("svg, .placeholder");
        if (!fresh || fresh.nodeName !== "svg" || !old) return;
        old.replaceWith(document.importNode(fresh, true));
        var desc = fresh.querySelector("desc"), summary = $("#chart-summary");
        if (desc && summary) summary.textContent = desc.textContent;
      });
    };
    if (chart.querySelector(".placeholder")) draw();
    setInterval(draw, 10000);
  }

  // Sections drawn again by the server (polls, the change feed): their markup every 5 s, swapped in when it
  // changed; open <details> stay open and the focus stays where it was.
  Array.prototype.forEach.call(document.querySelectorAll("[data-refresh]"), function (el) {
    var etag = null;
    setInterval(function () {
      if (document.hidden) return;
      get(el.getAttribute("data-refresh"), etag, function (html, tag) {
        etag = tag;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
        if (!fresh) return;
        var open = Array.prototype.map.call(el.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        var a = document.activeElement, host = el !== a && el.contains(a) && a.closest("[id]");
        el.replaceChildren.apply(el, Array.prototype.slice.call(fresh.childNodes));
        open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
        var h = host && document.getElementById(host.id), t = h && (host === a ? h : h.querySelector(a.tagName));
        if (t) t.focus();
        copyButtons(el);
      });
    }, 5000);
  });

  // Copy buttons (shown only with the script): the text of the field they name.
  function copyButtons(root) {
    Array.prototype.forEach.call(root.querySelectorAll("button[data-copy]"), function (b) {
      b.hidden = false;
      b.onclick = function () {
        var f = document.getElementById(b.getAttribute("data-copy"));
        f.select();
        var done = function () { b.textContent = "Copied"; };
        if (navigator.clipboard) navigator.clipboard.writeText(f.value).then(done, function () {});
        else if (document.execCommand("copy")) done();
      };
    });
  }
  copyButtons(document);
})();
