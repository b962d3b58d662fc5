// The project wizard and edit page: keep the preview in step with the form.
// Everything works without this file ("Show this type's settings" and
// "Refresh preview" are plain submit buttons); with it, choosing a task type
// redraws the form for that type at once, and the preview refreshes itself a
// moment after typing stops, by posting the form into the preview's iframe
// exactly as the "Refresh preview" button does.
(function () {
  "use strict";
  const form = document.querySelector("form[data-wizard]");
  if (!form) return;
  const frame = document.querySelector("iframe[data-preview-frame]");
  const refresh = form.querySelector("[data-refresh-preview]");
  const showType = form.querySelector("[data-show-type]");
  const typeSelect = form.querySelector("[data-type-select]");
  const WAIT_MS = 600;
  let timer = null;

  function refreshPreview() {
    timer = null;
    if (refresh && frame) form.requestSubmit(refresh);
  }

  if (typeSelect && showType) {
    showType.hidden = true;  // the select does its work
    typeSelect.addEventListener("change", function () { form.requestSubmit(showType); });
  }
  form.addEventListener("input", function (ev) {
    if (ev.target === typeSelect) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(refreshPreview, WAIT_MS);
  });
  // Someone may have typed before this script ran (a slow page after the type
  // was chosen): those keystrokes fired no listener, so look at the form itself.
  function editedAlready() {
    return Array.from(form.elements).some(function (el) {
      if (el.type === "hidden" || el.type === "submit" || el.type === "button") return false;
      if (el.type === "checkbox" || el.type === "radio") return el.checked !== el.defaultChecked;
      if (el.options) {
        const options = Array.from(el.options);
        // no option marked selected in the page: the first one is the default
        if (!options.some(function (o) { return o.defaultSelected; })) return el.selectedIndex > 0;
        return options.some(function (o) { return o.selected !== o.defaultSelected; });
      }
      return "defaultValue" in el && el.value !== el.defaultValue;
    });
  }
  // The iframe's first address could not carry every value (long instructions),
  // or the form changed before we listened: send them all now.
  if (frame && ("stale" in frame.dataset || editedAlready())) refreshPreview();
})();
