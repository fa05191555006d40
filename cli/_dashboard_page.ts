/**
 * The dashboard's page: one HTML document with its style and script inline, and uPlot (served
 * by the dashboard from the installed package) for the chart. It asks only its own server.
 *
 * @module
 */

const STYLE = `
:root {
  --bg: #f5f6f8; --card: #fff; --ink: #1d2330; --muted: #6a7385; --line: #e1e4ea;
  --accent: #2f6fde; --danger: #c8372d; --free: #e6e9ef;
  --string: #2f6fde; --bytes: #e08a1e; --number: #2aa876; --json: #d04f8a; --cbor: #8e5bd8; --other: #7d8597;
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: #1d2330;
  color: #fff; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; letter-spacing: .02em; }
header h1 span { color: #8fb3ff; font-weight: 400; }
header label { color: #c5cad6; font-size: 13px; display: flex; align-items: center; gap: 6px; }
header select, header input { font: inherit; padding: 4px 8px; border-radius: 6px;
  border: 1px solid #46506a; background: #2a3246; color: #fff; }
header .spacer { flex: 1; }
#live { font-size: 12px; color: #c5cad6; }
#live::before { content: ""; display: inline-block; width: 8px; height: 8px; border-radius: 50%;
  background: #888; margin-right: 6px; vertical-align: 1px; }
#live.on::before { background: #3ddc84; }
main { padding: 16px 20px 40px; display: grid; gap: 16px; max-width: 1400px; margin: 0 auto; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted);
  margin: 0 0 10px; font-weight: 600; display: flex; align-items: center; gap: 10px; }
.card h2 .grow { flex: 1; }
#figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.figure { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; }
.figure .label { font-size: 12px; color: var(--muted); }
.figure .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.figure.wide { grid-column: span 2; }
.usage { position: relative; height: 8px; background: var(--free); border-radius: 4px; margin-top: 6px; }
.usage .used { position: absolute; inset: 0 auto 0 0; background: var(--accent); border-radius: 4px; }
.usage .mark { position: absolute; top: -3px; bottom: -3px; width: 2px; background: var(--danger); }
.row2 { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; }
@media (max-width: 1000px) { .row2 { grid-template-columns: 1fr; } }
#chart { min-height: 300px; }
#map { width: 100%; height: 180px; display: block; image-rendering: pixelated; border-radius: 4px; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; font-size: 12px; color: var(--muted); margin: 8px 0; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
  vertical-align: -1px; }
.mapfigs { display: flex; gap: 18px; flex-wrap: wrap; font-size: 13px; margin-bottom: 8px; }
.mapfigs b { font-variant-numeric: tabular-nums; }
#histogram .bar { display: grid; grid-template-columns: 150px 1fr 60px; gap: 8px; align-items: center;
  font-size: 12px; font-variant-numeric: tabular-nums; }
#histogram .bar div { height: 10px; background: var(--bytes); border-radius: 2px; min-width: 1px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.name { max-width: 420px; overflow: hidden; text-overflow: ellipsis; font-family: ui-monospace, monospace; }
th { font-size: 12px; color: var(--muted); font-weight: 600; user-select: none; }
th.sortable { cursor: pointer; }
th.sortable:hover { color: var(--ink); }
th.sorted { color: var(--accent); }
td.num, th.num { text-align: right; }
tbody tr { cursor: pointer; }
tbody tr:hover { background: #f0f4fc; }
tbody tr.selected { background: #e4edfd; }
.kind { font-size: 11px; padding: 1px 6px; border-radius: 8px; color: #fff; }
button { font: inherit; padding: 4px 10px; border-radius: 6px; border: 1px solid var(--line);
  background: #fff; cursor: pointer; }
button:disabled { opacity: .45; cursor: not-allowed; }
button.danger { color: var(--danger); border-color: #eab7b2; }
button.danger:not(:disabled):hover { background: #fbeceb; }
input.search { font: inherit; padding: 5px 10px; border: 1px solid var(--line); border-radius: 6px;
  width: 260px; text-transform: none; letter-spacing: 0; }
.pager { display: flex; gap: 8px; align-items: center; margin-top: 10px; color: var(--muted); font-size: 13px; }
#viewer pre { background: #f7f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px;
  max-height: 360px; overflow: auto; margin: 0; white-space: pre-wrap; word-break: break-all;
  font: 12px/1.45 ui-monospace, monospace; }
#viewer .meta { font-size: 12px; color: var(--muted); margin-bottom: 6px; }
#status { font-size: 13px; color: var(--muted); }
#status:empty { display: none; }
#status.error { color: var(--danger); }
.empty { color: var(--muted); padding: 20px; text-align: center; }
.stores tbody tr { cursor: pointer; }
.stores tbody tr.unusable { cursor: not-allowed; color: var(--muted); }
`;

