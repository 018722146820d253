// The web console's behaviour: small progressive enhancements of server-rendered pages, and the live parts.
// Live data comes from the hub's public endpoints: WS /api/v1/stream (device status), WS /ws (messages)
// and the overview's figures. Text from the hub is always set with textContent, never parsed as HTML.
"use strict";

const MAX_MESSAGES = 500;
const FIGURES_EVERY_MS = 2000;
const CHART_POINTS = 90;

function wsUrl(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
}

function orgQuery(separator) {
  // A platform administrator follows the organization shown; everyone else their own.
  const body = document.body.dataset;
  return body.platformAdmin === "true" ? `${separator}organization_id=${encodeURIComponent(body.org)}` : "";
}

// A WebSocket that reconnects with a growing delay, calling onOpen(socket) after each (re)connection.
function persistentSocket(url, onOpen, onMessage, onState = () => {}) {
  let delay = 500;
  function connect() {
    const socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      delay = 500;
      onState("connected");
      onOpen(socket);
    });
    socket.addEventListener("message", (event) => onMessage(event.data, socket));
    socket.addEventListener("close", () => {
      onState("reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    });
  }
  connect();
}

function formatTime(iso) {
  if (!iso) return "never";
  return iso.replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

// --- forms: confirmation, progress, organization switcher, copy buttons --------------------------------

document.addEventListener(
  "submit",
  (event) => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    if (form.hasAttribute("data-busy") && !form.hasAttribute("hx-post")) {
      form.setAttribute("aria-busy", "true");
      // After this tick, so the submission still carries every field.
      setTimeout(() => form.querySelectorAll("button").forEach((button) => (button.disabled = true)), 0);
    }
  },
  true,
);

// An htmx request from a [data-busy] control marks it and its form busy until the answer arrives (slow actions).
function busyElements(event) {
  const control = event.detail.elt.closest && event.detail.elt.closest("[data-busy]");
  return control ? [control, control.closest("form")].filter(Boolean) : [];
}
document.addEventListener("htmx:beforeRequest", (event) =>
  busyElements(event).forEach((element) => element.setAttribute("aria-busy", "true")),
);
document.addEventListener("htmx:afterRequest", (event) =>
  busyElements(event).forEach((element) => element.removeAttribute("aria-busy")),
);

document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch {
    // No clipboard permission: select the text so that the user can copy it.
    const range = document.createRange();
    range.selectNodeContents(source);
    window.getSelection().removeAllRanges();
    window.getSelection().addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
});

// --- the live event stream: one WS /api/v1/stream per page, shared by the parts that follow it ----------

const streamParts = [];

// A part of the page follows `topics` and is handed every event of the stream (it picks its own). When events may
// have been missed (the connection was down, or the hub dropped events the page was too slow to take), the part's
// catchUp() reads again what it shows.
function onStream(topics, handle, catchUp = () => {}) {
  streamParts.push({ topics, handle, catchUp });
}

function followStream() {
  if (streamParts.length === 0) return;
  const topics = [...new Set(streamParts.flatMap((part) => part.topics))];
  persistentSocket(
    wsUrl("/api/v1/stream" + orgQuery("?")),
    (socket) => socket.send(JSON.stringify({ action: "subscribe", topics })),
    (text) => {
      const event = JSON.parse(text);
      // Caught up each time the stream is subscribed (the first time too: the page was served before), so that
      // nothing falls between what is read and what streams in.
      if (event.event === "subscribed" || event.event === "dropped") streamParts.forEach((part) => part.catchUp());
      streamParts.forEach((part) => part.handle(event));
    },
  );
}

// --- device status, live (devices list and device page) ------------------------------------------------

