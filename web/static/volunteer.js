// The answering page: get a task, show it with the type's fragment, send the
// answer, show the next one. Talks only to the public JSON API.
(function () {
  "use strict";
  const root = document.getElementById("volunteer");
  if (!root) return;
  const api = root.dataset.api;
  const projectId = root.dataset.project;
  const taskBox = document.getElementById("task");
  const status = document.getElementById("status");
  const done = document.getElementById("done");
  const actions = document.getElementById("actions");
  const answered = document.getElementById("answered");
  // A type whose answer is more than one click (tags, text, boxes, numbers)
  // registers hooks from a <script> in its fragment, before this file runs:
  //   window.bitesizeTaskTypes[name] = {
  //     show(box, payload, task)  // reset the fragment for a new task
  //     collect(box, form)        // the answer to send; throw Error("why") to refuse
  //   }
  // and puts its inputs in a <form data-answer-form>; submitting it (a button,
  // Enter) sends collect()'s answer. Plain [data-answer] buttons need no hooks.
  const hooks = (window.bitesizeTaskTypes || {})[root.dataset.type] || {};
  // The console's preview (data-preview): one sample task from the page itself;
  // nothing is fetched or sent.
  const preview = "preview" in root.dataset
    ? JSON.parse(document.getElementById("preview-task").textContent) : null;
  const PREVIEW_NOTE = "Preview: this answer is not sent";
  let current = null;   // {task, lease}
  let busy = false;
  let count = 0;

  function say(text) { status.textContent = text; status.hidden = !text; }

  // The volunteer's token lives in localStorage, so a reload or another tab
  // stays the same volunteer; where storage is refused (privacy settings),
  // in memory, for this page's lifetime.
  const KEY = "bitesize.volunteer";
  const memory = {};
  const store = {
    get: function () { try { return localStorage.getItem(KEY); } catch (e) { return memory[KEY] || null; } },
    set: function (v) { memory[KEY] = v; try { localStorage.setItem(KEY, v); } catch (e) { /* memory only */ } },
    forget: function () { delete memory[KEY]; try { localStorage.removeItem(KEY); } catch (e) { /* memory only */ } },
  };
  let starting = null;  // one sign-in at a time, however many calls wait for it

  async function token() {
    const t = store.get();
    if (t) return t;
    if (!starting) {
      starting = (async function () {
        let r = await fetch(api + "/volunteers", {method: "POST"});
        // Many people starting at once behind one address (a school class) may
        // meet the sign-up limit: wait as the server says, then try again.
        for (let tries = 0; r.status === 429 && tries < 3; tries += 1) {
          const wait = Math.min(Number(r.headers.get("Retry-After")) || 5, 60);
          say("Many people are starting at once: trying again in " + wait + " s");
          await new Promise(function (done) { setTimeout(done, wait * 1000); });
          r = await fetch(api + "/volunteers", {method: "POST"});
        }
        say("");
        if (!r.ok) throw new Error("could not start a session (" + r.status + ")");
        const fresh = (await r.json()).token;
        store.set(fresh);
        return fresh;
      })().finally(function () { starting = null; });
    }
    return starting;
  }

  async function call(method, path, body) {
    const used = await token();
    const headers = {"Authorization": "Bearer " + used};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let r = await fetch(api + path, {method, headers,
      body: body === undefined ? undefined : JSON.stringify(body)});
    if (r.status === 401) {  // token forgotten by the server: start afresh once
      if (store.get() === used) store.forget();  // unless a parallel call already did
      headers["Authorization"] = "Bearer " + await token();
      r = await fetch(api + path, {method, headers,
        body: body === undefined ? undefined : JSON.stringify(body)});
    }
    return r;
  }

  function bind(payload) {
    taskBox.querySelectorAll("[data-bind-src]").forEach(function (el) {
      const v = payload[el.dataset.bindSrc];
      el.hidden = !v;
      if (v) el.src = v; else el.removeAttribute("src");
    });
    taskBox.querySelectorAll("[data-bind-text]").forEach(function (el) {
      const v = payload[el.dataset.bindText];
      el.hidden = v === undefined || v === null || v === "";
      el.textContent = el.hidden ? "" : String(v);
    });
  }

  // The task on screen and its lease, kept for this tab: a reload shows the same
  // task again while its lease lasts, instead of leasing another and leaving
  // this one held (a volunteer holds only a few leases at once).
  const SHOWN = "bitesize.shown." + projectId;
  const shown = {
    get: function () {
      try {
        const saved = JSON.parse(sessionStorage.getItem(SHOWN));
        const left = saved && Date.parse(saved.lease.expires_at) - Date.now();
        return left > 5000 ? saved : null;
      } catch (e) { return null; }
    },
    set: function (v) {
      try {
        if (v && !preview) sessionStorage.setItem(SHOWN, JSON.stringify(v));
        else sessionStorage.removeItem(SHOWN);
      } catch (e) { /* not kept: a reload leases another task */ }
    },
  };

  function show(next) {
    current = next;
    shown.set(next);
    if (!next) {
      const wasHidden = done.hidden;
      taskBox.hidden = true; actions.hidden = true; done.hidden = false; say("");
      if (wasHidden) done.focus();  // keyboard and screen-reader users learn it at once
      return;
    }
    bind(next.task.payload);
    taskBox.dataset.task = next.task.id;
    taskBox.hidden = false; actions.hidden = false; done.hidden = true; say("");
    if (hooks.show) hooks.show(taskBox, next.task.payload, next.task);
  }

  async function fetchNext() {
    if (preview) return preview;
    const r = await call("GET", "/projects/" + projectId + "/tasks/next");
    if (r.status === 204) return null;
    if (!r.ok) throw new Error(await message(r));
    return r.json();
  }

  async function message(r) {
    try { return (await r.json()).error.message; } catch (e) { return "error " + r.status; }
  }

  async function load() {
    const saved = preview ? null : shown.get();
    try { show(saved || await fetchNext()); } catch (e) { say("Sorry: " + e.message); }
  }

  async function answer(value) {
    if (busy || !current) return;
    if (preview) { say(PREVIEW_NOTE); return; }
    busy = true;
    const sent = current;
    taskBox.classList.add("sending");
    try {
      // One round trip a task: the answer's reply hands out the next task too
      // (`next`). When it could not (`next_error`) or the answer was refused,
      // asking for the next task on its own tells why, or finds one.
      const r = await call("POST", "/tasks/" + sent.task.id + "/answers",
                           {lease: sent.lease.token, answer: value, next: 1});
      let next, problem = "";
      if (r.status === 201) {
        const body = await r.json();
        count += 1; answered.textContent = String(count);
        next = body.next_error ? await fetchNext() : body.next;
      } else {
        if (r.status !== 409 && r.status !== 410) problem = "Your answer was not taken: " + await message(r);
        next = await fetchNext();
      }
      show(next);
      if (problem) say(problem);
    } catch (e) {
      say("Sorry: " + e.message);
    } finally {
      taskBox.classList.remove("sending");
      busy = false;
    }
  }

  async function skip() {
    if (busy || !current) return;
    if (preview) { say("Preview: skipping is not sent either"); return; }
    busy = true;
    try {
      await call("DELETE", "/leases/" + encodeURIComponent(current.lease.token));
      show(await fetchNext());
    } catch (e) { say("Sorry: " + e.message); } finally { busy = false; }
  }

  taskBox.addEventListener("click", function (ev) {
    const el = ev.target.closest("[data-answer]");
    if (el) answer(JSON.parse(el.dataset.answer));
  });
  taskBox.addEventListener("submit", function (ev) {
    const form = ev.target.closest("form[data-answer-form]");
    if (!form) return;
    ev.preventDefault();
    let value;
    try { value = hooks.collect ? hooks.collect(taskBox, form) : Object.fromEntries(new FormData(form)); }
    catch (e) { say(e.message); return; }
    if (value !== undefined && value !== null) answer(value);
  });
  document.getElementById("skip").addEventListener("click", skip);
  document.addEventListener("keydown", function (ev) {
    // A held key repeats: it must not answer the tasks that follow unseen.
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    if (ev.key === "s" || ev.key === "S") { skip(); return; }
    const el = taskBox.querySelector('[data-key="' + CSS.escape(ev.key) + '"]');
    if (el && !taskBox.hidden) { ev.preventDefault(); answer(JSON.parse(el.dataset.answer)); }
  });
  load();
})();
