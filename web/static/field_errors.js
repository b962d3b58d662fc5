// A refused answer said beside its field on the answering page
// (static/volunteer.js): aria-invalid, aria-describedby and an alert, so that
// it is heard at once and read again with the field, not lost at the top of
// the page.
(function () {
  "use strict";
  const FIELDS = "input:not([type=hidden]):not([type=radio]):not([type=checkbox]), textarea, select";

  // false when the form has no field to say it beside (the caller says it).
  function refuse(form, text) {
    const field = form.querySelector(FIELDS);
    if (!field) return false;
    let note = form.querySelector(".task-error");
    if (!note) {
      note = document.createElement("p");
      note.className = "error task-error";
      note.id = "task-error";
      note.setAttribute("role", "alert");
      form.appendChild(note);
    }
    note.textContent = text;
    field.setAttribute("aria-invalid", "true");
    const ids = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    if (!ids.includes(note.id)) field.setAttribute("aria-describedby", ids.concat(note.id).join(" "));
    field.focus();
    return true;
  }

  // Every refusal said in `box`, and the marks it left on fields.
  function clear(box) {
    box.querySelectorAll(".task-error").forEach(function (note) {
      note.closest("form").querySelectorAll("[aria-invalid]").forEach(function (field) {
        field.removeAttribute("aria-invalid");
        const ids = (field.getAttribute("aria-describedby") || "").split(" ")
          .filter(function (id) { return id && id !== note.id; });
        if (ids.length) field.setAttribute("aria-describedby", ids.join(" "));
        else field.removeAttribute("aria-describedby");
      });
      note.remove();
    });
  }

  window.bitesizeFieldErrors = {refuse: refuse, clear: clear};
})();