const SCRIPT = `
"use strict";
var KINDS = ["string", "bytes", "number", "json", "cbor", "other"];
var COLORS = {};
var css = getComputedStyle(document.documentElement);
KINDS.concat(["free"]).forEach(function (k) { COLORS[k] = css.getPropertyValue("--" + k).trim(); });
var SORTS = ["name", "size", "created", "written", "expires", "version"];
var state = {
  store: null, token: "", prefix: "", sort: "version", order: "asc", offset: 0, limit: 25,
  events: null, last: null, lastChange: null, listing: false, listAgain: false, selected: null,
  listAt: 0, listTook: 0, stale: false,
  mapAt: 0, chart: null, points: [[], [], [], [], []],
};
var $ = function (id) { return document.getElementById(id); };

function el(tag, attrs, children) {
  var node = document.createElement(tag);
  for (var key in attrs || {}) {
    if (key === "text") node.textContent = attrs[key];
    else if (key === "class") node.className = attrs[key];
    else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), attrs[key]);
    else node.setAttribute(key, attrs[key]);
  }
  (children || []).forEach(function (child) { node.appendChild(child); });
  return node;
}
function bytes(n) {
  if (n < 1024) return n + " B";
  var units = ["KiB", "MiB", "GiB", "TiB"], i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)) + " " + units[i];
}
function count(n) { return Number(n).toLocaleString("en-US"); }
function percent(f) { return f === null || !isFinite(f) ? "–" : (f * 100).toFixed(1) + " %"; }
function time(ms) {
  if (ms === null || ms === undefined) return "never";
  var d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19);
}
function clock(seconds) {
  return new Date(seconds * 1000).toISOString().slice(11, 19);
}
function status(text, error) {
  var node = $("status");
  node.textContent = text || "";
  node.className = error ? "error" : "";
}
function api(path, options) {
  return fetch(path, options).then(function (response) {
    return response.json().then(function (body) {
      if (!response.ok) throw new Error(body.error || ("HTTP " + response.status));
      return body;
    });
  });
}
function q(params) {
  var search = new URLSearchParams();
  for (var key in params) search.set(key, String(params[key]));
  return search.toString();
}

// The token: from the link's #fragment (never sent to the server), or typed in.
(function () {
  var fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) state.token = fragment.get("token");
  if (fragment.get("store")) state.store = fragment.get("store");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  $("token").value = state.token;
  $("token").addEventListener("input", function () { state.token = $("token").value.trim(); guard(); });
})();

function guard() {
  var ok = state.token.length > 0 && state.store !== null;
  document.querySelectorAll("button.needs-token").forEach(function (b) {
    b.disabled = !ok;
    b.title = ok ? "" : "Enter the token memalloc dashboard printed to enable this";
  });
}

function mutate(action, body) {
  return api("api/" + action, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer " + state.token },
    body: JSON.stringify(Object.assign({ store: state.store }, body || {})),
  });
}

// ---- stores
function loadStores() {
  return api("api/stores").then(function (answer) {
    var select = $("store");
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: "— pick a store —" }));
    answer.stores.forEach(function (s) {
      var option = el("option", { value: s.name, text: s.name + (s.error ? " (cannot open)" : "") });
      if (s.error) option.disabled = true;
      select.appendChild(option);
    });
    if (state.store === null && answer.selected) state.store = answer.selected;
    select.value = state.store || "";
    var body = $("stores-body");
    body.textContent = "";
    if (answer.stores.length === 0) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "6", class: "empty", text: "No memalloc stores on this machine" })]));
    }
    answer.stores.forEach(function (s) {
      var st = s.stats;
      var attrs = s.error ? { class: "unusable", title: s.error.message } : { onclick: function () { pick(s.name); } };
      body.appendChild(el("tr", attrs, [
        el("td", { class: "name", text: s.name }),
        el("td", { class: "num", text: st ? bytes(st.capacity) : "–" }),
        el("td", { class: "num", text: st ? count(st.entries) : "–" }),
        el("td", { class: "num", text: st ? percent(st.bytesUsed / st.capacity) : "–" }),
        el("td", { text: st ? st.lockKind : "–" }),
        el("td", { text: st ? time(st.createdAt) : (s.error ? s.error.code : "") }),
      ]));
    });
    show();
  });
}
function show() {
  var has = state.store !== null && state.store !== "";
  $("picker").hidden = has;
  $("store-view").hidden = !has;
  guard();
}
function pick(name) {
  state.store = name || null;
  state.offset = 0;
  state.selected = null;
  state.last = null;
  state.points = [[], [], [], [], []];
  if (state.chart) state.chart.setData(state.points);
  $("viewer").hidden = true;
  $("store").value = name || "";
  show();
  if (state.events) state.events.close();
  state.events = null;
  $("live").className = "";
  $("live").textContent = name ? "connecting" : "";
  if (state.store) { connect(); loadMap(); loadEntries(); } else loadStores();
}
$("store").addEventListener("change", function () { pick($("store").value); });

// ---- figures and chart, live
function connect() {
  var source = new EventSource("api/events?" + q({ store: state.store }));
  state.events = source;
  source.onopen = function () { $("live").className = "on"; $("live").textContent = "live"; };
  source.onmessage = function (event) { onStats(JSON.parse(event.data)); };
  source.addEventListener("failure", function (event) {
    status(JSON.parse(event.data).error, true);
    source.close();
  });
  source.onerror = function () { $("live").className = ""; $("live").textContent = "reconnecting"; };
}

function figure(label, value, id, wide) {
  return el("div", { class: "figure" + (wide ? " wide" : "") }, [
    el("div", { class: "label", text: label }),
    el("div", { class: "value", text: value, "data-figure": id }),
  ]);
}

function onStats(sample) {
  var s = sample.stats, prev = state.last;
  var reads = s.hits + s.misses;
  var box = $("figures");
  box.textContent = "";
  var usage = el("div", { class: "figure wide" }, [
    el("div", { class: "label", text: "Used / capacity (watermark " + percent(s.autoclean) + ")" }),
    el("div", { class: "value", "data-figure": "used", text: bytes(s.bytesUsed) + " / " + bytes(s.capacity) }),
    el("div", { class: "usage" }, [
      el("div", { class: "used", style: "width:" + (100 * s.bytesUsed / s.capacity).toFixed(2) + "%" }),
      el("div", { class: "mark", style: "left:" + (100 * s.autoclean).toFixed(2) + "%" }),
    ]),
  ]);
  box.appendChild(figure("Entries", count(s.entries), "entries"));
  box.appendChild(usage);
  box.appendChild(figure("Hits", count(s.hits), "hits"));
  box.appendChild(figure("Misses", count(s.misses), "misses"));
  box.appendChild(figure("Hit ratio", reads ? percent(s.hits / reads) : "–", "hitRatio"));
  box.appendChild(figure("Writes", count(s.writes), "writes"));
  box.appendChild(figure("Deletes", count(s.deletes), "deletes"));
  box.appendChild(figure("Evictions", count(s.evictions), "evictions"));
  box.appendChild(figure("Expirations", count(s.expired), "expired"));
  box.appendChild(figure("Repairs", count(s.repairs), "repairs"));
  box.appendChild(figure("Largest free", bytes(s.largestFree), "largestFree"));
  box.appendChild(figure("Lock", s.lockKind, "lockKind"));
  box.appendChild(figure("Created (UTC)", time(s.createdAt), "createdAt", true));
  // The chart: operations per second from the change in the shared counters.
  if (prev) {
    var dt = (sample.time - prev.time) / 1000;
    if (dt > 0) {
      var p = prev.stats;
      var d = function (k) { return Math.max(0, s[k] - p[k]); };
      var ops = (d("writes") + d("hits") + d("misses") + d("deletes")) / dt;
      var dr = d("hits") + d("misses");
      var pts = state.points;
      pts[0].push(sample.time / 1000);
      pts[1].push(ops);
      pts[2].push(d("writes") / dt);
      pts[3].push(dr > 0 ? 100 * d("hits") / dr : (reads ? 100 * s.hits / reads : null));
      pts[4].push(100 * s.bytesUsed / s.capacity);
      if (pts[0].length > 600) pts.forEach(function (a) { a.shift(); });
      if (state.chart) state.chart.setData(pts);
    }
  }
  state.last = sample;
  var change = [s.writes, s.deletes, s.evictions, s.expired, s.entries].join(",");
  // Refresh the list and the map when the store changed, but leave the server idle at least
  // twice as long as the last page took (a sorted page of a million entries takes a second).
  if (change !== state.lastChange || state.stale) {
    var idle = Date.now() - state.listAt > Math.max(900, 2 * state.listTook);
    if (state.lastChange !== null && idle) loadEntries();
    state.stale = state.lastChange !== null && !idle;
    state.lastChange = change;
    if (Date.now() - state.mapAt > 2000) loadMap();
  }
}

function makeChart() {
  if (typeof uPlot === "undefined") {
    $("chart").textContent = "The chart library could not be loaded.";
    return;
  }
  var width = $("chart").clientWidth || 700;
  state.chart = new uPlot({
    width: width, height: 300,
    scales: {
      x: {
        time: true,
        range: function (u, min, max) {
          // From one to five minutes, as the points so far need.
          var end = typeof max === "number" && isFinite(max) ? max : Date.now() / 1000;
          var span = typeof min === "number" && isFinite(min) ? end - min : 0;
          return [end - Math.min(300, Math.max(60, span)), end];
        },
      },
      ops: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } },
      pct: { range: [0, 100] },
    },
    series: [
      {},
      { label: "ops/s", stroke: "#2f6fde", width: 2, fill: "rgba(47,111,222,.08)", scale: "ops",
        value: function (u, v) { return v === null ? "–" : v.toFixed(v >= 100 ? 0 : 1); } },
      { label: "writes/s", stroke: "#e08a1e", width: 1.5, scale: "ops",
        value: function (u, v) { return v === null ? "–" : v.toFixed(v >= 100 ? 0 : 1); } },
      { label: "hit ratio %", stroke: "#2aa876", width: 1.5, scale: "pct",
        value: function (u, v) { return v === null ? "–" : v.toFixed(1); } },
      { label: "usage %", stroke: "#8e5bd8", width: 1.5, dash: [6, 4], scale: "pct",
        value: function (u, v) { return v === null ? "–" : v.toFixed(1); } },
    ],
    axes: [
      { space: 70, values: function (u, splits) { return splits.map(clock); } },
      { scale: "ops", label: "ops/s", size: 60 },
      { scale: "pct", side: 1, label: "%", grid: { show: false } },
    ],
  }, state.points, $("chart"));
  // Follow the card's width: when the page is resized, and when the store view is first shown.
  new ResizeObserver(function () {
    var width = $("chart").clientWidth;
    if (width > 0) state.chart.setSize({ width: width, height: 300 });
  }).observe($("chart"));
}

// ---- memory map
function loadMap() {
  if (!state.store) return;
  state.mapAt = Date.now();
  var canvas = $("map");
  var cols = 128, rows = 8;
  api("api/map?" + q({ store: state.store, cells: cols * rows })).then(function (map) {
    var ratio = window.devicePixelRatio || 1;
    var w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    var ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    var cw = w / cols, ch = h / rows;
    map.cells.forEach(function (cell, i) {
      var x = (i % cols) * cw, y = Math.floor(i / cols) * ch;
      var total = cell.free + cell.string + cell.bytes + cell.number + (cell.json || 0) + cell.cbor + cell.other;
      ctx.fillStyle = COLORS.free;
      ctx.fillRect(x + 0.5, y + 0.5, cw - 1, ch - 1);
      if (total === 0) return;
      // Used bytes fill the cell from the bottom, by kind.
      var at = y + ch - 0.5;
      KINDS.forEach(function (kind) {
        var part = (ch - 1) * cell[kind] / total;
        if (part <= 0) return;
        ctx.fillStyle = COLORS[kind];
        ctx.fillRect(x + 0.5, at - part, cw - 1, part);
        at -= part;
      });
    });
    $("mapfigs").textContent = "";
    [["Fragmentation", percent(map.fragmentation)], ["Free", bytes(map.freeBytes)],
      ["Largest free block", bytes(map.largestFree)], ["Used blocks", count(map.usedBlocks)],
      ["Free blocks", count(map.freeBlocks)], ["Each cell", bytes(map.cellBytes)]]
      .forEach(function (pair) {
        $("mapfigs").appendChild(el("span", {}, [document.createTextNode(pair[0] + " "),
          el("b", { text: pair[1], "data-figure": "map-" + pair[0] })]));
      });
    var hist = $("histogram");
    hist.textContent = "";
    var most = Math.max.apply(null, map.freeHistogram.map(function (b) { return b.count; }).concat([1]));
    if (map.freeHistogram.length === 0) hist.appendChild(el("div", { class: "empty", text: "No free block" }));
    map.freeHistogram.forEach(function (b) {
      hist.appendChild(el("div", { class: "bar" }, [
        el("span", { text: bytes(b.min) + " – " + bytes(b.max + 1) }),
        el("div", { style: "width:" + Math.max(0.5, 100 * b.count / most).toFixed(1) + "%" }),
        el("span", { class: "num", text: count(b.count) }),
      ]));
    });
  }).catch(function (error) { status("Memory map: " + error.message, true); });
}

// ---- entries
function loadEntries() {
  if (!state.store) return;
  if (state.listing) { state.listAgain = true; return; }
  state.listing = true;
  state.listAt = Date.now();
  var params = { store: state.store, sort: state.sort, order: state.order, offset: state.offset,
    limit: state.limit };
  if (state.prefix) params.prefix = state.prefix;
  api("api/entries?" + q(params)).then(function (page) {
    state.listTook = Date.now() - state.listAt;
    renderEntries(page);
  }).catch(function (error) {
    status("Entries: " + error.message, true);
  }).then(function () {
    state.listing = false;
    if (state.listAgain) { state.listAgain = false; loadEntries(); }
  });
}

function renderEntries(page) {
  var head = $("entries-head");
  head.textContent = "";
  var columns = [["name", "Name"], ["kind", "Kind"], ["size", "Size", true], ["created", "Created"],
    ["written", "Written"], ["expires", "Expires"], ["version", "Version", true], ["", ""]];
  var tr = el("tr");
  columns.forEach(function (c) {
    var sortable = SORTS.indexOf(c[0]) >= 0;
    var cls = (sortable ? "sortable" : "") + (state.sort === c[0] ? " sorted" : "") + (c[2] ? " num" : "");
    var arrow = state.sort === c[0] ? (state.order === "asc" ? " ▲" : " ▼") : "";
    tr.appendChild(el("th", { class: cls, "data-sort": c[0], text: c[1] + arrow, onclick: sortable ? function () {
      if (state.sort === c[0]) state.order = state.order === "asc" ? "desc" : "asc";
      else { state.sort = c[0]; state.order = c[0] === "name" || c[0] === "expires" ? "asc" : "desc"; }
      state.offset = 0;
      loadEntries();
    } : null }));
  });
  head.appendChild(tr);
  var body = $("entries-body");
  body.textContent = "";
  if (page.entries.length === 0) {
    body.appendChild(el("tr", {}, [el("td", { colspan: "8", class: "empty",
      text: state.prefix ? "No entry starts with \\u201c" + state.prefix + "\\u201d" : "No entries" })]));
  }
  page.entries.forEach(function (e) {
    var del = el("button", { class: "danger needs-token", "data-delete": e.name, text: "Delete",
      onclick: function (event) {
        event.stopPropagation();
        mutate("delete", { name: e.name }).then(function (r) {
          status(r.deleted ? "Deleted \\u201c" + e.name + "\\u201d" : "\\u201c" + e.name + "\\u201d was already gone");
          loadEntries();
        }).catch(function (error) { status(error.message, true); });
      } });
    var row = el("tr", { "data-name": e.name, class: state.selected === e.name ? "selected" : "",
      onclick: function () { view(e.name); } }, [
      el("td", { class: "name", title: e.name, text: e.name }),
      el("td", {}, [el("span", { class: "kind", style: "background:" + COLORS[e.kind], text: e.kind })]),
      el("td", { class: "num", text: bytes(e.size) }),
      el("td", { text: time(e.created) }),
      el("td", { text: time(e.written) }),
      el("td", { text: time(e.expires) }),
      el("td", { class: "num", text: count(e.version) }),
      el("td", {}, [del]),
    ]);
    body.appendChild(row);
  });
  var end = page.offset + page.entries.length;
  $("range").textContent = page.entries.length === 0 ? "" :
    (page.offset + 1).toLocaleString("en-US") + "–" + end.toLocaleString("en-US") +
    (page.total !== null ? " of " + count(page.total) : " of many") +
    " · " + page.tookMs.toFixed(0) + " ms";
  $("prev").disabled = page.offset === 0;
  $("next").disabled = !page.more;
  guard();
}

$("search").addEventListener("input", function () {
  state.prefix = $("search").value;
  state.offset = 0;
  loadEntries();
});
$("prev").addEventListener("click", function () {
  state.offset = Math.max(0, state.offset - state.limit);
  loadEntries();
});
$("next").addEventListener("click", function () { state.offset += state.limit; loadEntries(); });

function view(name) {
  state.selected = name;
  document.querySelectorAll("#entries-body tr").forEach(function (row) {
    row.classList.toggle("selected", row.getAttribute("data-name") === name);
  });
  api("api/value?" + q({ store: state.store, name: name })).then(function (v) {
    $("viewer").hidden = false;
    $("viewer-name").textContent = name;
    $("viewer-meta").textContent = v.kind + " · " + bytes(v.size) + " stored · shown as " + v.encoding +
      (v.truncated ? " · cut at 64 KiB" : "") + " · version " + count(v.version);
    $("viewer-text").textContent = v.text;
  }).catch(function (error) { status("Value: " + error.message, true); });
}
$("viewer-close").addEventListener("click", function () { $("viewer").hidden = true; state.selected = null; });

$("clean").addEventListener("click", function () {
  mutate("clean").then(function (r) { status("clean evicted " + count(r.evicted) + " entries"); loadEntries(); loadMap(); })
    .catch(function (error) { status(error.message, true); });
});
$("purge").addEventListener("click", function () {
  if (!confirm("Remove every entry of \\u201c" + state.store + "\\u201d?")) return;
  mutate("purge").then(function (r) { status("purge removed " + count(r.removed) + " entries"); loadEntries(); loadMap(); })
    .catch(function (error) { status(error.message, true); });
});
$("back").addEventListener("click", function () { pick(null); });

makeChart();
loadStores().then(function () { if (state.store) pick(state.store); })
  .catch(function (error) { status(error.message, true); });
`;