function updateStatus(data) {
  document.querySelectorAll(`tr[data-device-id="${CSS.escape(data.deviceId)}"]`).forEach((row) => {
    const online = row.querySelector('[data-field="online"]');
    if (online) {
      online.textContent = data.online ? "online" : "offline";
      online.className = `badge ${data.online ? "on" : "off"}`;
    }
    const seen = row.querySelector('[data-field="lastSeen"]');
    if (seen) {
      seen.textContent = formatTime(data.lastSeen);
      seen.setAttribute("datetime", data.lastSeen || "");
    }
    for (const field of ["battery", "signal"]) {
      const cell = row.querySelector(`[data-field="${field}"]`);
      if (cell && data[field] !== null && data[field] !== undefined) cell.textContent = String(data[field]);
    }
  });
}

function followStatus() {
  const root = document.querySelector("[data-live-status]");
  if (!root) return;
  const streamed = new Map(); // status events per device so far

  // The statuses of the devices shown, read again: what changed before the stream was subscribed. A device whose
  // status streams in meanwhile keeps the streamed one, which is newer.
  async function readStatuses() {
    const ids = [...root.querySelectorAll("tr[data-device-id]")].map((row) => row.dataset.deviceId);
    if (ids.length === 0) return;
    const before = new Map(ids.map((id) => [id, streamed.get(id) || 0]));
    try {
      const query = new URLSearchParams(ids.map((id) => ["id", id]));
      const response = await fetch(`${root.dataset.liveStatus}?${query}`, { headers: { Accept: "application/json" } });
      if (!response.ok) return; // the next status event or reconnection brings the page up to date
      const { data } = await response.json();
      data.filter((status) => (streamed.get(status.deviceId) || 0) === before.get(status.deviceId)).forEach(updateStatus);
    } catch {
      // as above
    }
  }

  onStream(
    ["devices/+/status"],
    (event) => {
      if (event.event !== "status") return;
      streamed.set(event.data.deviceId, (streamed.get(event.data.deviceId) || 0) + 1);
      updateStatus(event.data);
    },
    readStatuses,
  );
}

// --- overview -------------------------------------------------------------------------------------------

function setFigure(name, value) {
  document.querySelectorAll(`[data-figure="${name}"]`).forEach((element) => (element.textContent = value));
}

// Reads the JSON at url every two seconds and hands it to show; root is marked aria-busy while it fails. The
// function returned reads it at once (an event changed the figures); the next reading follows two seconds later.
function pollFigures(root, url, show) {
  let timer = null;
  let inFlight = null;
  async function poll() {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.redirected) {
        location.reload(); // the session ended: the reload shows the sign-in page
        return;
      }
      if (!response.ok) throw new Error(`${url}: ${response.status}`);
      show(await response.json());
      root.setAttribute("aria-busy", "false");
    } catch {
      root.setAttribute("aria-busy", "true"); // the hub is unreachable or failing: tried again shortly
    }
  }
  function readNow() {
    clearTimeout(timer);
    inFlight =
      inFlight ||
      poll().finally(() => {
        inFlight = null;
        timer = setTimeout(readNow, FIGURES_EVERY_MS);
      });
  }
  readNow();
  return readNow;
}

function fillList(name, items, describe) {
  const list = document.querySelector(`[data-list="${name}"]`);
  const empty = document.querySelector(`[data-empty="${name}"]`);
  list.replaceChildren(
    ...items.map((item) => {
      const entry = document.createElement("li");
      const when = document.createElement("time");
      when.textContent = formatTime(item.at);
      entry.append(when, " ", describe(item));
      return entry;
    }),
  );
  empty.hidden = items.length > 0;
}

