// The commission's desk: renders what the JSON API returns (docs/desk.md). No external source:
// Leaflet draws the line, nodes and incidents on a plain background (no tiles); uPlot draws
// the node plots. Text from the API is set with textContent only.
"use strict";

const STATE_COLOURS = {online: "#12b76a", late: "#f79009", offline: "#d92d20", tampered: "#7a5af8",
  degraded: "#dc6803", asleep: "#2e90fa", dead: "#98a2b3", unknown: "#98a2b3"};
const CLASS_COLOURS = {explosion: "#d92d20", small_arms: "#f79009", drone: "#2e90fa", vehicle: "#667085",
  tamper: "#7a5af8", unknown: "#1d2330"};
const SIDE_FILLS = {L: "#b2ddff", R: "#fedf89"};   // left / right of the line as drawn; undecided: white
const CLASSES = ["unknown", "explosion", "small_arms", "drone", "vehicle", "tamper"];
const desk = {session: null, line: null, nodes: [], incidents: [], route: "", filters: {}, map: null,
  layers: null, fitted: false, pending: {}, refreshing: 0};

// ---- small helpers ----------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function utc(us) {
  if (!us) return "-";
  return new Date(us / 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function utcMicro(us) {
  if (!us) return "-";
  const s = new Date(Math.floor(us / 1000)).toISOString().replace("T", " ").slice(0, 19);
  return s + "." + String(us % 1000000).padStart(6, "0") + "Z";
}

function ago(us) {
  if (!us) return "never";
  const s = Math.max(0, Date.now() / 1000 - us / 1e6);
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
}

function nodeName(id) { return "0x" + id.toString(16).padStart(4, "0"); }

async function api(path, options) {
  const opts = Object.assign({credentials: "same-origin", headers: {}}, options || {});
  if (desk.refreshing) opts.headers["X-Desk-Refresh"] = "1";   // not the operator's doing: keeps no session alive
  if (opts.body !== undefined) {
    opts.method = opts.method || "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(opts.body);
    if (desk.session && desk.session.csrf) opts.headers["X-CSRF-Token"] = desk.session.csrf;
  }
  const response = await fetch(path, opts);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/login" && desk.session && desk.session.operator) checkSession();
    const error = new Error((body && body.error) || response.status + " " + response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function show(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
}

function problem(err) { return el("p", {class: "error", text: err.message}); }

// ---- session ----------------------------------------------------------------------------

async function loadSession() {
  desk.session = await api("/api/session");
  const who = document.getElementById("who");
  if (desk.session.operator) {
    who.replaceChildren("operator ", el("b", {text: desk.session.operator}),
      el("button", {id: "logout", onclick: logout, text: "log out"}));
  } else {
    who.replaceChildren(desk.session.observers ? "observer (read only) " : "",
      el("a", {href: "#/login", id: "login-link", text: "log in"}));
  }
}

function canRead() { return desk.session && (desk.session.operator || desk.session.observers); }
function canAct() { return desk.session && desk.session.operator; }

function loginView() {
  const error = el("p", {class: "error"});
  const name = el("input", {id: "login-name", autocomplete: "username", required: true});
  const password = el("input", {id: "login-password", type: "password", autocomplete: "current-password",
    required: true});
  const form = el("form", {class: "card login", id: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api("/api/login", {body: {name: name.value, password: password.value}});
      password.value = "";
      desk.notice = null;
      await loadSession();
      startLive();
      const target = desk.afterLogin || "#/map";
      desk.afterLogin = null;
      if (location.hash === target) await route(); else location.hash = target;
    } catch (err) { error.textContent = err.message; }
  }}, el("h2", {text: "Operator log in"}), el("p", {class: "notice", id: "login-notice", text: desk.notice}),
  el("label", {}, "name", name),
  el("label", {}, "password", password), el("button", {type: "submit", text: "log in"}), error);
  show(form);
}

async function logout() {
  await api("/api/logout", {body: {}});
  await loadSession();
  route();
}

// ---- live updates -----------------------------------------------------------------------

let source = null;
function startLive() {
  if (source || !canRead()) return;
  source = new EventSource("/api/events");
  const live = document.getElementById("live");
  source.addEventListener("hello", () => { live.className = "on"; checkSession(); });
  source.onerror = () => {
    live.className = "off";
    if (source.readyState === EventSource.CLOSED) {   // refused (a 401), not a lost connection
      source = null;
      checkSession();
    }
  };
  source.addEventListener("incident", (e) => later("incidents", refreshIncidents, 400));
  source.addEventListener("health", () => later("nodes", refreshNodes, 400));
  source.addEventListener("tick", () => {
    later("nodes", refreshNodes, 100);
    if (desk.route === "node" && desk.waiting) later("command", refreshNodePage, 100);
  });
  source.addEventListener("command", (e) => later("command", refreshNodePage, 200));
}

// A session ends when it expires or when the desk restarts (sessions are held in memory). The
// page notices when its stream reconnects or a request is refused, says so, asks for a login
// and then goes back to the view the operator was on.
async function checkSession() {
  const was = desk.session && desk.session.operator;
  try { await loadSession(); } catch (e) { setTimeout(checkSession, 5000); return; }
  if (was && !desk.session.operator) {
    desk.notice = "Your session ended (it expired, or the desk was restarted): log in again.";
    if (!canRead()) { await route(); return; }
  }
  if (!source) setTimeout(startLive, 2000);
}

function later(key, fn, ms) {
  // a refresh the live stream asked for, not the operator: its requests say so
  if (desk.pending[key]) return;
  desk.pending[key] = setTimeout(async () => {
    delete desk.pending[key];
    desk.refreshing += 1;
    try { await fn(); } catch (e) {} finally { desk.refreshing -= 1; }
  }, ms);
}

async function refreshIncidents() {
  if (desk.route === "map") await drawMap();
  else if (desk.route === "incidents") await incidentRows();
  else if (desk.route === "incident") await incidentView(desk.routeArg, true, true);
}

async function refreshNodes() {
  if (desk.route === "map") await drawMap();
  else if (desk.route === "nodes") await nodesView();
}

async function refreshNodePage() {
  if (desk.route === "node") await nodeView(desk.routeArg, true);
}

// ---- the map ----------------------------------------------------------------------------

function ensureMap() {
  if (desk.map) return desk.map;
  desk.map = L.map("map", {zoomControl: true, attributionControl: false, preferCanvas: false});
  desk.layers = {base: L.layerGroup().addTo(desk.map), nodes: L.layerGroup().addTo(desk.map),
    incidents: L.layerGroup().addTo(desk.map)};
  return desk.map;
}

function drawLine(map, group, line) {
  group.clearLayers();
  if (line.basemap) L.imageOverlay(line.basemap.url, [[line.basemap.bounds[0], line.basemap.bounds[1]],
    [line.basemap.bounds[2], line.basemap.bounds[3]]]).addTo(group);
  if (line.line.length > 1) {
    L.polyline(line.line, {color: "#1d2330", weight: 5, opacity: 0.35, className: "lw-line"}).addTo(group);
  }
  const hues = ["#155eef", "#c11574", "#088ab2", "#b54708", "#4e5ba6", "#099250"];
  line.segments.forEach((s, i) => {
    if (s.line.length > 1) {
      L.polyline(s.line, {color: hues[i % hues.length], weight: 3, className: "lw-segment"})
        .bindTooltip("segment " + s.segment + " (" + s.nodes.length + " nodes)").addTo(group);
    }
  });
}

function drawNodes(group, nodes, onClick) {
  group.clearLayers();
  for (const n of nodes) {
    const m = L.circleMarker([n.lat, n.lon], {radius: 7, color: "#fff", weight: 2, fillOpacity: 1,
      fillColor: STATE_COLOURS[n.state] || "#98a2b3", className: "lw-node lw-node-" + n.state});
    m.bindTooltip(n.name + ": " + n.state + (n.battery_mv ? ", " + n.battery_mv + " mV" : ""));
    if (onClick) m.on("click", () => onClick(n));
    m.addTo(group);
  }
}

function arrowHead(map, from, to, colour) {
  // a small triangle at `to`, pointing away from `from`, drawn in screen pixels at this zoom
  const a = map.latLngToLayerPoint(from), b = map.latLngToLayerPoint(to);
  const angle = Math.atan2(b.y - a.y, b.x - a.x), size = 12;
  const p = (d, s) => map.layerPointToLatLng(L.point(b.x - size * Math.cos(angle + s * d),
    b.y - size * Math.sin(angle + s * d)));
  return L.polygon([to, p(0.45, 1), p(0.45, -1)], {color: colour, fillOpacity: 1, weight: 1,
    className: "lw-arrow"});
}

function drawIncidents(map, group, incidents) {
  group.clearLayers();
  const byId = {};
  for (const i of incidents) byId[i.id] = i;
  for (const i of incidents) {
    if (i.status === "withdrawn") continue;
    const colour = CLASS_COLOURS[i.class] || "#1d2330";
    if (i.track && i.track.length > 1) {
      const pts = i.track.map((t) => [t[1], t[2]]);
      L.polyline(pts, {color: colour, weight: 3, dashArray: "6 4", className: "lw-track"})
        .bindTooltip(i.id + " drone track").addTo(group);
      arrowHead(map, pts[pts.length - 2], pts[pts.length - 1], colour).addTo(group);
    }
    if (i.lat === null || i.lat === undefined) continue;
    if (i.ellipse_polygon) {
      L.polygon(i.ellipse_polygon, {color: colour, weight: 1, fillOpacity: 0.12, dashArray: "3 3",
        className: "lw-ellipse"}).addTo(group);
    }
    const m = L.circleMarker([i.lat, i.lon], {radius: 6, color: colour, weight: 3,
      fillColor: SIDE_FILLS[i.side] || "#fff", fillOpacity: 1,
      className: "lw-incident lw-incident-" + i.class + " lw-side-" + (i.side || "undecided")});
    m.bindTooltip(i.id + " " + i.class + ", " + i.words.when + "; " + i.words.side);
    m.on("click", () => { location.hash = "#/incident/" + i.id; });
    m.addTo(group);
    const other = i.fix === "mirror" && i.mirror;
    if (other && other.lat !== null && other.lat !== undefined) {
      // one row of nodes heard it: the source is at one of two places, neither claimed (both
      // drawn alike, joined by a dotted line)
      if (i.mirror_polygon) {
        L.polygon(i.mirror_polygon, {color: colour, weight: 1, fillOpacity: 0.12, dashArray: "3 3",
          className: "lw-ellipse lw-mirror-ellipse"}).addTo(group);
      }
      L.polyline([[i.lat, i.lon], [other.lat, other.lon]], {color: colour, weight: 1, dashArray: "1 5",
        className: "lw-mirror-link"}).bindTooltip(i.id + ": one of these two places").addTo(group);
      const o = L.circleMarker([other.lat, other.lon], {radius: 6, color: colour, weight: 3,
        fillColor: SIDE_FILLS[i.side] || "#fff", fillOpacity: 1,
        className: "lw-incident-mirror"});
      o.bindTooltip(i.id + " " + i.class + ", " + i.words.when + "; one of two places; " + i.words.side);
      o.on("click", () => { location.hash = "#/incident/" + i.id; });
      o.addTo(group);
    }
    const impact = i.impact_id && byId[i.impact_id];
    if (impact && impact.lat !== null && impact.lat !== undefined) {
      L.polyline([[i.lat, i.lon], [impact.lat, impact.lon]], {color: "#d92d20", weight: 2,
        className: "lw-launch-impact"}).bindTooltip("launch " + i.id + " -> impact " + impact.id).addTo(group);
      arrowHead(map, [i.lat, i.lon], [impact.lat, impact.lon], "#d92d20").addTo(group);
    }
  }
}

function fit(map, points, pad) {
  // true when the points gave the view; else a world view, so that drawing still works
  if (points.length) { map.fitBounds(L.latLngBounds(points).pad(pad)); return true; }
  map.setView([0, 0], 2);
  return false;
}

async function drawMap() {
  const map = ensureMap();
  const [line, nodes, found] = await Promise.all([desk.line ? desk.line : api("/api/line"),
    api("/api/nodes"), api("/api/incidents?limit=500")]);
  const first = !desk.line;
  desk.line = line; desk.nodes = nodes.nodes; desk.incidents = found.incidents;
  // the view first: an overlay or an arrow head cannot be placed on a map without one
  if (!desk.fitted) desk.fitted = fit(map, desk.nodes.map((n) => [n.lat, n.lon]).concat(line.line), 0.15);
  if (first) drawLine(map, desk.layers.base, line);
  drawNodes(desk.layers.nodes, desk.nodes, (n) => { location.hash = "#/node/" + n.name; });
  drawIncidents(map, desk.layers.incidents, desk.incidents);
  mapSide();
}

function mapSide() {
  const side = document.getElementById("map-side");
  const counts = {};
  for (const n of desk.nodes) counts[n.state] = (counts[n.state] || 0) + 1;
  const legend = el("div", {class: "legend"}, Object.entries(counts).map(([s, c]) => {
    const dot = el("i", {class: "state-" + s});
    return el("div", {}, dot, s + ": " + c);
  }));
  const recent = desk.incidents.filter((i) => i.status !== "withdrawn").slice(0, 30);
  const sides = (desk.session && desk.session.sides) || ["side A", "side B"];
  const classes = el("div", {class: "legend"}, "Incidents: ring = class, fill = side of the line",
    CLASSES.map((c) => el("div", {}, el("i", {class: "ring-" + c}), c)),
    el("div", {}, el("i", {class: "fill-L"}), sides[0]), el("div", {}, el("i", {class: "fill-R"}), sides[1]),
    el("div", {}, el("i", {class: "fill-undecided"}), "side undecided"),
    el("div", {class: "muted", text: "dashed: 95 % ellipse; red arrow: launch -> impact; dashed line: drone track; " +
      "two rings joined by dots: one of two places (heard by one straight row of nodes)"}));
  side.replaceChildren(el("h3", {text: "Nodes"}), legend, classes,
    el("h3", {text: "Latest incidents (" + recent.length + ")"}),
    el("table", {id: "map-incidents"}, recent.map((i) => el("tr", {"data-id": i.id},
      el("td", {}, el("a", {href: "#/incident/" + i.id, text: i.id})),
      el("td", {text: i.words.when.slice(11)}), el("td", {text: i.class}), el("td", {text: i.status})))));
}

// ---- incidents --------------------------------------------------------------------------

function filterForm() {
  const f = desk.filters;
  const input = (name, attrs) => el("label", {}, name, el("input", Object.assign({name: name,
    value: f[name] || ""}, attrs)));
  const select = (name, options) => el("label", {}, name, el("select", {name: name},
    el("option", {value: "", text: "any"}),
    options.map(([v, t]) => el("option", {value: v, text: t, selected: f[name] === v}))));
  const sides = (desk.session && desk.session.sides) || ["side A", "side B"];
  return el("form", {class: "filters", id: "incident-filters", onsubmit: async (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    desk.filters = {};
    for (const [k, v] of data.entries()) if (v) desk.filters[k] = v;
    await incidentRows();
  }},
  input("since", {placeholder: "2026-12-04T08:00Z", size: 18}),
  input("until", {placeholder: "2026-12-04T20:00Z", size: 18}),
  input("segment", {type: "number", min: 0, max: 255, size: 5}),
  select("class", CLASSES.map((c) => [c, c])),
  select("side", [["L", sides[0]], ["R", sides[1]], ["undecided", "undecided"]]),
  select("status", [["new", "new"], ["confirmed", "confirmed"], ["dismissed", "dismissed"],
    ["withdrawn", "withdrawn"]]),
  el("button", {type: "submit", text: "filter"}));
}

async function incidentsView() {
  show(el("h2", {text: "Incidents"}), filterForm(), el("div", {id: "incident-rows"}));
  await incidentRows();
}

async function incidentRows() {
  const box = document.getElementById("incident-rows");
  if (!box) return;
  const query = new URLSearchParams(desk.filters).toString();
  try {
    const found = await api("/api/incidents" + (query ? "?" + query : ""));
    box.replaceChildren(el("p", {class: "muted", id: "incident-count", text: found.count + " incidents"}),
      el("table", {id: "incident-table"}, el("tr", {}, ["id", "time (UTC)", "class", "how placed", "nodes",
        "segments", "side of the line", "status"].map((h) => el("th", {text: h}))),
      found.incidents.map((i) => el("tr", {class: i.status, "data-id": i.id, "data-class": i.class},
        el("td", {}, el("a", {href: "#/incident/" + i.id, text: i.id})), el("td", {text: i.words.when}),
        el("td", {text: i.class}), el("td", {text: i.words.placed}),
        el("td", {text: (i.nodes || []).map(nodeName).join(" ")}), el("td", {text: i.segments.join(" ")}),
        el("td", {text: i.words.side}), el("td", {class: "status", text: i.status})))));
  } catch (err) { box.replaceChildren(problem(err)); }
}

async function incidentView(id, again, keepNote) {
  let i;
  const drawing = desk.incidentDrawing = (desk.incidentDrawing || 0) + 1;
  try { i = await api("/api/incidents/" + encodeURIComponent(id)); } catch (err) { show(problem(err)); return; }
  // a later drawing (a judgement's, after a refresh that read before it) wins: answers can cross
  if (drawing !== desk.incidentDrawing) return;
  // a live refresh redraws the page while the operator may be typing a note: keep it, and the caret
  const typing = keepNote ? document.querySelector("#judge-form[data-incident='" + CSS.escape(i.id) +
    "'] #judge-note") : null;
  const kept = typing ? {value: typing.value, focused: document.activeElement === typing,
    start: typing.selectionStart, end: typing.selectionEnd} : null;
  const facts = el("div", {class: "grid"},
    [["time (UTC)", i.words.when], ["class", i.class], ["how placed", i.words.placed],
      ["side of the line", i.words.side], ["status", i.status], ["shots", i.shots || "-"],
      ["ellipse 95 %", i.ellipse_95 ? i.ellipse_95.major_m.toFixed(0) + " x " + i.ellipse_95.minor_m.toFixed(0) +
        " m at " + i.ellipse_95.angle_deg.toFixed(0) + " deg" : "-"],
      ["version", i.version], ["launch / impact", pairWords(i)]]
      .map(([k, v]) => el("div", {}, el("b", {text: k}), v instanceof Node ? v : String(v))));
  const contributing = el("table", {id: "contributing"}, el("tr", {}, ["node", "arrival (UTC)", "residual",
    "evidence row", "frame (hex)", "verification"].map((h) => el("th", {text: h}))),
  i.contributing.map((r) => el("tr", {},
    el("td", {}, el("a", {href: "#/node/" + nodeName(r.node), text: nodeName(r.node)})),
    el("td", {text: utcMicro(r.arrival_us)}),
    el("td", {text: r.residual_ms === null ? "-" : r.residual_ms.toFixed(2) + " ms"}),
    el("td", {text: "#" + r.evidence_id + " of " + i.chain.rows}),
    el("td", {class: "hex", text: r.hex}),
    el("td", {class: r.check.startsWith("tag verified") ? "good" : "bad", text: r.check}))));
  const rejected = i.rejected.length ? el("p", {}, "Rejected nodes (their arrivals did not fit the fix): ",
    i.rejected.map((r) => el("a", {href: "#/node/" + r.name, text: r.name + " "}))) :
    el("p", {class: "muted", text: "No node was rejected."});
  const judgements = el("table", {id: "judgements"}, el("tr", {}, ["when (UTC)", "who", "from", "to", "note",
    "evidence row"].map((h) => el("th", {text: h}))), i.judgements.map((j) => el("tr", {},
    el("td", {text: utc(j.at_us)}), el("td", {text: j.who}), el("td", {text: j.old}), el("td", {text: j.new}),
    el("td", {text: j.note}), el("td", {text: "#" + j.evidence_id}))));
  const mapBox = el("div", {id: "incident-map"});
  show(el("h2", {text: "Incident " + i.id}), facts, mapBox, el("h3", {text: "Contributing nodes"}), contributing,
    rejected, el("h3", {text: "Judgement"}), judgeForm(i), judgements);
  const note = kept && document.getElementById("judge-note");
  if (note) {
    note.value = kept.value;
    if (kept.focused) { note.focus(); note.setSelectionRange(kept.start, kept.end); }
  }
  const map = L.map(mapBox, {attributionControl: false});
  const base = L.layerGroup().addTo(map);
  const line = desk.line || await api("/api/line");
  desk.line = line;
  const nodes = (await api("/api/nodes")).nodes.filter((n) => (i.nodes || []).includes(n.id) ||
    (i.rejected_nodes || []).includes(n.id));
  fit(map, nodes.map((n) => [n.lat, n.lon]).concat(i.ellipse_polygon || [], i.mirror_polygon || [],
    (i.track || []).map((t) => [t[1], t[2]]), i.lat !== null && i.lat !== undefined ? [[i.lat, i.lon]] : []), 0.3);
  drawLine(map, base, line);
  drawNodes(L.layerGroup().addTo(map), nodes, (n) => { location.hash = "#/node/" + n.name; });
  drawIncidents(map, L.layerGroup().addTo(map), [i]);
}

function pairWords(i) {
  // a launch names its impact, an impact its launch, each a link to the other's page
  const other = i.impact_id || i.launch_id;
  if (!other) return "-";
  return el("span", {id: "pair"}, i.impact_id ? "a launch; its impact " : "an impact, launched at ",
    el("a", {href: "#/incident/" + other, text: other}));
}

function judgeForm(i) {
  if (!canAct()) return el("p", {class: "muted", id: "judge-login"}, "Log in as an operator to confirm or dismiss.");
  if (i.status === "withdrawn") return el("p", {class: "muted", text: "Withdrawn: judge the incidents its reports joined."});
  const note = el("input", {name: "note", id: "judge-note", size: 50, maxlength: 2000,
    placeholder: "why (kept in the evidence log)"});
  const error = el("span", {class: "error"});
  const act = (status) => async (e) => {
    e.preventDefault();
    try {
      await api("/api/incidents/" + encodeURIComponent(i.id) + "/status", {body: {status: status, note: note.value}});
      await incidentView(i.id, true);
    } catch (err) { error.textContent = err.message; }
  };
  return el("form", {class: "act", id: "judge-form", "data-incident": i.id}, el("label", {}, "note", note),
    el("button", {id: "confirm", onclick: act("confirmed"), text: "confirm"}),
    el("button", {id: "dismiss", onclick: act("dismissed"), text: "dismiss"}), error);
}

// ---- nodes ------------------------------------------------------------------------------

async function nodesView() {
  let nodes;
  try { nodes = (await api("/api/nodes")).nodes; } catch (err) { show(problem(err)); return; }
  show(el("h2", {text: "Nodes (" + nodes.length + ")"}), el("table", {id: "node-table"},
    el("tr", {}, ["node", "segment", "health", "last seen", "battery", "temperature", "clock", "queue",
      "firmware"].map((h) => el("th", {text: h}))),
    nodes.map((n) => el("tr", {"data-node": n.name},
      el("td", {}, el("a", {href: "#/node/" + n.name, text: n.name})), el("td", {text: n.segment}),
      el("td", {}, el("span", {class: "state state-" + n.state, text: n.state})),
      el("td", {text: ago(n.last_seen_us)}), el("td", {text: n.battery_mv ? n.battery_mv + " mV" : "-"}),
      el("td", {text: n.temperature_c !== undefined ? n.temperature_c.toFixed(1) + " C" : "-"}),
      el("td", {text: n.clock_source ? n.clock_source + " +-" + (n.clock_error_us / 1000).toFixed(1) + " ms" : "-"}),
      el("td", {text: n.queue_depth !== undefined ? n.queue_depth : "-"}), el("td", {text: n.firmware || "-"})))));
}

function plot(target, title, series, labels, bars) {
  if (!series[0].length) { target.append(el("p", {class: "muted", text: title + ": no data today"})); return; }
  const box = el("div", {class: "plot"});
  target.append(box);
  // in UTC, as every other time on the desk (uPlot would use the browser's zone)
  const opts = {title: title, width: 420, height: 180, scales: {x: {time: true}},
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    series: [{label: "UTC"}].concat(labels.map((l, k) => ({label: l, stroke: ["#155eef", "#d92d20"][k],
      fill: bars ? "#155eef55" : undefined, paths: bars ? uPlot.paths.bars({size: [0.8]}) : undefined})))};
  new uPlot(opts, series, box);
}

async function nodeView(name, again) {
  let d;
  try { d = await api("/api/nodes/" + encodeURIComponent(name)); } catch (err) { show(problem(err)); return; }
  const n = d.node;
  desk.waiting = d.commands.some((c) => c.effect.state === "waiting");
  const facts = el("div", {class: "grid", id: "node-facts"},
    [["health", n.state], ["since", utc(n.state_since_us)], ["last seen", ago(n.last_seen_us)],
      ["segment", n.segment], ["position", n.lat.toFixed(5) + ", " + n.lon.toFixed(5)],
      ["battery", n.battery_mv ? n.battery_mv + " mV" : "-"],
      ["temperature", n.temperature_c !== undefined ? n.temperature_c.toFixed(1) + " C" : "-"],
      ["clock", n.clock_source ? n.clock_source + ", error " + (n.clock_error_us / 1000).toFixed(2) + " ms" : "-"],
      ["queue depth", n.queue_depth !== undefined ? n.queue_depth : "-"], ["firmware build", n.firmware || "-"],
      ["boot", n.boot || "-"], ["radio", n.rssi_dbm ? n.rssi_dbm + " dBm" : "-"],
      ["refused commands", n.refused_commands === undefined || n.refused_commands === null ? "-" : n.refused_commands]]
      .map(([k, v]) => el("div", {}, el("b", {text: k}), String(v))));
  const plots = el("div", {class: "plots"});
  const beats = d.day.heartbeats;
  const history = el("table", {id: "state-history"}, el("tr", {}, ["when (UTC)", "from", "to", "why"]
    .map((h) => el("th", {text: h}))), d.history.map((h) => el("tr", {}, el("td", {text: utc(h.at_us)}),
    el("td", {text: h.old}), el("td", {text: h.new}), el("td", {text: h.why}))));
  const frames = el("table", {id: "recent-frames"}, el("tr", {}, ["received (UTC)", "type", "boot/seq",
    "evidence row", "frame (hex)", "verification"].map((h) => el("th", {text: h}))),
  d.recent_frames.map((f) => el("tr", {}, el("td", {text: utc(f.received_us)}), el("td", {text: f.type}),
    el("td", {text: f.boot + "/" + f.seq}), el("td", {text: "#" + f.evidence_id}),
    el("td", {class: "hex", text: f.hex}),
    el("td", {class: f.check.startsWith("tag verified") ? "good" : "bad", text: f.check}))));
  const cmds = el("table", {id: "commands"}, el("tr", {}, ["given (UTC)", "who", "command", "arguments",
    "the node's answer"].map((h) => el("th", {text: h}))), d.commands.map((c) => el("tr", {"data-state": c.effect.state},
    el("td", {text: utc(c.at_us)}), el("td", {text: c.who}), el("td", {text: c.command}),
    el("td", {text: JSON.stringify(c.args)}),
    el("td", {class: "effect " + c.effect.state, text: c.effect.state + ": " + c.effect.detail +
      (c.effect.at_us ? " (" + utc(c.effect.at_us) + ")" : "")}))));
  show(el("h2", {text: "Node " + n.name}), facts, el("h3", {text: "The last 24 hours"}), plots,
    el("h3", {text: "Commands"}), commandForm(n), cmds, el("h3", {text: "Health history"}), history,
    el("h3", {text: "Recent frames"}), frames);
  plot(plots, "battery (mV)", [beats.map((b) => b[0]), beats.map((b) => b[1])], ["battery mV"]);
  plot(plots, "temperature (C)", [beats.map((b) => b[0]), beats.map((b) => b[2])], ["temperature C"]);
  plot(plots, "frames per hour", [d.day.frames_per_hour.map((h) => h[0]), d.day.frames_per_hour.map((h) => h[1])],
    ["frames"], true);
}

function commandForm(n) {
  if (!canAct()) return el("p", {class: "muted", id: "command-login", text: "Log in as an operator to command this node."});
  const args = el("span", {id: "command-args"});
  const error = el("span", {class: "error", id: "command-error"});
  const name = el("select", {name: "command", id: "command-name", onchange: () => fill()},
    ["rebirth", "set_threshold", "reboot", "resend"].map((c) => el("option", {value: c, text: c})));
  const field = (k, attrs) => el("label", {}, k, el("input", Object.assign({name: k, size: 8}, attrs)));
  function fill() {
    const c = name.value;
    args.replaceChildren(...(c === "set_threshold" ? [el("label", {}, "event_class", el("select", {name: "event_class"},
      CLASSES.slice(1).map((k) => el("option", {value: k, text: k})))), field("threshold", {value: "20"}),
      field("refractory_ms", {value: "0"})] : c === "reboot" ? [field("delay_s", {value: "5"})] :
      c === "resend" ? [field("boot", {value: n.boot || 1}), field("first_seq", {value: 1}), field("last_seq", {value: 1})] : []));
  }
  fill();
  return el("form", {class: "act", id: "command-form", onsubmit: async (e) => {
    e.preventDefault();
    const body = {command: name.value, args: {}};
    for (const input of args.querySelectorAll("input, select")) {
      body.args[input.name] = input.tagName === "SELECT" ? input.value : Number(input.value);
    }
    try {
      await api("/api/nodes/" + n.name + "/commands", {body: body});
      error.textContent = "";
      await nodeView(n.name, true);
    } catch (err) { error.textContent = err.message; }
  }}, el("label", {}, "command", name), args, el("button", {type: "submit", id: "command-send", text: "send"}), error);
}

// ---- routing ----------------------------------------------------------------------------

async function route() {
  const hash = location.hash || "#/map";
  const [, view, arg] = hash.match(/^#\/([a-z]*)\/?(.*)$/) || [null, "map", ""];
  desk.route = view; desk.routeArg = decodeURIComponent(arg || "");
  const mapView = document.getElementById("map-view");
  if (view === "login" || !canRead()) {
    if (view !== "login") desk.afterLogin = hash;
    mapView.hidden = true;
    desk.route = "login";
    loginView();
    return;
  }
  mapView.hidden = view !== "map";
  if (view === "map") { show(); await drawMap(); desk.map.invalidateSize(); return; }
  if (view === "incidents") return incidentsView();
  if (view === "incident") return incidentView(desk.routeArg);
  if (view === "nodes") return nodesView();
  if (view === "node") return nodeView(desk.routeArg);
  show(el("p", {text: "No such view: " + hash}));
}

window.addEventListener("hashchange", () => route().catch((err) => show(problem(err))));
(async () => {
  await loadSession();
  startLive();
  await route();
})().catch((err) => show(problem(err)));
