// What the answering page (static/volunteer.js) keeps on this device, so that
// a reload or a crash loses nothing:
// - the tasks a tab holds (the one on screen and the preloaded ones, with
//   their leases), in sessionStorage: a reload shows them again while their
//   leases last, instead of leasing others and leaving these held (a
//   volunteer holds only a few leases at once);
// - the answers the server has not taken yet, oldest first, in localStorage
//   (memory where storage is refused): the outbox.
// Both record the volunteer each lease was issued to: one held for another
// volunteer of this device is not this one's to answer, nor to send.
(function () {
  "use strict";

  // options: projectId, session (static/session.js), preview (nothing is
  // kept), shown(n): the outbox now holds n answers.
  function open(options) {
    const session = options.session;
    const HELD = "bitesize.held." + options.projectId;
    const OUTBOX = "bitesize.outbox." + options.projectId;

    // When a lease ends by this computer's clock: `ends`, set as it arrives
    // from the server's clock, so a computer whose clock is wrong neither
    // drops the leases it holds nor extends fresh ones.
    function ends(h) { return h.ends || session.clock.local(h.lease.expires_at); }
    function live(h) {
      const me = session.store.id();
      return h && ends(h) - Date.now() > 5000 && !(h.volunteer && me && h.volunteer !== me);
    }

    const held = {
      get: function () {
        try {
          const saved = JSON.parse(sessionStorage.getItem(HELD)) || {};
          return {current: live(saved.current) ? saved.current : null,
                  queue: (saved.queue || []).filter(live)};
        } catch (e) { return {current: null, queue: []}; }
      },
      save: function (current, queue) {
        if (options.preview) return;
        try { sessionStorage.setItem(HELD, JSON.stringify({current, queue})); }
        catch (e) { /* not kept: a reload leases other tasks */ }
      },
    };

    const outbox = {
      key: OUTBOX,
      items: [],
      load: function () {
        try { this.items = JSON.parse(localStorage.getItem(OUTBOX)) || []; } catch (e) { this.items = []; }
      },
      save: function () {
        try { localStorage.setItem(OUTBOX, JSON.stringify(this.items)); } catch (e) { /* memory only */ }
        options.shown(this.items.length);
      },
    };

    return {ends: ends, held: held, outbox: outbox};
  }

  window.bitesizeKeeping = {open: open};
})();