/** The page `memalloc dashboard` serves at `/`. */
export const DASHBOARD_PAGE: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>memalloc dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/uPlot.min.css">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>memalloc <span>dashboard</span></h1>
  <label>Store <select id="store"></select></label>
  <button id="back" type="button">All stores</button>
  <span class="spacer"></span>
  <label>Token <input id="token" type="password" autocomplete="off" placeholder="to delete, clean, purge" size="24"></label>
  <span id="live">connecting</span>
</header>
<main>
  <div id="status"></div>
  <section id="picker" class="card" hidden>
    <h2>Stores on this machine</h2>
    <table class="stores">
      <thead><tr><th>Name</th><th class="num">Size</th><th class="num">Entries</th><th class="num">Usage</th><th>Lock</th><th>Created (UTC)</th></tr></thead>
      <tbody id="stores-body"></tbody>
    </table>
  </section>
  <div id="store-view" hidden>
    <div style="display:grid;gap:16px">
      <section class="card">
        <h2>Figures <span class="grow"></span>
          <button id="clean" class="needs-token" type="button" disabled>Clean</button>
          <button id="purge" class="danger needs-token" type="button" disabled>Purge</button></h2>
        <div id="figures"></div>
      </section>
      <div class="row2">
        <section class="card"><h2>Operations, hit ratio and usage</h2><div id="chart"></div></section>
        <section class="card">
          <h2>Memory map</h2>
          <div class="mapfigs" id="mapfigs"></div>
          <canvas id="map"></canvas>
          <div class="legend">
            <span><i style="background:var(--string)"></i>string</span>
            <span><i style="background:var(--bytes)"></i>bytes</span>
            <span><i style="background:var(--number)"></i>number</span>
            <span><i style="background:var(--json)"></i>json</span>
            <span><i style="background:var(--cbor)"></i>cbor</span>
            <span><i style="background:var(--other)"></i>store's own</span>
            <span><i style="background:var(--free);border:1px solid #ccd"></i>free</span>
          </div>
          <h2 style="margin-top:12px">Free blocks by size</h2>
          <div id="histogram"></div>
        </section>
      </div>
      <section class="card">
        <h2>Entries <span class="grow"></span>
          <input id="search" class="search" type="search" placeholder="Name starts with…" autocomplete="off"></h2>
        <table>
          <thead id="entries-head"></thead>
          <tbody id="entries-body"></tbody>
        </table>
        <div class="pager">
          <button id="prev" type="button" disabled>‹ Previous</button>
          <button id="next" type="button" disabled>Next ›</button>
          <span id="range"></span>
        </div>
      </section>
      <section id="viewer" class="card" hidden>
        <h2>Value of <code id="viewer-name"></code><span class="grow"></span>
          <button id="viewer-close" type="button">Close</button></h2>
        <div class="meta" id="viewer-meta"></div>
        <pre id="viewer-text"></pre>
      </section>
    </div>
  </div>
</main>
<script src="assets/uPlot.iife.min.js"></script>
<script>${SCRIPT}</script>
</body>
</html>
`;
