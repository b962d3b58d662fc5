// The home page's progress bars: each fill as wide as its data-done percent.
// Set from here because the site's Content-Security-Policy allows no inline
// style attribute (style="width: …"); styles set by a script's own code are fine.
(function () {
  "use strict";
  document.querySelectorAll(".progress [data-done]").forEach(function (fill) {
    const done = Math.min(Math.max(Number(fill.dataset.done) || 0, 0), 100);
    fill.style.width = done + "%";
  });
})();