function followOverview() {
  const root = document.getElementById("overview");
  if (!root) return;
  const series = [[], [], [], []];
  let previous = null;
  let chart = null;
  const chartBox = document.getElementById("rates-chart");

  function draw() {
    if (!window.uPlot || series[0].length < 2) return;
    const width = Math.max(chartBox.clientWidth - 16, 200);
    if (!chart) {
      chart = new window.uPlot(
        {
          width,
          height: 220,
          series: [
            {},
            { label: "in /s", stroke: "#1f4e79", width: 2 },
            { label: "out /s", stroke: "#2e7d32", width: 2 },
            { label: "ingested /s", stroke: "#b26a00", width: 2 },
          ],
          axes: [{}, { size: 60 }],
        },
        series,
        chartBox,
      );
    } else {
      chart.setSize({ width, height: 220 });
      chart.setData(series);
    }
  }

  const readNow = pollFigures(root, root.dataset.figures, (now) => {
    const hub = now.hub;
    setFigure("clients", String(hub.clients));
    setFigure("online", `${now.organization.online} / ${now.organization.devices}`);
    setFigure("openAlerts", String(now.organization.openAlerts));
    setFigure("ingest", hub.ingest === "up" ? "healthy" : "stalled");
    if (previous) {
      const seconds = Math.max(now.at - previous.at, 0.001);
      const rates = ["received", "sent", "ingested"].map((key) => Math.max(hub[key] - previous.hub[key], 0) / seconds);
      setFigure("rateIn", rates[0].toFixed(1));
      setFigure("rateOut", rates[1].toFixed(1));
      setFigure("rateIngest", rates[2].toFixed(1));
      series[0].push(now.at);
      rates.forEach((rate, index) => series[index + 1].push(rate));
      if (series[0].length > CHART_POINTS) series.forEach((values) => values.shift());
      draw();
    }
    previous = now;
    fillList("alerts", now.alerts, (alert) => `${alert.kind} on ${alert.sensor} = ${alert.value} (device ${alert.deviceId})`);
    fillList("rejected", now.rejected, (row) => `${row.topic}: ${row.field} ${row.reason}`);
  });
  onStream(
    ["devices/+/alerts"],
    (event) => {
      if (event.event === "alert") readNow();
    },
    readNow,
  );
}

// --- live messages --------------------------------------------------------------------------------------

function payloadText(message, pretty) {
  if (message.payload_encoding === "base64") return `(binary, base64) ${message.payload}`;
  if (pretty) {
    try {
      return JSON.stringify(JSON.parse(message.payload), null, 2);
    } catch {
      // not JSON: shown as it is
    }
  }
  return message.payload;
}

function followLive() {
  const root = document.getElementById("live");
  if (!root) return;
  const list = document.getElementById("live-messages");
  const empty = document.getElementById("live-empty");
  const state = document.getElementById("live-state");
  const pauseButton = document.getElementById("live-pause");
  const pretty = document.getElementById("live-pretty");
  const filtersList = document.getElementById("live-filters");
  const filters = new Set();
  let socket = null;
  let paused = false;
  let held = 0;

  function renderFilters() {
    filtersList.replaceChildren(
      ...[...filters].map((filter) => {
        const item = document.createElement("li");
        const name = document.createElement("code");
        name.textContent = filter;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "small";
        remove.textContent = "Unsubscribe";
        remove.setAttribute("aria-label", `Unsubscribe from ${filter}`);
        remove.addEventListener("click", () => {
          filters.delete(filter);
          if (socket) socket.send(JSON.stringify({ action: "unsubscribe", topic: filter }));
          renderFilters();
        });
        item.append(name, " ", remove);
        return item;
      }),
    );
  }

  function show(message) {
    const entry = document.createElement("li");
    const head = document.createElement("div");
    head.className = "meta";
    const topic = document.createElement("code");
    topic.textContent = message.topic;
    head.append(topic, ` QoS ${message.qos}${message.retain ? " retained" : ""} · ${formatTime(message.timestamp)}`);
    const body = document.createElement("pre");
    body.dataset.raw = JSON.stringify(message);
    body.textContent = payloadText(message, pretty.checked);
    entry.append(head, body);
    list.prepend(entry);
    while (list.children.length > MAX_MESSAGES) list.lastElementChild.remove();
    empty.hidden = true;
  }

  persistentSocket(
    wsUrl(root.dataset.ws),
    (opened) => {
      socket = opened;
      filters.forEach((filter) => opened.send(JSON.stringify({ action: "subscribe", topic: filter })));
    },
    (text) => {
      if (text === "pong") return;
      const message = JSON.parse(text);
      if (message.type === "error") {
        state.textContent = `Error: ${message.error}`;
      } else if (message.type === "message" && filters.size > 0) {
        if (paused) {
          held += 1;
          state.textContent = `Paused: ${held} message${held === 1 ? "" : "s"} not shown`;
        } else {
          show(message);
        }
      }
    },
    (connection) => {
      state.textContent = connection === "connected" ? "Connected" : "Disconnected: reconnecting…";
      if (connection !== "connected") socket = null;
    },
  );

  document.getElementById("live-subscribe").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("live-filter");
    const filter = input.value.trim();
    if (!filter || filters.has(filter)) return;
    filters.add(filter);
    if (socket) socket.send(JSON.stringify({ action: "subscribe", topic: filter }));
    renderFilters();
  });
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    held = 0;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    state.textContent = paused ? "Paused" : "Connected";
  });
  document.getElementById("live-clear").addEventListener("click", () => {
    list.replaceChildren();
    empty.hidden = false;
  });
  pretty.addEventListener("change", () => {
    list.querySelectorAll("pre[data-raw]").forEach((body) => {
      body.textContent = payloadText(JSON.parse(body.dataset.raw), pretty.checked);
    });
  });
}

