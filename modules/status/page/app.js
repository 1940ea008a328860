// CareQ Gateway status page: polls status.json every second and renders
// it. Text is always set with textContent, never parsed as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const badge = (text, kind) => el("span", text, "badge " + kind);
  const last = {};

  // fill replaces the rows of a table body when the data changed, so a
  // screen reader is not told about a table that stayed the same.
  function fill(id, rows, cols, empty) {
    const key = JSON.stringify(rows);
    if (last[id] === key) return;
    last[id] = key;
    const body = $(id).tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", empty, "empty");
      td.colSpan = cols;
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const cells of rows) {
      const tr = el("tr");
      for (const c of cells) {
        const td = el("td");
        if (c instanceof Node) td.append(c); else td.textContent = c;
        tr.append(td);
      }
      body.append(tr);
    }
  }

  const stateKind = { closed: "ok", "half-open": "warn", open: "bad" };

  // Breaker rows are kept by name so their buttons keep keyboard focus
  // across updates.
  const breakerRows = new Map();
  function renderBreakers(list) {
    const body = $("breakers").tBodies[0];
    const seen = new Set();
    for (const b of list) {
      seen.add(b.name);
      let row = breakerRows.get(b.name);
      if (!row) {
        row = { tr: el("tr"), cells: [] };
        row.tr.dataset.breaker = b.name;
        const labels = [...$("breakers").tHead.rows[0].cells].map((th) => th.textContent);
        for (let i = 0; i < 6; i++) { const td = el("td"); td.dataset.label = labels[i]; row.cells.push(td); row.tr.append(td); }
        const act = el("td");
        act.dataset.label = labels[6];
        for (const [action, label] of [["open", "Force open"], ["close", "Force closed"], ["release", "Release"]]) {
          const btn = el("button", label);
          btn.type = "button";
          btn.dataset.action = action;
          btn.setAttribute("aria-label", label + " " + b.name);
          btn.addEventListener("click", () => act_(b.name, action, label));
          act.append(btn);
        }
        row.tr.append(act);
        breakerRows.set(b.name, row);
      }
      const c = b.counts;
      const key = JSON.stringify([b.state, b.forced, b.retry_after, c.requests, c.failures, c.consecutive_failures, b.in_flight]);
      if (row.key !== key) {
        row.key = key;
        row.cells[0].textContent = b.name;
        row.cells[1].replaceChildren(badge(b.state, stateKind[b.state] || "warn"));
        row.cells[1].dataset.state = b.state;
        row.cells[2].textContent = c.requests + " / " + c.failures + " (" + c.consecutive_failures + " in a row)";
        row.cells[3].textContent = b.in_flight;
        row.cells[4].textContent = b.state === "open" ? (b.retry_after ? "in " + b.retry_after + " s" : "held open") : "—";
        row.cells[5].textContent = b.forced ? "held " + b.forced + " (admin API)" : "no (automatic)";
      }
      body.append(row.tr); // keeps the sort order
    }
    for (const [name, row] of breakerRows) {
      if (!seen.has(name)) { row.tr.remove(); breakerRows.delete(name); }
    }
    $("breakers").classList.toggle("none", list.length === 0);
    if (!list.length && !body.querySelector("td.empty")) {
      const tr = el("tr"); const td = el("td", "No breakers configured.", "empty"); td.colSpan = 7; tr.append(td); body.append(tr);
    } else if (list.length) {
      body.querySelectorAll("td.empty").forEach((td) => td.parentElement.remove());
    }
  }

  // act_ asks for confirmation, then calls the breaker's own admin
  // endpoint.
  function act_(name, action, label) {
    const dlg = $("confirm");
    $("confirm-title").textContent = label + "?";
    $("confirm-text").textContent = {
      open: "Breaker " + name + " will refuse every request with 503 until released.",
      close: "Breaker " + name + " will let every request through, even to a failing backend, until released.",
      release: "Breaker " + name + " goes back to automatic: closed, counts cleared.",
    }[action];
    dlg.returnValue = "";
    dlg.onclose = async () => {
      if (dlg.returnValue !== "ok") return;
      try {
        const r = await fetch("breakers/" + encodeURIComponent(name) + "/" + action, { method: "POST" });
        say(r.ok ? label + ": done for " + name + "." : label + " failed for " + name + ": HTTP " + r.status + ".");
      } catch (e) {
        say(label + " failed for " + name + ": the gateway did not answer.");
      }
      tick();
    };
    dlg.showModal();
    $("confirm-cancel").focus();
  }

  let message = "";
  function say(m) { message = m; $("live").textContent = m; }

  function renderSummary(d) {
    const ul = $("summary");
    const items = [];
    const open = (d.breakers || []).filter((b) => b.state !== "closed");
    items.push(open.length ? badge(open.length + " breaker(s) not closed: " + open.map((b) => b.name + " " + b.state).join(", "), "bad") : badge("All breakers closed", "ok"));
    const zones = d.rate_limits || [];
    const redis = zones.filter((z) => z.redis);
    if (redis.length) {
      const down = redis.filter((z) => z.redis_fallback);
      items.push(down.length ? badge("Redis unreachable, local fallback active: " + down.map((z) => z.zone).join(", "), "bad") : badge("Redis reachable", "ok"));
    } else {
      items.push(badge("Redis not used", "ok"));
    }
    const idem = (d.idempotency || []).filter((s) => s.kind === "redis" && s.reachable === false);
    if (idem.length) items.push(badge("Idempotency store unreachable: " + idem.map((s) => s.redis).join(", "), "bad"));
    const jwks = (d.auth || []).filter((a) => a.jwt_key === "jwks");
    if (jwks.length) {
      const bad = jwks.filter((a) => !a.jwks_healthy);
      items.push(bad.length ? badge("Key server unreachable (" + bad.length + ")", "bad") : badge("Key server answering", "ok"));
    }
    const ref = (d.refusals && d.refusals.by_cause) || [];
    const total = ref.reduce((n, c) => n + c.count, 0);
    items.push(total ? badge(total + " refusal(s) in the last minute", "warn") : badge("No refusals in the last minute", "ok"));
    const key = JSON.stringify(items.map((i) => i.textContent));
    if (last.summary === key) return;
    last.summary = key;
    ul.replaceChildren(...items.map((i) => { const li = el("li"); li.append(i); return li; }));
  }

  function callers(list) {
    if (!list || !list.length) return "none";
    return list.map((c) => c.caller + " (" + c.refused + ")").join(", ");
  }

  function render(d) {
    renderSummary(d);
    renderBreakers(d.breakers || []);
    fill("upstreams", (d.upstreams || []).map((u) => [u.address, u.num_requests, u.fails]), 3, "No upstreams.");
    const limits = (d.rate_limits || []).map((z) => [
      "rate limit", z.zone, z.keys_tracked,
      z.redis ? (z.redis_fallback ? "unreachable, fallback since " + z.outage_since : "reachable") : "not used",
      callers(z.top_refused)]);
    for (const c of d.caps || []) limits.push(["caps", c.caps, c.keys_tracked, "not used", callers(c.top_refused)]);
    fill("limits", limits, 5, "No rate-limit zones or caps.");
    fill("auth", (d.auth || []).map((a) => [
      a.realm, (a.jwt_key || "none") + (a.issuer ? " (issuer " + a.issuer + ")" : ""),
      a.jwks_keys ? (a.jwks_keys.join(", ") || "none") : "—",
      a.last_fetch ? a.last_fetch.at + ": " + (a.last_fetch.ok ? "ok" : "failed: " + a.last_fetch.error) : "—",
      a.api_keys]), 5, "No auth handlers.");
    fill("idempotency", (d.idempotency || []).map((s) => s.kind === "redis"
      ? ["Redis " + s.redis, "shared",
         s.reachable === undefined ? "no call yet" : (s.reachable ? "reachable" : "unreachable since " + s.last_error_at)]
      : ["local", s.entries + " (" + s.bytes + " bytes)", "in memory"]), 3, "No idempotency store.");
    const r = d.refusals || { by_cause: [], by_route: [], seconds: 0 };
    $("refusal-span").textContent = "Over the last " + r.seconds + " s.";
    fill("by-cause", r.by_cause.map((c) => [c.name, c.count]), 2, "None.");
    fill("by-route", r.by_route.map((c) => [c.name, c.count]), 2, "None.");
  }

  let failing = false;
  async function tick() {
    try {
      const r = await fetch("status.json", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
      if (failing || !message) { failing = false; say("Live: updated " + new Date().toLocaleTimeString() + "."); }
      else $("live").dataset.updated = String(Date.now());
    } catch (e) {
      if (!failing) { failing = true; say("The gateway is not answering; retrying every second."); }
    }
  }

  $("owner-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const q = $("queue").value.trim();
    const out = $("owner");
    if (!q) return;
    out.replaceChildren(el("p", "Looking up " + q + "…"));
    try {
      const r = await fetch("owner.json?queue=" + encodeURIComponent(q), { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const d = await r.json();
      const parts = [];
      if (!d.routes.length) parts.push(el("p", "No careq_queue route has sent a request yet, so no replica set is known."));
      for (const a of d.routes) {
        const p = el("p");
        p.dataset.owner = a.owner;
        p.append("Queue " + d.queue + " (" + a.key + ", " + a.mode + "): owner " + a.owner + ". ",
          a.reachable ? badge("Requests reach " + a.served_by + (a.outcome === "fallback" ? " (fallback)" : ""), "ok")
                      : badge("Requests refused: " + a.outcome, "bad"));
        parts.push(p);
        const ul = el("ul");
        for (const rep of a.replicas) {
          ul.append(el("li", rep.address + (rep.owner ? " (owner)" : "") + ": " +
            (rep.healthy ? "healthy" : "unhealthy") + ", " + (rep.breaker_open ? "breaker open" : "breaker not open") +
            ", " + rep.in_flight + " in flight, " + rep.fails + " recent failures"));
        }
        parts.push(ul);
      }
      out.replaceChildren(...parts);
    } catch (e) {
      out.replaceChildren(el("p", "Lookup failed: the gateway did not answer."));
    }
  });

  tick();
  setInterval(tick, 1000);
})();
