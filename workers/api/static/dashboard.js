// Pantau's built-in dashboard: polls /v1/dashboard/summary every 2 s, follows the alert stream
// over Server-Sent Events. No dependencies; everything the page holds is bounded.
"use strict";

(function () {
  const SUMMARY_URL = "v1/dashboard/summary";
  const STREAM_URL = "v1/alerts/stream";
  const POLL_MS = 2000;
  const MAX_ALERTS = 50;
  const RECONNECT_GRACE_MS = 8000;
  const COUNTER_ORDER = ["accepted", "ingested", "duplicates", "invalid", "extracted", "completed", "alerts",
    "dead_lettered", "failed:ingest", "failed:extract", "failed:alert"];

  const TOKEN_KEY = "pantau.token";

  const $ = (id) => document.getElementById(id);

  // The API token for alert content: given once as /#token=pt_..., then kept in localStorage.
  function readToken() {
    const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
    if (fromHash) {
      try { localStorage.setItem(TOKEN_KEY, fromHash); } catch (e) { /* private mode */ }
      history.replaceState(null, "", location.pathname + location.search);
      return fromHash;
    }
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }
  let token = readToken();
  const fmtInt = new Intl.NumberFormat("en-US");
  const seenAlerts = new Set(); // alert ids currently in the list (bounded with it)

  function setText(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  function fmtRate(r) {
    if (r === null || r === undefined) return "–";
    if (r === 0) return "0";
    return r >= 100 ? fmtInt.format(Math.round(r)) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 120) return s.toFixed(s < 10 ? 2 : 1) + " s";
    return (s / 60).toFixed(1) + " min";
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Sparkline: a filled line of the last values, scaled to the largest one. ----------------------
  function drawSpark(canvas, values) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 300;
    const h = canvas.clientHeight || 56;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(h * dpr)) canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const style = getComputedStyle(canvas);
    const line = style.getPropertyValue("--spark-line").trim() || "#2563eb";
    const fill = style.getPropertyValue("--spark-fill").trim() || "rgba(37,99,235,.12)";
    const grid = style.getPropertyValue("--spark-grid").trim() || "rgba(0,0,0,.08)";
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, h - 0.5);
    ctx.lineTo(w, h - 0.5);
    ctx.stroke();
    if (!values || values.length < 2) {
      ctx.fillStyle = grid;
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillText(values === null ? "no counter for this stage" : "collecting samples…", 4, h / 2 + 4);
      return;
    }
    const max = Math.max(...values, 1e-9);
    const pad = 4;
    const x = (i) => (i / (values.length - 1)) * (w - 2 * pad) + pad;
    const y = (v) => h - pad - (v / max) * (h - 2 * pad);
    ctx.beginPath();
    values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.strokeStyle = line;
    ctx.lineWidth = 1.75;
    ctx.lineJoin = "round";
    ctx.stroke();
    ctx.lineTo(x(values.length - 1), h);
    ctx.lineTo(x(0), h);
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    const last = values.length - 1;
    ctx.beginPath();
    ctx.arc(x(last), y(values[last]), 2.5, 0, 2 * Math.PI);
    ctx.fillStyle = line;
    ctx.fill();
  }

  // Summary ------------------------------------------------------------------------------------
  function renderStages(stages) {
    for (const s of stages) {
      const card = $("stage-" + s.stage);
      if (!card) continue;
      const field = (name) => card.querySelector('[data-field="' + name + '"]');
      setText(field("rate"), fmtRate(s.rate));
      setText(field("count"), s.count === null || s.count === undefined ? "–" : fmtInt.format(s.count));
      setText(field("queue"), fmtInt.format(s.queue));
      setText(field("workers"), s.workers ? s.workers_alive + "/" + s.workers + " alive" : "no worker");
      field("workers").className = "workers " + (s.workers && s.workers_alive === s.workers ? "ok" : s.workers ? "bad" : "none");
      card.classList.toggle("backlog", s.queue > 0);
      drawSpark(field("spark"), s.counter ? s.series : null);
    }
  }

  function renderCounters(counters, rates) {
    const body = $("counters");
    const names = COUNTER_ORDER.filter((n) => n in counters).concat(
      Object.keys(counters).filter((n) => !COUNTER_ORDER.includes(n)));
    const rows = names.map((name) => {
      const tr = el("tr");
      tr.dataset.counter = name;
      tr.append(el("th", null, name.replace("_", " ").replace(":", " ")), el("td", "num", fmtInt.format(counters[name])),
        el("td", "num muted", rates && rates[name] ? fmtRate(rates[name]) + "/s" : ""));
      return tr;
    });
    body.replaceChildren(...rows);
  }

  function renderWorkers(workers) {
    const rows = workers.map((w) => {
      const tr = el("tr");
      tr.append(el("td", null, w.kind), el("td", "node", w.name), el("td", "num", w.pid),
        el("td", w.alive ? "ok" : "bad", w.alive ? "alive" : "gone"));
      return tr;
    });
    $("workers").replaceChildren(...rows);
    $("workers-empty").hidden = workers.length > 0;
    const alive = workers.filter((w) => w.alive).length;
    setText($("workers-alive"), workers.length ? alive + " / " + workers.length : "0");
    $("workers-alive").className = "big " + (workers.length && alive === workers.length ? "ok" : "bad");
    const kinds = {};
    for (const w of workers) if (w.alive) kinds[w.kind] = (kinds[w.kind] || 0) + 1;
    const note = Object.entries(kinds).map(([k, n]) => k + " " + n).join(" · ");
    setText($("workers-note"), note || "none alive");
  }

  function render(data) {
    setText($("namespace"), data.namespace);
    renderStages(data.stages);
    renderCounters(data.counters, data.rates);
    renderWorkers(data.workers);
    const lat = data.latency || {};
    setText($("lat-p50"), fmtSeconds(lat.p50));
    setText($("lat-p95"), fmtSeconds(lat.p95));
    setText($("lat-p99"), fmtSeconds(lat.p99));
    setText($("lat-note"), lat.samples ? lat.samples + " alerted article(s), " + lat.over : "no alert yet");
    setText($("dlq"), fmtInt.format(data.dead_letter_depth));
    $("tile-dlq").classList.toggle("warn", data.dead_letter_depth > 0);
    setText($("unacked"), fmtInt.format(data.unacked));
    setText($("alerts-total"), fmtInt.format(data.counters.alerts || 0));
    setText($("alerts-rate"), fmtRate(data.rates ? data.rates.alerts : 0));
    showAccess(data.alert_access);
    // Oldest first, so that the newest ends on top.
    (data.recent_alerts || []).slice().reverse().forEach(addAlert);
  }

  function setConn(cls, text) {
    const pill = $("conn");
    pill.className = "pill " + cls;
    setText(pill, text);
  }

  let pending = null; // the next scheduled poll
  let inflight = false;

  async function poll() {
    if (inflight) return;
    inflight = true;
    clearTimeout(pending);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10000);
    try {
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const res = await fetch(SUMMARY_URL, { cache: "no-store", headers, signal: controller.signal });
      const data = await res.json();
      if (!res.ok) throw new Error(data.error || "HTTP " + res.status);
      render(data);
      setConn("pill-ok", "connected");
      setText($("updated"), "updated " + new Date().toLocaleTimeString([], { hour12: false }));
    } catch (err) {
      setConn("pill-bad", err.name === "AbortError" ? "API not answering" : String(err.message || err));
    } finally {
      clearTimeout(timer);
      inflight = false;
      if (!document.hidden) pending = setTimeout(poll, POLL_MS);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) poll(); // polling pauses while the tab is hidden
  });

  // Alerts -------------------------------------------------------------------------------------
  function addAlert(a) {
    if (!a || !a.alert_id || seenAlerts.has(a.alert_id)) return;
    seenAlerts.add(a.alert_id);
    const li = el("li", "alert");
    li.dataset.alertId = a.alert_id;
    const head = el("div", "alert-head");
    head.append(el("span", "actor", a.actor_name || a.actor_id));
    if (a.language) head.append(el("span", "chip lang", a.language));
    for (const t of a.event_types || []) head.append(el("span", "chip event", t));
    head.append(el("time", "muted", fmtTime(a.alerted_at)));
    li.append(head);
    if (a.title) {
      const safe = typeof a.url === "string" && /^https?:\/\//i.test(a.url);
      const title = el(safe ? "a" : "div", "title", a.title);
      if (safe) {
        title.href = a.url;
        title.target = "_blank";
        title.rel = "noopener noreferrer";
      }
      li.append(title);
    }
    if (a.snippet) li.append(el("p", "snippet", a.snippet));
    const list = $("alerts");
    list.prepend(li);
    while (list.children.length > MAX_ALERTS) {
      seenAlerts.delete(list.lastElementChild.dataset.alertId);
      list.lastElementChild.remove();
    }
    $("alerts-empty").hidden = true;
  }

  function setLive(cls, text) {
    const pill = $("live");
    pill.className = "pill " + cls;
    setText(pill, text);
  }

  let source = null; // the EventSource, once a token is there
  let access = null;

  function showAccess(state) {
    if (state === access) return;
    access = state;
    const form = $("token-form");
    form.hidden = state === "ok" || state === "unchecked";
    $("token-forget-row").hidden = !token;
    $("alerts-empty").hidden = state !== "ok" || $("alerts").children.length > 0;
    $("token-missing").hidden = state !== "missing";
    $("token-refused").hidden = state !== "refused";
    if (state === "ok") follow();
    else if (state !== "unchecked") {
      stopFollowing();
      setLive("pill-wait", "live alerts need a token");
    }
  }

  function stopFollowing() {
    if (source) source.close();
    source = null;
  }

  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = $("token-input").value.trim();
    $("token-input").value = "";
    try { localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
    access = null;
    poll();
  });

  $("token-forget").addEventListener("click", () => {
    try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    token = "";
    stopFollowing();
    $("alerts").replaceChildren();
    seenAlerts.clear();
    $("alerts-empty").hidden = false;
    access = null;
    poll();
  });

  function follow() {
    if (source) return;
    if (!window.EventSource) {
      setLive("pill-bad", "live alerts unavailable");
      return;
    }
    // EventSource cannot send headers: the stream takes the token as ?token=.
    source = new EventSource(STREAM_URL + "?token=" + encodeURIComponent(token));
    const onAlert = (ev) => {
      try {
        addAlert(JSON.parse(ev.data));
      } catch (e) {
        /* a malformed message is skipped */
      }
    };
    const current = source;
    source.addEventListener("alert", onAlert);
    source.onmessage = onAlert;
    let opened = false;
    let downTimer = null; // "reconnecting" shows only when the stream stays down a while
    source.onopen = () => {
      opened = true;
      clearTimeout(downTimer);
      downTimer = null;
      setLive("pill-ok", "live");
    };
    source.onerror = () => {
      // CLOSED: the endpoint is missing or refused (no retry); CONNECTING: the browser retries.
      if (current !== source) return; // replaced or stopped
      if (current.readyState === EventSource.CLOSED) {
        clearTimeout(downTimer);
        setLive("pill-bad", "live alerts unavailable");
      } else if (!opened) {
        setLive("pill-wait", "live alerts: connecting…");
      } else if (downTimer === null) {
        downTimer = setTimeout(() => {
          if (current === source) setLive("pill-wait", "live alerts: reconnecting…");
        }, RECONNECT_GRACE_MS);
      }
    };
  }

  poll();
})();