// --- broker figures -------------------------------------------------------------------------------------

function formatDuration(seconds) {
  const total = Math.floor(seconds);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${minutes} min`;
  return `${minutes} min ${total % 60} s`;
}

function followBroker() {
  const root = document.getElementById("broker");
  if (!root) return;
  const counts = {
    clientsConnected: "clients_connected",
    messagesReceived: "messages_received",
    messagesSent: "messages_sent",
    bytesReceived: "bytes_received",
    bytesSent: "bytes_sent",
    retainedMessages: "retained_messages",
    subscriptions: "subscriptions",
  };
  pollFigures(root, root.dataset.brokerFigures, (figures) => {
    setFigure("uptime", formatDuration(figures.uptime));
    for (const [name, key] of Object.entries(counts)) setFigure(name, figures[key].toLocaleString("en"));
  });
}

// --- sensor charts (device page) ------------------------------------------------------------------------

const CHART_HEIGHT = 220;
const THRESHOLD_LINE = { stroke: "#b3261e", width: 1, dash: [6, 4], points: { show: false } };
const BAND_LINE = { stroke: "#9fb3c8", width: 1, points: { show: false } };

function describeBucket(ms) {
  if (ms % 86400000 === 0) return `${ms / 86400000} d`;
  if (ms % 3600000 === 0) return `${ms / 3600000} h`;
  if (ms % 60000 === 0) return `${ms / 60000} min`;
  return `${ms / 1000} s`;
}

// One sensor's chart: its points (times in seconds), and what is drawn beside them (min/max, thresholds). The
// time axis spans the chosen range, given by timeRange() as [start, end] in seconds.
class SensorChart {
  constructor(sensor, list, timeRange) {
    this.sensor = sensor;
    this.timeRange = timeRange;
    this.figure = document.createElement("figure");
    this.figure.className = "sensor-chart";
    this.figure.dataset.sensor = sensor.sensor;
    const caption = document.createElement("figcaption");
    const title = document.createElement("strong");
    title.textContent = sensor.unit ? `${sensor.name} (${sensor.unit})` : sensor.name;
    const limits = [];
    if (sensor.min !== null) limits.push(`min ${sensor.min}`);
    if (sensor.max !== null) limits.push(`max ${sensor.max}`);
    const details = [sensor.name === sensor.sensor ? "" : sensor.sensor, limits.length ? `thresholds ${limits.join(", ")}` : ""];
    if (sensor.bucketMs) details.push(`average, min and max per ${describeBucket(sensor.bucketMs)}`);
    caption.append(title, ...details.filter(Boolean).map((text) => ` · ${text}`));
    this.box = document.createElement("div");
    this.box.className = "plot";
    this.box.setAttribute("role", "img");
    this.box.setAttribute("aria-label", `Chart of ${sensor.name} readings`);
    this.empty = document.createElement("p");
    this.empty.className = "empty";
    this.empty.textContent = `No readings of ${sensor.name} in this range.`;
    this.figure.append(caption, this.box, this.empty);
    list.append(this.figure);
    this.plot = null;
    this.draw();
  }

  // The series uPlot draws, in the order of data(): value, then min/max (buckets), then thresholds.
  series() {
    const sensor = this.sensor;
    const series = [{}, { label: sensor.name, stroke: "#1f4e79", width: 2 }];
    if (sensor.lows) series.push({ label: "min", ...BAND_LINE }, { label: "max", ...BAND_LINE });
    if (sensor.min !== null) series.push({ label: "min threshold", ...THRESHOLD_LINE });
    if (sensor.max !== null) series.push({ label: "max threshold", ...THRESHOLD_LINE });
    return series;
  }

  // The columns uPlot draws. The range's two ends are added as points without readings, so that the thresholds
  // are drawn across the whole range and not only where there are readings.
  data() {
    const sensor = this.sensor;
    const [start, end] = this.timeRange();
    const times = [Math.min(start, sensor.times[0]), ...sensor.times, Math.max(end, sensor.times.at(-1))];
    const inside = (column) => [null, ...column, null];
    const data = [times, inside(sensor.values)];
    if (sensor.lows) data.push(inside(sensor.lows), inside(sensor.highs));
    for (const limit of [sensor.min, sensor.max]) if (limit !== null) data.push(times.map(() => limit));
    return data;
  }

  draw() {
    const count = this.sensor.times.length;
    this.figure.dataset.points = String(count);
    this.empty.hidden = count > 0;
    this.box.hidden = count === 0;
    if (count === 0 || !window.uPlot) return;
    if (this.plot) {
      this.plot.setData(this.data());
      return;
    }
    const options = {
      width: this.width(),
      height: CHART_HEIGHT,
      series: this.series(),
      axes: [{}, { size: 60 }],
      scales: { x: { time: true, range: () => this.timeRange() } },
    };
    this.plot = new window.uPlot(options, this.data(), this.box);
  }

  width() {
    return Math.max(this.figure.clientWidth, 200);
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: this.width(), height: CHART_HEIGHT });
  }

  // A live reading, put in time order (a device may send one dated earlier than the last); readings before the
  // range's start are dropped, and so is one the chart has already (read with the range while it streamed in).
  add(seconds, value) {
    const sensor = this.sensor;
    const [start] = this.timeRange();
    if (seconds < start) return;
    const same = (time, index) => Math.abs(time - seconds) < 0.0005 && sensor.values[index] === value;
    if (!sensor.bucketMs && sensor.times.some(same)) return;
    const columns = [sensor.times, sensor.values, ...(sensor.lows ? [sensor.lows, sensor.highs] : [])];
    const at = sensor.times.findLastIndex((time) => time <= seconds) + 1;
    columns.forEach((column, index) => column.splice(at, 0, index === 0 ? seconds : value));
    while (sensor.times.length && sensor.times[0] < start) columns.forEach((column) => column.shift());
    this.draw();
  }
}

function followCharts() {
  const root = document.getElementById("sensors");
  if (!root) return;
  const list = document.getElementById("chart-list");
  const empty = document.getElementById("chart-empty");
  const note = document.getElementById("chart-note");
  const form = document.getElementById("chart-range");
  const span = document.getElementById("chart-span");
  const device = root.dataset.device;
  let charts = new Map();
  let shown = null; // the last answer: its range, and whether it follows live readings
  let reloading = null;
  let arriving = null; // live readings that came while the latest load was under way, added to its answer

  // A rolling range ends now; a custom one is fixed.
  function timeRange() {
    if (!shown.live) return [shown.from / 1000, shown.to / 1000];
    const now = Date.now() / 1000;
    return [now - (shown.to - shown.from) / 1000, now];
  }

  async function load() {
    const query = new URLSearchParams({ range: span.value });
    if (span.value === "custom") {
      const from = Date.parse(document.getElementById("chart-from").value);
      const to = Date.parse(document.getElementById("chart-to").value);
      if (!(from < to)) {
        note.textContent = "Choose a start before the end.";
        return;
      }
      query.set("from", String(from));
      query.set("to", String(to));
    }
    root.setAttribute("aria-busy", "true");
    const arrived = [];
    arriving = arrived;
    try {
      const response = await fetch(`${root.dataset.charts}?${query}`, { headers: { Accept: "application/json" } });
      if (response.redirected) {
        location.reload(); // the session ended: the reload shows the sign-in page
        return;
      }
      if (!response.ok) throw new Error(`charts: ${response.status}`);
      const answer = await response.json();
      if (arriving !== arrived) return; // a later load is under way: its answer is the one to show
      shown = answer;
      list.replaceChildren();
      charts = new Map(shown.sensors.map((sensor) => [sensor.sensor, new SensorChart(sensor, list, timeRange)]));
      empty.hidden = charts.size > 0;
      note.textContent = shown.live ? "New readings are added as they arrive." : "";
      arriving = null;
      arrived.forEach((args) => reading(...args));
    } catch {
      if (arriving !== arrived) return;
      note.textContent = "The charts could not be loaded; try again.";
    }
    arriving = null;
    root.setAttribute("aria-busy", "false");
  }

  function reading(sensor, value, timestamp) {
    if (arriving) {
      arriving.push([sensor, value, timestamp]);
      return;
    }
    if (!shown || !shown.live) return;
    const chart = charts.get(sensor);
    if (!chart) {
      // A sensor the page does not chart yet: load the charts again (once for a burst of readings).
      reloading = reloading || setTimeout(() => load().finally(() => (reloading = null)), 500);
      return;
    }
    if (typeof value === "number") chart.add(Date.parse(timestamp) / 1000, value);
  }

  onStream(
    [`devices/${device}/datastream`, `device/${device}/telemetry/#`],
    (event) => {
      if (event.event === "datastream") reading(event.data.key, event.data.value, event.data.timestamp);
      if (event.event === "telemetry") reading(event.data.sensor, event.data.value, event.data.timestamp);
    },
    load,
  );
  span.addEventListener("change", () => {
    const custom = span.value === "custom";
    form.querySelectorAll("[data-custom]").forEach((element) => (element.hidden = !custom));
    if (!custom) load();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load();
  });
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => charts.forEach((chart) => chart.resize()), 150);
  });
  load();
}

