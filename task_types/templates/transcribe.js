// transcribe.html's script: the typed line and its [unclear] mark.
// The page's hooks for this type (web/static/volunteer.js reads
// window.bitesizeTaskTypes); the page loads this file after the fragment and
// before volunteer.js, since the site's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  // Words in the page's language: web/static/i18n.js, loaded before this file.
  const t = window.bitesizeI18n.t;
  const root = document.querySelector(".task-transcribe");
  if (!root) return;
  const input = root.querySelector("[data-line-text]");
  const unclear = root.querySelector("[data-unclear]");
  const pageLink = root.querySelector("[data-page-link]");
  const MARK = "[unclear]";

  // The mark goes where the cursor is, as a word of its own.
  function insertMark() {
    const start = input.selectionStart === null ? input.value.length : input.selectionStart;
    const end = input.selectionEnd === null ? start : input.selectionEnd;
    const before = input.value.slice(0, start);
    const after = input.value.slice(end);
    const mark = (before && !/\s$/.test(before) ? " " : "") + MARK +
      (!after || !/^\s/.test(after) ? " " : "");
    input.value = before + mark + after;
    const at = before.length + mark.length;
    input.focus();
    input.setSelectionRange(at, at);
  }

  // Pressing the button must not take the focus (and a phone's keyboard) away.
  unclear.addEventListener("pointerdown", function (ev) { ev.preventDefault(); });
  unclear.addEventListener("click", insertMark);

  window.bitesizeTaskTypes = window.bitesizeTaskTypes || {};
  window.bitesizeTaskTypes["transcribe"] = {
    show: function (box, payload) {
      input.value = "";
      const page = payload && typeof payload.page === "string" ? payload.page : "";
      pageLink.parentElement.hidden = !page;
      if (page) pageLink.href = page; else pageLink.removeAttribute("href");
      input.focus({preventScroll: true});
    },
    collect: function () {
      const text = input.value.trim();
      if (!text) throw new Error(t("Type the line, or [unclear] where you cannot read it."));
      return {text: text};
    },
  };
})();
