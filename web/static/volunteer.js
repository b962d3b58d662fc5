// The answering page: get tasks, show one with the type's fragment once its
// picture has loaded, send the answer, show the next one. Talks only to the
// public JSON API.
//
// Never the wrong picture: a task's answer controls are disabled (the
// fieldset around the fragment) until every picture of that task has loaded.
// Never a lost answer: an answer goes into an outbox kept in localStorage
// before anything is sent, and stays there until the server has it; sending
// retries with back-off (the lease token makes a repeat harmless), survives
// reloads and waits out being offline. Meanwhile the volunteer goes on with
// the tasks already preloaded: the page keeps PRELOAD leased tasks beyond the
// one on screen, topped up by each answer's reply ("next": N), and extends
// leases that would end while the volunteer is still at work.
//
// Beside it: static/session.js (the token, sign-up, calls), keeping.js (the
// held tasks and the outbox on this device), encouragement.js (thanks,
// practice feedback, milestones), tutorial.js and field_errors.js.
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
  const controls = document.getElementById("task-controls");
  const skipButton = document.getElementById("skip");
  const waiting = document.getElementById("waiting");
  const totalLine = document.getElementById("total-line");
  const answeredTotal = document.getElementById("answered-total");
  const reportForm = document.getElementById("report");
  const announce = document.getElementById("task-announce");
  const keysHelp = document.getElementById("keys-help");
  const reportOpen = document.getElementById("report-open");
  const sessionEnded = document.getElementById("session-ended");
  const lostNote = document.getElementById("answers-lost");
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
  const i18n = window.bitesizeI18n;  // static/i18n.js: the page's language
  const t = i18n.t, tn = i18n.tn, number = i18n.number;
  const PREVIEW_NOTE = t("Preview: this answer is not sent");
  const PRELOAD = 2;     // leased tasks kept ready beyond the one on screen
  let current = null;   // {task, lease}: on screen
  let queue = [];       // leased, pictures preloading, not shown yet
  let loading = false;  // the task on screen waits for its pictures
  let busy = false;     // a skip or a first fetch is under way
  let total = null;  // answers in all, once the server said (this visit's: encouragement.js)
  let lastActivity = Date.now();  // leases are extended only for someone at work
  let nothingLeft = false;  // an answer's reply found no next task to hand out
  let resumeTimer = null;  // asks again for tasks after a 503's or 429's Retry-After
  let stopped = false;  // the token stopped working for good: nothing more is asked or sent
  const LOADING = t("Loading the picture…");

  function say(text) { status.textContent = text; status.hidden = !text; }

  // The volunteer's token, sign-up and calls with it (static/session.js); a
  // token that stops working for good ends this page's work (ended), one the
  // server forgot starts a new volunteer (renewed).
  const session = window.bitesizeSession;
  const call = session.open(api, {say: say, ended: ended, renewed: renewed}).call;

  // A volunteer blocked platform-wide, or signed out by a change of password on
  // another device: said (project.html's #session-ended), and the page stops.
  // The outbox stays: a volunteer who signs in again on /me is the same one,
  // and their answers are sent from here once they are back.
  function ended(why) {
    if (stopped) return;
    stopped = true;
    clearTimeout(resumeTimer);
    clearTimeout(retryTimer);
    current = null;
    setLoading(false);
    closeReport(false);
    taskBox.hidden = true; actions.hidden = true; done.hidden = true; keysHelp.hidden = true;
    say("");
    if (why === "blocked") waiting.hidden = true;  // never sent: not "waiting" (nor counted on /me)
    sessionEnded.querySelectorAll("[data-why]").forEach(function (el) { el.hidden = el.dataset.why !== why; });
    sessionEnded.hidden = false;
    sessionEnded.focus();
  }

  // A new volunteer replaced this device's: the server no longer knows its
  // anonymous token, here or in another tab (static/session.js). What the old
  // one held was theirs: their leases cannot be answered as the new one, so
  // those tasks are let go, and the answers still waiting, in every project's
  // outbox, are dropped and said to be, rather than sent to be refused unseen.
  // A page that had stopped (blocked, signed out) starts again as the new one.
  function renewed() {
    if (stopped) { location.reload(); return; }
    const dropped = outbox.items.length + session.store.drop(null, outbox.key);
    outbox.items = [];
    outbox.save();
    current = null; queue = [];
    held.save();
    taskBox.hidden = true; actions.hidden = true;
    say(t("Loading a task…"));
    lost(dropped);
    setTimeout(function () { if (!current && !busy) advance(); });  // tasks for the new volunteer
  }

  // Answers that could not be kept (their volunteer's session ended before
  // they were sent), counted over the page's life and said in #session-ended.
  let lostCount = 0;
  function lost(n) {
    if (!n) return;
    lostCount += n;
    lostNote.textContent = tn("{n} answer could not be kept: this device's session had ended before it was sent.",
                              "{n} answers could not be kept: this device's session had ended before they were sent.", lostCount);
    sessionEnded.querySelectorAll("[data-why]").forEach(function (el) { el.hidden = el !== lostNote; });
    sessionEnded.hidden = false;
  }

  // The task is there to be answered: not hidden behind the tutorial, nor gone.
  function onScreen() {
    return !!current && !taskBox.hidden && !(tutorial && tutorial.showing());
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

  // What this tab holds, and the answers not yet sent (static/keeping.js).
  const kept = window.bitesizeKeeping.open({
    projectId: projectId, session: session, preview: preview,
    shown: function (n) {
      root.dataset.outbox = String(n);  // what is still to send, for anyone to see
      waiting.hidden = n === 0;
      waiting.textContent = tn("{n} answer waiting to send", "{n} answers waiting to send", n);
    }});
  const ends = kept.ends, outbox = kept.outbox;
  const held = {get: kept.held.get, save: function () { kept.held.save(current, queue); }};

  function sources(payload) {
    const urls = [];
    taskBox.querySelectorAll("[data-bind-src]").forEach(function (el) {
      const v = payload[el.dataset.bindSrc];
      if (v) urls.push(v);
    });
    return urls;
  }

  function preload(handout) {
    sources(handout.task.payload).forEach(function (url) { new Image().src = url; });
  }

  function enqueue(reply) {
    if (!reply) return;
    [reply, ...(reply.queue || [])].forEach(function (h) {
      const fresh = {task: h.task, lease: h.lease, volunteer: session.store.id()};
      fresh.ends = session.clock.local(h.lease.expires_at);
      fresh.term = fresh.ends - Date.now();
      if (!queue.some(function (q) { return q.task.id === fresh.task.id; }) &&
          !(current && current.task.id === fresh.task.id)) {
        queue.push(fresh);
        preload(fresh);
      }
    });
    held.save();
  }

  // Controls stay disabled (not merely covered) until the task's pictures have
  // loaded: nothing can answer a picture that is not on screen yet.
  function setLoading(on) {
    loading = on;
    controls.disabled = on;
    skipButton.disabled = on && !current;
    taskBox.setAttribute("aria-busy", on ? "true" : "false");
    taskBox.classList.toggle("loading", on);
  }

  // Nothing left here for this volunteer: remembered on this device, so the
  // list of projects says so instead of offering "Start" (static/progress.js).
  const FINISHED = "bitesize.finished." + projectId;
  function remember(finished) {
    if (preview) return;
    try {
      if (finished) localStorage.setItem(FINISHED, String(Date.now()));
      else localStorage.removeItem(FINISHED);
    } catch (e) { /* not remembered */ }
  }

  async function show(next) {
    current = next || null;
    held.save();
    closeReport(false);
    clearRefusal();
    remember(!current);
    if (!current) {
      setLoading(false);
      const wasHidden = done.hidden;
      taskBox.hidden = true; actions.hidden = true; done.hidden = false; say("");
      keysHelp.hidden = true; announce.textContent = "";  // no task: no keys, no "ready"
      if (wasHidden) done.focus();  // keyboard and screen-reader users learn it at once
      return;
    }
    const shown = current;
    setLoading(true);
    say(LOADING);
    bind(shown.task.payload);
    taskBox.dataset.task = shown.task.id;
    taskBox.hidden = false; actions.hidden = false; done.hidden = true;
    keysHelp.hidden = !keysHelp.textContent;
    let failed = false;
    await Promise.all(Array.from(taskBox.querySelectorAll("img[data-bind-src]:not([hidden])"))
      .map(function (img) { return img.decode().catch(function () { failed = true; }); }));
    if (current !== shown) return;  // skipped or replaced meanwhile
    setLoading(false);
    if (failed) {
      say(t("This picture could not be loaded: skip it (S) to get another."));
      controls.disabled = true;
    } else if (status.textContent === LOADING) {
      say("");  // a message said meanwhile (an answer refused) stays
    }
    announce.textContent = failed ? "" : t("New task ready.");
    if (hooks.show) hooks.show(taskBox, shown.task.payload, shown.task);
  }

  async function fetchNext(count) {
    if (preview) return preview;
    const path = "/projects/" + projectId + "/tasks/next" + (count > 1 ? "?count=" + count : "");
    const r = await call("GET", path);
    if (r.status === 204) return null;
    if (r.status === 503 || r.status === 429) {
      // 503: Redis away (answers are still taken, tasks come back soon). 429: the
      // volunteer holds as many leases as they may, most likely in other tabs,
      // until one is answered, skipped or ends. Either way, asked again later.
      const wait = Math.min(Number(r.headers.get("Retry-After")) || 5, 60);
      const code = r.status === 429 ? (await session.refusal(r)).code : null;
      const later = new Error(r.status === 503 ? t("Tasks are resting for a moment: back in a moment.")
        : code === "too_many_leases"
          ? t("You have tasks open in another tab or window: trying again in {seconds} s", {seconds: wait})
          : t("Too many requests at once: trying again in {seconds} s", {seconds: wait}));
      later.retryAfter = wait;
      throw later;
    }
    if (!r.ok) throw new Error(await message(r));
    return r.json();
  }

  // Why the server refused: its own words on an English page (the API speaks
  // English), the status in the page's words on any other.
  async function message(r) {
    if (i18n.lang !== "en") return t("the server refused it (error {status})", {status: r.status});
    try { return (await r.json()).error.message; } catch (e) { return "error " + r.status; }
  }

  // The next task on screen: a preloaded one at once, else one asked for now.
  async function advance() {
    if (stopped) return;
    if (queue.length) { show(queue.shift()); return; }
    if (nothingLeft && !outbox.items.length) { show(null); return; }
    if (outbox.items.length && sending) {
      // the reply to the answer on its way hands out the next task
      current = null; setLoading(true);
      taskBox.hidden = true; actions.hidden = true;
      say(t("Loading a task…"));
      return;
    }
    busy = true;
    try {
      const reply = await fetchNext(1 + PRELOAD);
      if (reply) enqueue(reply);
      await show(queue.shift() || null);
    } catch (e) {
      if (e.retryAfter) {
        say(e.message);
        clearTimeout(resumeTimer);
        resumeTimer = setTimeout(function () { if (!current && !busy) advance(); },
                                 e.retryAfter * 1000);
      } else if (!stopped) {  // what stopped it is said already
        say(t("Sorry: {reason}", {reason: e.message}));
      }
    } finally { busy = false; }
  }

  async function record() {
    const r = await call("GET", "/volunteers/me");
    if (!r.ok) throw new Error(await message(r));
    const me = await r.json();
    // whether this device's work is kept under an account: if its token ends,
    // it must sign in again rather than start afresh (static/session.js)
    session.store.mark(session.store.get(), session.keeps(me.account));
    session.store.known(session.store.get(), me.id);
    return me;
  }

  // The total in all is read from the server once, then counted here. An answer
  // sent while it is read may or may not be in it (and is counted here when its
  // reply comes): then the reading is thrown away and done again once no answer
  // is on its way (at once if none is now, else when the sending ends), so no
  // answer is counted twice or missed.
  let posts = 0, totalWanted = false;
  async function showTotal() {
    const before = posts, during = sending;
    let answers;
    try { answers = (await record()).answers; } catch (e) { return; }
    totalWanted = during || sending || posts !== before;
    if (totalWanted) {
      if (!sending) showTotal();  // the answers it crossed have had their replies
      return;
    }
    total = answers;
    answeredTotal.textContent = number(total);
    totalLine.hidden = false;
  }

  // Each answer taken: thanked and counted, this visit's milestones (static/encouragement.js).
  const cheer = window.bitesizeEncouragement.open({
    projectId: projectId, api: api, record: record, taskBox: taskBox});
  function counted() {
    cheer.counted();
    if (total !== null) { total += 1; answeredTotal.textContent = number(total); }
  }

  // The charity's tutorial, before a volunteer's first task here, and again
  // whenever they ask (static/tutorial.js); null when the project has none.
  const tutorial = window.bitesizeTutorial.open(projectId);
  async function runTutorial() {
    taskBox.hidden = true; actions.hidden = true; say("");
    await tutorial.run();
  }

  const again = document.getElementById("tutorial-again");
  if (again) {
    again.addEventListener("click", async function () {
      await runTutorial();
      if (current) { taskBox.hidden = false; actions.hidden = false; } else { show(null); }
      again.focus();
    });
  }

  async function load() {
    if (tutorial && (preview || !tutorial.seen())) await runTutorial();
    if (preview) { show(preview); return; }
    const saved = held.get();
    queue = saved.queue;
    queue.forEach(preload);
    outbox.load();
    outbox.save();
    if (saved.current) show(saved.current); else await advance();
    flush();
    showTotal();
  }

  // --- sending ---------------------------------------------------------------
  let sending = false;
  let retryAt = 0, retryTimer = null, backoff = 0;

  function retryLater(seconds) {
    backoff = Math.min(backoff ? backoff * 2 : 1, 30);
    const wait = Math.max(seconds || 0, backoff);
    retryAt = Date.now() + wait * 1000;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(flush, wait * 1000);
    if (!current) say(t("Your answers are kept here and sent when the connection is back."));
  }

  async function flush() {
    if (stopped || sending || !outbox.items.length || Date.now() < retryAt) return;
    sending = true;
    try {
      while (outbox.items.length) {
        const item = outbox.items[0];
        const want = Math.max(0, PRELOAD + (current ? 0 : 1) - queue.length);
        let r;
        posts += 1;
        try {
          r = await call("POST", "/tasks/" + item.task + "/answers",
                         {lease: item.lease, answer: item.answer, next: want}, item.volunteer);
        } catch (e) { retryLater(); return; }  // offline: kept, sent when back
        if (r && r.status === 401) return;  // kept for its volunteer, or said lost (ended, renewed)
        if (r && (r.status >= 500 || r.status === 429 || r.status === 408)) {
          retryLater(Number(r.headers.get("Retry-After")) || 0);
          return;
        }
        outbox.items.shift();
        outbox.save();
        backoff = 0;
        if (!r || r.status === 410 && ((await session.refusal(r)).fields || {}).lease === "issued to another volunteer") {
          lost(1);  // another volunteer's lease (call() did not send it, or the server refused it)
        } else if (r.status === 201) {
          counted();  // in the same turn as the outbox's save: a reload cannot split them
          const reply = await r.json();
          if (reply.feedback) cheer.tell(reply.feedback);
          if (want > 0) nothingLeft = reply.next === null && !reply.next_error;
          enqueue(reply.next);
        } else if (r.status !== 409 && r.status !== 410) {
          // refused for good (the labels changed under this page, say): said, not retried
          say(t("Your answer was not taken: {reason}", {reason: await message(r)}));
        }
        if (!current && !busy) await advance();
      }
    } finally { sending = false; }
    if (totalWanted) showTotal();
    if (!current && !busy && !queue.length) await advance();
  }

  function answer(value) {
    if (stopped || busy || loading || !current) return;
    if (preview) { say(PREVIEW_NOTE); return; }
    const sent = current;
    // into the outbox before anything else: from here on it cannot be lost
    outbox.items.push({task: sent.task.id, lease: sent.lease.token, answer: value, volunteer: sent.volunteer});
    outbox.save();
    current = null;
    if (queue.length) show(queue.shift());  // at once: the next one is preloaded
    flush();  // asks for as many tasks as the queue lacks, with the answer
    if (!current) advance();  // nothing was preloaded: the answer's reply brings it
  }

  // Only a task on screen is skipped: not one hidden behind the tutorial (S
  // pressed while reading it) or behind the end of the session.
  async function skip() {
    if (stopped || busy || !current || !onScreen()) return;
    if (preview) { say(t("Preview: skipping is not sent either")); return; }
    busy = true;
    const skipped = current;
    try {
      await call("DELETE", "/leases/" + encodeURIComponent(skipped.lease.token));
    } catch (e) { /* its lease simply runs out */ }
    busy = false;
    current = null;
    await advance();
  }

  // "Something wrong with this task?": a blank picture, upsetting content,
  // unreadable. The report reaches the charity; the volunteer goes on with
  // another task (the server gives the lease back, as with a skip).
  function closeReport(refocus) {
    reportForm.hidden = true;
    reportOpen.setAttribute("aria-expanded", "false");
    if (refocus) reportOpen.focus();
  }

  reportOpen.addEventListener("click", function () {
    if (!reportForm.hidden) { closeReport(true); return; }
    reportForm.hidden = false;
    reportOpen.setAttribute("aria-expanded", "true");
    reportForm.querySelector("input[name=reason]").focus();
  });
  document.getElementById("report-cancel").addEventListener("click", function () { closeReport(true); });
  reportForm.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { ev.preventDefault(); closeReport(true); }
  });
  reportForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const chosen = reportForm.querySelector("input[name=reason]:checked");
    if (!chosen) { say(t("Choose what is wrong first.")); return; }
    if (preview) { say(t("Preview: reports are not sent either")); return; }
    if (busy || !current) return;
    busy = true;
    const reported = current;
    try {
      const r = await call("POST", "/leases/" + encodeURIComponent(reported.lease.token) + "/report",
                           {reason: chosen.value, note: reportForm.elements.note.value});
      if (!r.ok && r.status !== 410) throw new Error(await message(r));
    } catch (e) {
      busy = false;
      if (!stopped) say(t("Sorry, the report was not sent: {reason}", {reason: e.message}));
      return;
    }
    reportForm.reset();
    busy = false;
    current = null;
    cheer.thank(t("Thank you for telling us: the charity will look at it."));
    await advance();
  });

  // Leases of the tasks this tab holds are extended before they end, as long
  // as someone is at work here (a key or a click since the lease began).
  async function keepLeases() {
    if (stopped) return;
    const now = Date.now();
    for (const h of [current, ...queue]) {
      if (!h || document.visibilityState !== "visible") continue;
      const left = ends(h) - now;
      const term = h.term || left;
      if (left > term / 3 || lastActivity < ends(h) - term) continue;
      try {
        const r = await call("POST", "/leases/" + encodeURIComponent(h.lease.token) + "/extend");
        if (r.ok) {
          h.lease.expires_at = (await r.json()).expires_at;
          h.ends = session.clock.local(h.lease.expires_at);  // the clock this reply set
        } else if (h !== current) queue = queue.filter(function (q) { return q !== h; });
      } catch (e) { /* offline: tried again on the next round */ }
    }
    held.save();
  }

  ["keydown", "pointerdown", "input"].forEach(function (kind) {
    document.addEventListener(kind, function () { lastActivity = Date.now(); }, true);
  });
  window.addEventListener("online", function () { retryAt = 0; flush(); });

  taskBox.addEventListener("click", function (ev) {
    const el = ev.target.closest("[data-answer]");
    if (el) answer(JSON.parse(el.dataset.answer));
  });
  taskBox.addEventListener("submit", function (ev) {
    const form = ev.target.closest("form[data-answer-form]");
    if (!form) return;
    ev.preventDefault();
    if (loading) return;
    let value;
    try { value = hooks.collect ? hooks.collect(taskBox, form) : Object.fromEntries(new FormData(form)); }
    catch (e) {
      cheer.hush();
      if (!fieldErrors.refuse(form, e.message)) say(e.message);
      return;
    }
    clearRefusal();
    if (value !== undefined && value !== null) answer(value);
  });
  taskBox.addEventListener("input", clearRefusal);

  // A refused answer is said beside its field (static/field_errors.js).
  const fieldErrors = window.bitesizeFieldErrors;
  function clearRefusal() { fieldErrors.clear(taskBox); }
  skipButton.addEventListener("click", skip);
  document.addEventListener("keydown", function (ev) {
    // A held key repeats: it must not answer the tasks that follow unseen.
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    if (ev.key === "s" || ev.key === "S") { skip(); return; }
    const el = taskBox.querySelector('[data-key="' + CSS.escape(ev.key) + '"]');
    if (el && onScreen() && !loading) { ev.preventDefault(); answer(JSON.parse(el.dataset.answer)); }
  });
  // Which keys do what, from the page itself: the type's [data-key] controls
  // (and [data-key-hint] ones, whose key the type's own script handles: tags),
  // Enter where there is a field to type in, and S, which never fires while
  // typing (the keydown handler above leaves fields alone).
  (function describeKeys() {
    const help = keysHelp;
    const keyed = Array.from(taskBox.querySelectorAll("[data-key], [data-key-hint]")).slice(0, 9).map(function (el) {
      const key = el.dataset.key || el.dataset.keyHint;
      return key + " " + (el.dataset.keyLabel || el.textContent.replace(/\s+/g, " ").trim()
        .replace(new RegExp("^" + key + "\\s*"), ""));  // its own <kbd>
    });
    if (taskBox.querySelector("form[data-answer-form] input:not([type=hidden]), form[data-answer-form] textarea")) {
      keyed.push(t("Enter send"));
    }
    keyed.push(t("S skip (when not typing in a field)"));
    help.textContent = t("Keys: {keys}", {keys: keyed.join(" · ")});
    help.hidden = taskBox.hidden;
  })();
  if (!preview) setInterval(keepLeases, 2000);
  load();
})();