// --- alerts, live (device page) -------------------------------------------------------------------------

function flash(text, kind) {
  const message = document.createElement("p");
  message.className = `flash ${kind}`;
  message.setAttribute("role", "alert");
  message.textContent = text;
  document.getElementById("flash").replaceChildren(message);
}

function followAlerts() {
  const records = document.querySelector("[data-alerts]");
  if (!records) return;
  const refresh = () => window.htmx.ajax("GET", records.dataset.alerts, { target: "#device-records", swap: "outerHTML" });
  onStream(
    [`devices/${records.dataset.device}/alerts`],
    (event) => {
      if (event.event !== "alert") return;
      const alert = event.data;
      const value = alert.value === null ? alert.rawValue : alert.value;
      flash(`New alert: ${alert.kind.replace("_", " ")} on ${alert.sensor} (${value})`, "error");
      refresh();
    },
    refresh,
  );
}

// --- event subscription actions: show the fields of the chosen action type only ---------------------------

function showActionFields(select) {
  select.form.querySelectorAll("[data-for-types]").forEach((field) => {
    field.hidden = !field.dataset.forTypes.split(" ").includes(select.value);
  });
}

function followActionForms() {
  document.querySelectorAll("select[data-action-type]").forEach((select) => {
    showActionFields(select);
    select.addEventListener("change", () => showActionFields(select));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  followActionForms();
  followStatus();
  followOverview();
  followLive();
  followBroker();
  followCharts();
  followAlerts();
  followStream(); // last: after every part has said which topics it follows
});
