// The volunteer's session, shared by the answering page (volunteer.js) and
// their own page (me.js): the token, kept in localStorage so that a reload or
// another tab stays the same volunteer (in memory, for the page's lifetime,
// where storage is refused), and whether that token keeps an account's work.
// For the answering page also: signing up, calling the API with the token, and
// the server's clock.
(function () {
  "use strict";
  const KEY = "bitesize.volunteer";
  // The token last seen keeping an account's work (signed in with it, or the
  // work kept on /me): once it stops working, its volunteer was signed out by a
  // change of password on another device, and must sign in again rather than
  // carry on as a stranger who owns none of that work.
  const KEPT = "bitesize.volunteer.kept";
  // The volunteer the token is (their id, from sign-up, sign-in or GET
  // /volunteers/me): a lease, and so an answer waiting in an outbox, is that
  // volunteer's, and sent with another's token it is refused (410) and lost.
  // A new token of the same volunteer (signed in again) keeps their answers.
  const ID = "bitesize.volunteer.id";
  // The answering pages' outboxes, one a project (static/volunteer.js).
  const OUTBOX = "bitesize.outbox.";
  const memory = {};
  function read(key) {
    try { return localStorage.getItem(key); } catch (e) { return memory[key] || null; }
  }
  function write(key, value) {
    memory[key] = value;
    try { localStorage.setItem(key, value); } catch (e) { /* memory only */ }
  }
  function remove(key) {
    delete memory[key];
    try { localStorage.removeItem(key); } catch (e) { /* memory only */ }
  }

  let mine = read(ID);  // the volunteer this page works for, as it last knew

  function outboxes() {
    const keys = [];
    try {
      for (let i = 0; i < localStorage.length; i++) {
        if (localStorage.key(i).indexOf(OUTBOX) === 0) keys.push(localStorage.key(i));
      }
    } catch (e) { /* storage refused: each page's outbox is in its memory */ }
    return keys;
  }
  function items(key) {
    try { return JSON.parse(read(key)) || []; } catch (e) { return []; }
  }

  const store = {
    get: function () { return read(KEY); },
    set: function (token, id) {
      write(KEY, token);
      if (id === undefined || id === null) remove(ID); else write(ID, String(id));
      mine = read(ID);
    },
    id: function () { return read(ID); },
    // the id a working token answered with (GET /volunteers/me): a device that
    // kept its token from before ids were kept learns it
    known: function (token, id) {
      if (token && read(KEY) === token && id !== undefined && id !== null) {
        write(ID, String(id));
        mine = read(ID);
      }
    },
    forget: function () { remove(KEY); remove(KEPT); remove(ID); },
    // Answers waiting to send in every project's outbox.
    waiting: function () {
      return outboxes().reduce(function (n, key) { return n + items(key).length; }, 0);
    },
    // Drops, from every outbox but `except`'s, the answers of any volunteer but
    // `keep` (all with none): sent with another volunteer's token they would be
    // refused, unseen. An answer whose volunteer is not known (kept before ids
    // were) stays. Returns how many were dropped, for the page to say.
    drop: function (keep, except) {
      let dropped = 0;
      outboxes().forEach(function (key) {
        if (key === except) return;
        const all = items(key);
        const left = keep ? all.filter(function (item) {
          const owner = item.volunteer || read(ID);
          return !owner || owner === String(keep);
        }) : [];
        dropped += all.length - left.length;
        if (left.length) write(key, JSON.stringify(left)); else remove(key);
      });
      return dropped;
    },
    mark: function (token, kept) {  // whether this token's work is kept under an account
      if (kept && token) write(KEPT, token);
      else if (read(KEPT) === token) remove(KEPT);
    },
    kept: function (token) { return !!token && read(KEPT) === token; },
  };

  // An account of GET /volunteers/me keeps the work once it has an email or a
  // recovery code.
  function keeps(account) { return !!(account && (account.email || account.recovery_code)); }

  // The server's clock less this computer's, from the Date header of the latest
  // reply: a lease ends at the server's time (expires_at), and a computer whose
  // clock is a minute fast would take its fresh leases for ended ones. Date has
  // whole seconds: the server's time is taken as the end of that second, so a
  // lease may seem up to a second shorter than it is, never longer.
  let skew = 0;
  const clock = {
    learn: function (r) {
      const said = Date.parse(r.headers.get("Date") || "");
      if (!isNaN(said)) skew = said + 999 - Date.now();
    },
    local: function (iso) { return Date.parse(iso) - skew; },  // the server's time, here
  };

  // The answering page's session with the API. `page` hears of it:
  // say(text) while signing up, ended(why) when the token stopped working for
  // good ("blocked", "signed-out"), renewed() when a new volunteer replaced one
  // the server no longer knows.
  function open(api, page) {
    const t = window.bitesizeI18n.t;
    let starting = null;  // one sign-up at a time, however many calls wait for it
    let solved = null;  // a solved challenge not used yet: kept across a 429's wait

    // One sign-up. Where the site asks new volunteers for proof of work (a 422
    // coded challenge_required), the page asks for a challenge, solves it
    // (static/signup_work.js) and signs up with it.
    async function signUp() {
      for (let tries = 0; ; tries += 1) {
        const r = await fetch(api + "/volunteers", solved ? {method: "POST",
          headers: {"Content-Type": "application/json"}, body: JSON.stringify(solved)}
          : {method: "POST"});
        if (r.status !== 422 || tries > 1) {
          if (r.status !== 429) solved = null;
          return r;
        }
        // no challenge sent, or ours expired meanwhile: solve a new one
        const refused = await refusal(r);
        if (refused.code !== "challenge_required"
            && (refused.fields || {}).challenge !== "expired") return r;
        page.say(t("Getting ready…"));
        const asked = await (await fetch(api + "/volunteers/challenge")).json();
        const nonce = await window.bitesizeSignUpWork.solve(asked.challenge, asked.bits);
        solved = {challenge: asked.challenge, nonce: nonce};
      }
    }

    async function token() {
      const kept = store.get();
      if (kept) return kept;
      if (!starting) {
        starting = (async function () {
          let r = await signUp();
          // Many people starting at once behind one address (a school class) may
          // meet the sign-up limit: wait as the server says, then try again.
          for (let tries = 0; r.status === 429 && tries < 3; tries += 1) {
            const wait = Math.min(Number(r.headers.get("Retry-After")) || 5, 60);
            page.say(t("Many people are starting at once: trying again in {seconds} s", {seconds: wait}));
            await new Promise(function (done) { setTimeout(done, wait * 1000); });
            r = await signUp();
          }
          page.say("");
          if (!r.ok) throw new Error(t("could not start a session ({status})", {status: r.status}));
          const fresh = await r.json();
          store.set(fresh.token, fresh.id);
          return fresh.token;
        })().finally(function () { starting = null; });
      }
      return starting;
    }

    async function send(method, path, body, used) {
      const headers = {"Authorization": "Bearer " + used};
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const r = await fetch(api + path, {method: method, headers: headers,
        body: body === undefined ? undefined : JSON.stringify(body)});
      clock.learn(r);
      return r;
    }

    // A 401 says why in its fields (README: Who is calling). A volunteer blocked
    // platform-wide stops there: signing up again would carry on behind the
    // block. A token that kept an account's work was signed out elsewhere: sign
    // in again. Any other (an anonymous token the server no longer knows)
    // starts a new volunteer, and only a read is made again as them: a write
    // made for the old volunteer's lease (an answer, a skip) is not theirs.
    // `owner`, where given, is the volunteer a write belongs to (the one its
    // lease was issued to): made with another volunteer's token it would be
    // refused and lost unseen, so it is not sent, and call() answers null.
    async function call(method, path, body, owner) {
      const used = await token();
      if (owner && store.id() && String(owner) !== store.id()) return null;
      const r = await send(method, path, body, used);
      if (r.status !== 401) return r;
      if (((await refusal(r)).fields || {}).token === "blocked") { page.ended("blocked"); return r; }
      if (store.kept(used)) { page.ended("signed-out"); return r; }
      if (store.get() === used) {  // unless a parallel call started afresh already
        store.forget();
        page.renewed();
      }
      return method === "GET" ? send(method, path, body, await token()) : r;
    }

    // Another tab changed the volunteer (the server forgot the token and a new
    // one started there, or someone carried on as a new volunteer on /me):
    // this page's leases and unsent answers are the old volunteer's, and it
    // starts again as the new one. A token removed without a new volunteer yet
    // is left to the next call (a write then meets `owner`).
    window.addEventListener("storage", function (ev) {
      if (ev.key !== KEY && ev.key !== ID && ev.key !== null) return;
      const now = store.id();
      if (!now || now === mine) return;
      const was = mine;
      mine = now;
      if (was) page.renewed();
    });

    return {call: call};
  }

  // The API's error object of a refusal ({code, message, fields}), {} if none.
  async function refusal(r) {
    const body = await r.clone().json().catch(function () { return {}; });
    return (body && body.error) || {};
  }

  window.bitesizeSession = {store: store, keeps: keeps, clock: clock, open: open, refusal: refusal};
})();
