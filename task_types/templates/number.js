// number.html's script: the typed number, checked before it is sent.
// The page's hooks for this type (web/static/volunteer.js reads
// window.bitesizeTaskTypes); the page loads this file after the fragment and
// before volunteer.js, since the site's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  // Words in the page's language: web/static/i18n.js, loaded before this file.
  const t = window.bitesizeI18n.t;
  const root = document.querySelector(".task-number");
  if (!root) return;
  const input = root.querySelector("[data-number]");
  const low = input.min === "" ? null : Number(input.min);
  const high = input.max === "" ? null : Number(input.max);
  const whole = input.step === "1";

  window.bitesizeTaskTypes = window.bitesizeTaskTypes || {};
  window.bitesizeTaskTypes["number"] = {
    show: function () {
      input.value = "";
      // Ready to type where there is a keyboard; on touch screens a focus
      // would pop a keyboard over the picture.
      if (window.matchMedia("(pointer: fine)").matches) input.focus({preventScroll: true});
    },
    collect: function () {
      if (input.validity.badInput) throw new Error(t("That is not a number: use digits, and a point for decimals."));
      if (input.value.trim() === "") throw new Error(t("Type a number first."));
      const value = Number(input.value);
      if (!Number.isFinite(value)) throw new Error(t("That is not a number."));
      if (low !== null && value < low) throw new Error(t("The answer must be at least {low}.", {low: low}));
      if (high !== null && value > high) throw new Error(t("The answer must be at most {high}.", {high: high}));
      if (whole && !Number.isInteger(value)) throw new Error(t("Type a whole number."));
      return {value: value};
    },
  };
})();
