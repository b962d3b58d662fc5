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

  const store = {
    get: function () { return read(KEY); },
    set: function (token) { write(KEY, token); },
    forget: function () { remove(KEY); remove(KEPT); },
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
          const fresh = (await r.json()).token;
          store.set(fresh);
          return fresh;
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
    async function call(method, path, body) {
      const used = await token();
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

    return {call: call};
  }

  // The API's error object of a refusal ({code, message, fields}), {} if none.
  async function refusal(r) {
    const body = await r.clone().json().catch(function () { return {}; });
    return (body && body.error) || {};
  }

  window.bitesizeSession = {store: store, keeps: keeps, clock: clock, open: open, refusal: refusal};
})();
