// The volunteer pages' words in the page's language: the server puts the
// page's catalogue (web/i18n.py, js_catalogue) in the data block #i18n, and
// the page's scripts (volunteer.js, me.js, a task type's script) ask
// window.bitesizeI18n for each string by its English text. `{name}` in a
// string is filled from `values`; a plural picks its form by the language's
// rules (Intl.PluralRules), so "{n} task" and "{n} tasks" are both messages.
(function () {
  "use strict";
  let catalogue = {lang: document.documentElement.lang || "en", messages: {}};
  const block = document.getElementById("i18n");
  if (block) {
    try { catalogue = JSON.parse(block.textContent); } catch (e) { /* English, as written */ }
  }
  const lang = catalogue.lang || "en";
  const plurals = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;

  function fill(text, values) {
    if (!values) return text;
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  function t(english, values) {
    const said = catalogue.messages[english];
    return fill(typeof said === "string" && said ? said : english, values);
  }

  // one: the singular's English text, other: the plural's; values.n or n decides.
  function tn(one, other, n, values) {
    const form = plurals ? plurals.select(n) : (n === 1 ? "one" : "other");
    return t(form === "one" ? one : other, Object.assign({n: number(n)}, values || {}));
  }

  function number(n) { return Number(n).toLocaleString(lang); }

  window.bitesizeI18n = {lang: lang, t: t, tn: tn, number: number};
})();
