// The volunteer's own page: what their answers did (GET /volunteers/me), and a
// certificate of their hours to print. The token is the one the answering page
// keeps in localStorage; the name typed for the certificate stays on the page.
(function () {
  "use strict";
  const root = document.getElementById("me");
  if (!root) return;
  const api = root.dataset.api;
  const status = document.getElementById("me-status");
  const KEY = "bitesize.volunteer";

  function text(id, value) { document.getElementById(id).textContent = value; }
  function number(n) { return Number(n).toLocaleString("en"); }
  function day(iso) {
    return new Date(iso).toLocaleDateString("en-GB", {day: "numeric", month: "long", year: "numeric"});
  }
  function duration(seconds) {
    const minutes = Math.round(seconds / 60);
    if (minutes < 1) return "less than a minute";
    const h = Math.floor(minutes / 60), m = minutes % 60;
    const parts = [];
    if (h) parts.push(h + (h === 1 ? " hour" : " hours"));
    if (m) parts.push(m + (m === 1 ? " minute" : " minutes"));
    return parts.join(" ");
  }

  function render(me) {
    const helped = me.projects.length;
    text("me-summary", "You have answered " + number(me.answers) + " task" + (me.answers === 1 ? "" : "s") +
         " for " + helped + " project" + (helped === 1 ? "" : "s") + ", giving " + duration(me.seconds) + ".");
    const body = document.querySelector("#me-projects tbody");
    me.projects.forEach(function (p) {
      const row = document.createElement("tr");
      [p.name, number(p.answers), number(p.finished), duration(p.seconds)].forEach(function (v, i) {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = v;
        row.appendChild(cell);
      });
      body.appendChild(row);
    });
    text("cert-time", duration(me.seconds));
    text("cert-answers", number(me.answers));
    text("cert-projects", helped === 1 ? "one project" : helped + " projects");
    text("cert-from", day(me.first_at));
    text("cert-to", day(me.last_at));
    text("cert-date", day(new Date().toISOString()));
    text("cert-id", String(me.id));
    document.getElementById("me-record").hidden = false;
    status.hidden = true;
  }

  async function load() {
    let token = null;
    try { token = localStorage.getItem(KEY); } catch (e) { /* storage refused */ }
    if (!token) { status.textContent = "Nothing answered on this device yet: pick a project to start."; return; }
    try {
      const r = await fetch(api + "/volunteers/me", {headers: {"Authorization": "Bearer " + token}});
      if (!r.ok) throw new Error("error " + r.status);
      const me = await r.json();
      if (!me.answers) { status.textContent = "Nothing answered on this device yet: pick a project to start."; return; }
      render(me);
    } catch (e) { status.textContent = "Sorry: your record could not be loaded (" + e.message + ")."; }
  }

  document.getElementById("cert-name-input").addEventListener("input", function (ev) {
    text("cert-name", ev.target.value.trim() || "a bitesize volunteer");
  });
  document.getElementById("print-certificate").addEventListener("click", function () { window.print(); });
  load();
})();
