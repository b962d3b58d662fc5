// The home page's progress bars: each fill as wide as its data-done percent,
// and the projects this device's volunteer has finished.
// Set from here because the site's Content-Security-Policy allows no inline
// style attribute (style="width: …"); styles set by a script's own code are fine.
(function () {
  "use strict";
  document.querySelectorAll(".progress [data-done]").forEach(function (fill) {
    const done = Math.min(Math.max(Number(fill.dataset.done) || 0, 0), 100);
    fill.style.width = done + "%";
  });
  // A project where this device's volunteer found nothing left (static/volunteer.js
  // remembers it) says so, and offers to look again rather than to start.
  const i18n = window.bitesizeI18n;
  document.querySelectorAll(".project-card[data-project]").forEach(function (card) {
    let finished = null;
    try { finished = localStorage.getItem("bitesize.finished." + card.dataset.project); } catch (e) { return; }
    if (!finished) return;
    const start = card.querySelector("a.start");
    const name = card.querySelector("h2").textContent;
    const note = document.createElement("p");
    note.className = "finished-here";
    note.textContent = i18n.t("Done for now: there is nothing left for you here. Thank you!");
    card.insertBefore(note, start);
    start.textContent = i18n.t("Look again");
    start.setAttribute("aria-label", i18n.t("Look again: {name}", {name: name}));
    start.classList.add("secondary");
  });
})();
