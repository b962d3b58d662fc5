// The charity's tutorial on the answering page (static/volunteer.js): shown
// before a volunteer's first task in a project (remembered on this device),
// and again whenever they ask, one screen at a time with the focus on the way
// on, so that keyboard and screen-reader users go through it as others do.
(function () {
  "use strict";

  // null when the project has no tutorial (project.html's #tutorial).
  function open(projectId) {
    const tutorial = document.getElementById("tutorial");
    if (!tutorial) return null;
    const t = window.bitesizeI18n.t;
    const SEEN = "bitesize.tutorial." + projectId;

    // Resolves once the volunteer starts (or skips it).
    function run() {
      const screens = Array.from(tutorial.querySelectorAll(".tutorial-screen"));
      const next = document.getElementById("tutorial-next");
      const start = document.getElementById("tutorial-start");
      const step = document.getElementById("tutorial-step");
      const skip = document.getElementById("tutorial-skip");
      let at = 0;
      function showScreen(n) {
        at = n;
        screens.forEach(function (s, i) { s.hidden = i !== n; });
        step.textContent = t("Step {step} of {steps}", {step: n + 1, steps: screens.length});
        const last = n === screens.length - 1;
        next.hidden = last; start.hidden = !last;
        (last ? start : next).focus();
      }
      tutorial.hidden = false;
      return new Promise(function (resolve) {
        function finish() {
          try { localStorage.setItem(SEEN, "seen"); } catch (e) { /* asked again next time */ }
          tutorial.hidden = true;
          next.onclick = start.onclick = skip.onclick = null;
          resolve();
        }
        next.onclick = function () { showScreen(at + 1); };
        start.onclick = finish;
        skip.onclick = finish;
        showScreen(0);
      });
    }

    function seen() {
      try { return localStorage.getItem(SEEN) === "seen"; } catch (e) { return false; }
    }

    return {run: run, seen: seen, showing: function () { return !tutorial.hidden; }};
  }

  window.bitesizeTutorial = {open: open};
})();
