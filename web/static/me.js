// The volunteer's own page: what their answers did (GET /volunteers/me), a
// certificate of their hours to print, and keeping that work (claim it with an
// email and password or a recovery code, sign in on this device, download the
// data, delete the account). The token is the one the answering page keeps in
// localStorage; the name typed for the certificate stays on the page.
(function () {
  "use strict";
  const root = document.getElementById("me");
  if (!root) return;
  const api = root.dataset.api;
  const status = document.getElementById("me-status");
  const session = window.bitesizeSession;  // static/session.js: the token, shared with the answering page
  // This device's token was signed out (a change of password on another
  // device): the answers waiting in its outbox were that volunteer's, and
  // signing in again as them is how they get sent. A blocked one's answers are
  // never sent: they hold no sign-in back.
  let signedOut = false, blocked = false;

  const i18n = window.bitesizeI18n;  // static/i18n.js: the page's language
  const t = i18n.t, tn = i18n.tn, number = i18n.number;

  function text(id, value) { document.getElementById(id).textContent = value; }
  function day(iso) {
    return new Date(iso).toLocaleDateString(i18n.lang === "en" ? "en-GB" : i18n.lang,
                                            {day: "numeric", month: "long", year: "numeric"});
  }
  function duration(seconds) {
    const minutes = Math.round(seconds / 60);
    if (minutes < 1) return t("less than a minute");
    const h = Math.floor(minutes / 60), m = minutes % 60;
    const parts = [];
    if (h) parts.push(tn("{n} hour", "{n} hours", h));
    if (m) parts.push(tn("{n} minute", "{n} minutes", m));
    return parts.join(" ");
  }

  function render(me) {
    const helped = me.projects.length;
    text("me-summary", t("{answered} for {projects}, giving {time}.", {
      answered: tn("You have answered {n} task", "You have answered {n} tasks", me.answers),
      projects: tn("{n} project", "{n} projects", helped), time: duration(me.seconds)}));
    const body = document.querySelector("#me-projects tbody");
    body.textContent = "";
    // News by email: where the site sends email and the volunteer kept an email
    const news = !!(me.mail && me.account && me.account.email && me.account.email_confirmed);
    document.getElementById("news-col").hidden = !news;
    document.getElementById("news-hint").hidden = !news;
    me.projects.forEach(function (p) {
      const row = document.createElement("tr");
      [p.name, number(p.answers), number(p.finished), duration(p.seconds)].forEach(function (v, i) {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        cell.textContent = v;
        row.appendChild(cell);
      });
      if (news) row.appendChild(newsCell(p));
      body.appendChild(row);
    });
    text("cert-time", duration(me.seconds));
    text("cert-answers", number(me.answers));
    text("cert-projects", tn("{n} project", "{n} projects", helped));
    text("cert-from", day(me.first_at));
    text("cert-to", day(me.last_at));
    text("cert-date", day(new Date().toISOString()));
    text("cert-id", String(me.id));
    document.getElementById("me-record").hidden = false;
    status.hidden = true;
  }

  function stored() { return session.store.get(); }

  function newsCell(p) {
    const cell = document.createElement("td");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = !!p.news;
    box.setAttribute("aria-label", t("Email me news of {project}", {project: p.name}));
    box.addEventListener("change", async function () {
      const r = await send(box.checked ? "PUT" : "DELETE", "/projects/" + p.id + "/news-subscription", null, stored());
      if (!r.ok) { box.checked = !box.checked; said.textContent = explain(r.status, "", ""); return; }
      said.textContent = box.checked ? t("You will get news of {project} by email.", {project: p.name})
                                     : t("No more news of {project} by email.", {project: p.name});
    });
    cell.appendChild(box);
    return cell;
  }

  async function load() {
    const token = stored();
    showAccount(token ? undefined : null);
    if (!token) { status.textContent = t("Nothing answered on this device yet: pick a project to start."); return; }
    try {
      const r = await fetch(api + "/volunteers/me", {headers: {"Authorization": "Bearer " + token}});
      if (r.status === 401) { await refusedToken(r, token); return; }
      if (!r.ok) throw new Error("error " + r.status);
      const me = await r.json();
      session.store.mark(token, session.keeps(me.account));
      session.store.known(token, me.id);
      mailOn = !!me.mail;
      showAccount(me.account);
      if (!me.answers) { status.textContent = t("Nothing answered on this device yet: pick a project to start."); return; }
      render(me);
    } catch (e) { status.textContent = t("Sorry: your record could not be loaded ({reason}).", {reason: e.message}); }
  }

  // This device's token no longer works: a volunteer blocked platform-wide
  // cannot come back (another account may sign in on a shared device); one
  // whose work was kept under an account (signed out elsewhere) may sign in
  // again below, or carry on here as a new volunteer instead (an account
  // deleted elsewhere, a forgotten password). A blocked one is not offered
  // that: it would invite them back behind the block. An anonymous token the server forgot
  // has nobody to sign back in as: forgotten now, its answers said lost, as
  // the answering page would.
  async function refusedToken(r, token) {
    blocked = ((await session.refusal(r)).fields || {}).token === "blocked";
    document.getElementById("keep").hidden = true;  // all need a token that works
    document.getElementById("your-data").hidden = true;
    if (!blocked && !session.store.kept(token)) {
      const dropped = startAfresh();
      status.textContent = (dropped ? tn("{n} answer could not be kept: this device's session had ended before it was sent.",
        "{n} answers could not be kept: this device's session had ended before they were sent.", dropped) + " " : "") +
        t("Nothing answered on this device yet: pick a project to start.");
      return;
    }
    signedOut = !blocked;
    status.textContent = blocked ? t("You can no longer answer tasks here. Thank you for the time you gave.")
      : t("You were signed out on this device: sign in again below to carry on.");
    document.getElementById("carry-on").hidden = blocked;
  }

  // Forgets this device's volunteer (the token, whether it was kept, the tasks
  // held for it, its unsent answers): the next project page starts a new one.
  // Returns how many answers were dropped.
  function startAfresh() {
    const dropped = session.store.drop(null);
    session.store.forget();
    forgetHeld();
    signedOut = blocked = false;
    document.getElementById("carry-on").hidden = true;
    showAccount(null);
    return dropped;
  }

  document.getElementById("carry-on-button").addEventListener("click", function () {
    const dropped = startAfresh();
    status.textContent = t("Nothing answered on this device yet: pick a project to start.");
    said.textContent = (dropped ? tn("{n} answer not sent yet was dropped.", "{n} answers not sent yet were dropped.", dropped) + " " : "") +
      t("You carry on as a new volunteer: pick a project to start.");
  });

  // --- keeping the work (engine.accounts.volunteers) ---------------------------

  const said = document.getElementById("account-status");
  let mailOn = false;  // whether the site sends email (news, confirmation links)

  // account: undefined while loading, null with no token on this device, else
  // the API's account object, or null for an anonymous volunteer (not kept yet).
  function showAccount(account) {
    const token = stored();
    document.getElementById("keep").hidden = !token || account === undefined;
    document.getElementById("your-data").hidden = !token;
    if (!token || account === undefined) return;
    const keep = document.getElementById("keep-status");
    const kept = session.keeps(account);
    document.getElementById("current-field").hidden = !kept;
    document.getElementById("delete-current-field").hidden = !kept;
    document.getElementById("confirm-email").hidden =
      !(mailOn && account && account.email && !account.email_confirmed);
    if (account && account.email) {
      keep.textContent = t("Your work is kept under {email}: sign in with it on another device to carry on there.", {email: account.email}) +
        (account.recovery_code ? " " + t("You also have a recovery code.") : "");
      document.getElementById("claim-submit").textContent = t("Change the email or password");
    } else if (account && account.recovery_code) {
      keep.textContent = t("Your work is kept with a recovery code. You may add an email and a password too.");
    }
  }

  function clearErrors(form) {
    form.querySelectorAll(".error").forEach(function (p) { p.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
      const ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (id) { return id && !id.endsWith("-error"); });
      if (ids.length) input.setAttribute("aria-describedby", ids.join(" ")); else input.removeAttribute("aria-describedby");
    });
  }

  // A refused field's message beside it, tied to it for screen readers.
  function fieldError(input, message) {
    const p = document.createElement("p");
    p.className = "error";
    p.id = input.id + "-error";
    p.textContent = message;
    input.closest(".field, .field-check").appendChild(p);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", ((input.getAttribute("aria-describedby") || "") + " " + p.id).trim());
  }

  // The API's refusals, in the page's language (the API itself speaks English).
  function explain(status_, name, detail) {
    if (status_ === 429) return t("Too many failed sign-ins: please wait a while, then try again.");
    if (name === "email" && detail === "already in use") return t("This email already keeps another volunteer's work: sign in with it.");
    if (name === "email") return t("This is not an email address.");
    if (name === "recovery_code") return t("This recovery code is not right.");
    if (name === "current_password" && detail === "needed") return t("Type your current password or recovery code to change how your work is kept.");
    if (name === "current_password") return t("This is not your current password or recovery code.");
    if (name === "password" && detail === "not right") return t("The email or the password is not right.");
    if (name === "password") return t("A password needs at least 10 characters.");
    return t("This could not be done (error {status}).", {status: status_});
  }

  // Show the API's error on the form: beside each named field, else in the status line.
  function refused(form, body, status_) {
    const error = (body && body.error) || {fields: {}};
    let placed = false;
    Object.keys(error.fields || {}).forEach(function (name) {
      const input = form.elements.namedItem(name);  // fields with form= too
      if (!input) return;
      input.closest(".field").hidden = false;  // the account changed in another tab
      const detail = error.fields[name];
      fieldError(input, explain(status_, name, typeof detail === "string" ? detail : ""));
      placed = true;
    });
    if (placed) Array.prototype.find.call(form.elements, function (el) { return el.hasAttribute("aria-invalid"); }).focus();
    else said.textContent = explain(status_, "", "");
  }

  async function send(method, path, body, token) {
    const headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body) headers["Content-Type"] = "application/json";
    const r = await fetch(api + path, {method: method, headers: headers, body: body ? JSON.stringify(body) : undefined});
    let data = null;
    try { data = await r.json(); } catch (e) { /* no body */ }
    return {ok: r.ok, status: r.status, data: data};
  }

  function values(form) {
    const out = {};
    new FormData(form).forEach(function (v, k) { out[k] = String(v); });
    return out;
  }

  document.getElementById("claim-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const form = ev.target;
    clearErrors(form);
    clearErrors(document.getElementById("current-field"));
    const r = await send("POST", "/volunteers/me/account", values(form), stored());
    if (!r.ok) { refused(form, r.data, r.status); return; }
    form.reset();
    session.store.mark(stored(), true);
    showAccount(r.data.account);
    said.textContent = t("Your work is kept under {email}.", {email: r.data.account.email}) +
      (r.data.other_devices_signed_out ? " " + t("Your other devices were signed out.") : "") +
      (r.data.confirmation_sent ? " " + t("We sent a link to confirm it: project news can go there once you follow it.") : "");
    await load();  // news by email may be had now
  });

  document.getElementById("resend-confirmation").addEventListener("click", async function () {
    const r = await send("POST", "/volunteers/me/email-confirmation", null, stored());
    if (r.ok) said.textContent = t("A new link is on its way: it works for a week.");
    else if (r.status === 429) said.textContent = t("Too many links asked for: please wait a while, then try again.");
    else said.textContent = t("This could not be done (error {status}).", {status: r.status});
  });

  document.getElementById("make-code").addEventListener("click", async function () {
    const current = document.getElementById("current-password");
    clearErrors(document.getElementById("current-field"));
    clearErrors(document.getElementById("claim-form"));
    const body = document.getElementById("current-field").hidden ? null : {current_password: current.value};
    const r = await send("POST", "/volunteers/me/recovery-code", body, stored());
    if (!r.ok) { refused(document.getElementById("claim-form"), r.data, r.status); return; }
    current.value = "";
    text("recovery-code", r.data.recovery_code);
    document.getElementById("code-shown").hidden = false;
    session.store.mark(stored(), true);
    showAccount(r.data.account);
    said.textContent = t("Your recovery code is {code}. Write it down now.", {code: r.data.recovery_code.split("").join(" ")}) +
      (r.data.other_devices_signed_out ? " " + t("Your other devices were signed out.") : "");
  });

  // tasks held for the previous volunteer are theirs, not the next one's
  function forgetHeld() {
    try {
      Object.keys(sessionStorage).forEach(function (key) {
        if (key.indexOf("bitesize.held.") === 0) sessionStorage.removeItem(key);
      });
    } catch (e) { /* storage refused */ }
  }

  function useToken(token, id) {
    session.store.set(token, id);
    session.store.mark(token, true);  // signed in: an account's work, kept
    forgetHeld();
  }

  // Answers still waiting in an answering page's outbox were leased to this
  // device's volunteer: while that volunteer's token works, they are sent
  // first. Signed out, the sign-in says who comes back: the same volunteer
  // sends them; another one (someone else's account on a shared device) could
  // not, and they are dropped and said to be, rather than refusing the
  // sign-in (the signed-out volunteer may never come back here).
  async function signIn(form, body) {
    clearErrors(form);
    const waiting = signedOut || blocked ? 0 : session.store.waiting();
    if (waiting) {
      said.textContent = tn("{n} answer is still waiting to send from this device: open its project page until it is sent, then sign in.",
                            "{n} answers are still waiting to send from this device: open their project page until they are sent, then sign in.", waiting);
      return;
    }
    const r = await send("POST", "/volunteers/sign-in", body, null);
    if (!r.ok) { refused(form, r.data, r.status); return; }
    form.reset();
    const dropped = session.store.drop(r.data.id);
    useToken(r.data.token, r.data.id);
    document.getElementById("me-record").hidden = true;
    document.querySelector("#me-projects tbody").textContent = "";
    status.hidden = false;
    signedOut = blocked = false;
    document.getElementById("carry-on").hidden = true;
    said.textContent = t("Signed in: this device now carries on with your record.") + (dropped ? " " +
      tn("{n} answer waiting on this device was another volunteer's: it was dropped.",
         "{n} answers waiting on this device were another volunteer's: they were dropped.", dropped) : "");
    await load();
  }

  document.getElementById("sign-in-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    signIn(ev.target, values(ev.target));
  });
  document.getElementById("code-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    signIn(ev.target, values(ev.target));
  });

  document.getElementById("download-data").addEventListener("click", async function () {
    const r = await fetch(api + "/volunteers/me/data", {headers: {"Authorization": "Bearer " + stored()}});
    if (!r.ok) { said.textContent = t("Your data could not be downloaded (error {status}).", {status: r.status}); return; }
    const link = document.createElement("a");
    link.href = URL.createObjectURL(await r.blob());
    link.download = "bitesize-my-data.json";
    document.body.appendChild(link);
    link.click();
    link.remove();
    said.textContent = t("Your data was downloaded.");
  });

  document.getElementById("delete-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();  // Enter in the password field sends it too
    const confirm = document.getElementById("delete-confirm");
    clearErrors(document.getElementById("your-data"));
    if (!confirm.checked) {
      fieldError(confirm, t("Tick the box first, to say you understand."));
      confirm.focus();
      return;
    }
    const current = document.getElementById("delete-current");
    const proof = document.getElementById("delete-current-field").hidden ? null : {current_password: current.value};
    const r = await send("DELETE", "/volunteers/me", proof, stored());
    const fields = (r.data && r.data.error && r.data.error.fields) || {};
    if (!r.ok && fields.current_password) {
      document.getElementById("delete-current-field").hidden = false;  // kept in another tab
      fieldError(current, fields.current_password === "needed" ? t("Type your password or recovery code to delete your account.") : explain(r.status, "current_password", fields.current_password));
      current.focus();
      return;
    }
    if (!r.ok) { said.textContent = explain(r.status, "", ""); return; }
    current.value = "";
    session.store.forget();
    document.getElementById("me-record").hidden = true;
    status.hidden = false;
    status.textContent = t("Your account is deleted. Thank you for what you did.");
    showAccount(null);
    said.textContent = t("Your account is deleted and every device is signed out.");
  });

  document.getElementById("cert-name-input").addEventListener("input", function (ev) {
    text("cert-name", ev.target.value.trim() || t("a bitesize volunteer"));
  });
  document.getElementById("print-certificate").addEventListener("click", function () { window.print(); });
  load();
})();
