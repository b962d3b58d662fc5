// The quality desk's contested task page: settle from the keyboard.
// Everything works without this file (the answers are radio buttons, "Settle"
// is a plain submit button, "Next contested task" and "Previous contested
// task" are links); with it, 1-9 pick the Nth answer, Enter settles on the
// answer picked, J and K follow the next and previous links. No key does
// anything while the admin types in a field, or with Ctrl, Alt or Meta held
// (the browser's own shortcuts stay theirs). The "Use these single-key
// shortcuts" box turns them off (WCAG 2.1.4: a speech-input user's words can
// fire single keys), remembered in this browser.
(function () {
  "use strict";
  const form = document.querySelector("form[data-settle-form]");
  const toggle = document.querySelector("input[data-keys-switch]");
  const STORED = "bitesize.desk.keys";

  function keysOn() {
    return !toggle || toggle.checked;
  }

  if (toggle) {
    try {
      toggle.checked = window.localStorage.getItem(STORED) !== "off";
    } catch (e) { /* storage refused: the box starts on */ }
    toggle.addEventListener("change", function () {
      try {
        window.localStorage.setItem(STORED, toggle.checked ? "on" : "off");
      } catch (e) { /* not remembered, still honoured on this page */ }
    });
  }

  function typing(target) {
    if (!target || !target.closest) return false;
    if (target.isContentEditable) return true;
    const field = target.closest("input, textarea, select");
    if (!field) return false;
    return !(field.tagName === "INPUT" && (field.type === "radio" || field.type === "checkbox"));
  }

  function follow(rel) {
    const link = document.querySelector('a[rel="' + rel + '"]');
    if (link) window.location.assign(link.href);
  }

  function pick(number) {
    if (!form) return;
    const radio = form.querySelector('input[type="radio"][data-key="' + number + '"]');
    if (!radio) return;
    radio.checked = true;
    radio.focus();
  }

  function settle(ev) {
    if (!form) return;
    const picked = form.querySelector('input[type="radio"][name="choice"]:checked');
    if (!picked) return;
    // Enter on a link or a button does what it always does.
    if (ev.target && ev.target.closest && ev.target.closest("a, button, summary")) return;
    ev.preventDefault();
    form.requestSubmit();
  }

  document.addEventListener("keydown", function (ev) {
    if (!keysOn()) return;
    if (ev.defaultPrevented || ev.ctrlKey || ev.altKey || ev.metaKey || ev.isComposing) return;
    if (typing(ev.target)) return;
    if (/^[1-9]$/.test(ev.key)) {
      pick(ev.key);
    } else if (ev.key === "Enter") {
      settle(ev);
    } else if (ev.key === "j" || ev.key === "J") {
      follow("next");
    } else if (ev.key === "k" || ev.key === "K") {
      follow("prev");
    }
  });
})();
