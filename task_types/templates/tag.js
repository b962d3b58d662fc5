// tag.html's script: tags toggled and typed, sent through the form.
// The page's hooks for this type (web/static/volunteer.js reads
// window.bitesizeTaskTypes); the page loads this file after the fragment and
// before volunteer.js, since the site's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  // Words in the page's language: web/static/i18n.js, loaded before this file.
  const t = window.bitesizeI18n.t;
  const root = document.querySelector(".task-tag");
  if (!root) return;
  const maxTags = Number(root.dataset.maxTags);
  const toggles = Array.from(root.querySelectorAll("[data-tag]"));
  const chips = root.querySelector("[data-tag-chips]");
  const input = root.querySelector("[data-free-tag]");
  const form = root.querySelector("form[data-answer-form]");

  // Case and blanks ignored, as the server matches tags.
  function plain(text) { return text.trim().replace(/\s+/g, " ").toLowerCase(); }

  // What a pasted tag may carry unseen (a zero-width space, a soft hyphen, a
  // direction mark, other controls, noncharacters and private characters) the
  // server refuses in a tag (task_types.classify.plain_characters), and the
  // answer with it: dropped here, before the volunteer sees the tag. The two
  // joiners stay (emoji and some scripts need them; the server takes them), and
  // so do tabs and line breaks, which become blanks. Unassigned code points
  // (\p{Cn}) stay too: which those are depends on the browser's Unicode, and
  // the server, whose Unicode may be older, takes them (a new emoji).
  const UNSEEN = /(?![\u200c\u200d\t\n\v\f\r])[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Noncharacter_Code_Point}]/gu;
  function cleaned(text) { return text.replace(UNSEEN, "").trim().replace(/\s+/g, " "); }

  // The server measures a free tag casefolded ("ß" is "ss"), so one typed within
  // the field's maxlength (the server's most) may be too long there: upper then
  // lower case makes the same expansions. Counted in characters, as Python
  // counts, not UTF-16 units. (The server's singular may take a letter or two
  // off a plural; such a tag, too long as typed, is refused here all the same.)
  const MOST = input ? Number(input.getAttribute("maxlength")) || 50 : 50;
  function tooLong(tag) { return Array.from(tag.toUpperCase().toLowerCase()).length > MOST; }

  function toggle(button, on) {
    const pressed = on === undefined ? button.getAttribute("aria-pressed") !== "true" : on;
    button.setAttribute("aria-pressed", String(pressed));
  }

  function chipTexts() {
    return chips ? Array.from(chips.querySelectorAll("[data-chip]"), function (el) {
      return el.textContent;
    }) : [];
  }

  // A typed tag that names a listed one presses its button instead. False for
  // a tag too long to take: it stays in the field, to be mended.
  function addTag(text) {
    const tag = cleaned(text);
    if (!tag) return true;
    const listed = toggles.find(function (b) { return plain(b.dataset.tag) === plain(tag); });
    if (listed) { toggle(listed, true); return true; }
    if (tooLong(tag)) return false;
    if (chipTexts().some(function (chip) { return plain(chip) === plain(tag); })) return true;
    const item = document.createElement("li");
    const label = document.createElement("span");
    label.dataset.chip = "";
    label.textContent = tag;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "\u00d7";
    remove.setAttribute("aria-label", t("Remove {tag}", {tag: tag}));
    remove.addEventListener("click", function () { item.remove(); input.focus(); });
    item.append(label, remove);
    chips.append(item);
    return true;
  }

  // Commas and semicolons end a tag; with `all`, so does the end of the text.
  // A tag too long to take stays in the field (untouched while nothing else was
  // taken, so the caret stays where the volunteer mends it); false when one did.
  function takeTyped(all) {
    const parts = input.value.split(/[,;]/);
    const rest = all ? [] : [parts.pop()];
    const left = parts.filter(function (part) { return !addTag(part); });
    if (left.length < parts.length || all && !left.length) input.value = left.concat(rest).join(",");
    return left.length === 0;
  }

  root.addEventListener("click", function (ev) {
    const button = ev.target.closest("[data-tag]");
    if (button && root.contains(button)) toggle(button);
  });
  if (input) {
    input.addEventListener("input", function () {
      if (/[,;]/.test(input.value)) takeTyped(false);
    });
    input.addEventListener("keydown", function (ev) {
      // Enter adds what was typed; on an empty field it submits the form, and
      // on a tag too long so does it, for collect() to say why beside the field.
      if (ev.key !== "Enter" || ev.isComposing || !input.value.trim()) return;
      if (takeTyped(true)) ev.preventDefault();
    });
  }
  // Number keys toggle the first nine tags, as the page's keys answer
  // elsewhere, and Enter is Done: not while typing or on another control,
  // and only while a task is on screen.
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat || root.closest("[hidden]")) return;
    const target = ev.target.closest ? ev.target : document.body;
    if (target.closest("input, textarea, select, [contenteditable]")) return;
    if (ev.key === "Enter" && !target.closest("a, button, summary")) {
      ev.preventDefault();
      form.requestSubmit();
      return;
    }
    const button = /^[1-9]$/.test(ev.key) ? toggles[Number(ev.key) - 1] : null;
    if (button) { ev.preventDefault(); toggle(button); }
  });

  window.bitesizeTaskTypes = window.bitesizeTaskTypes || {};
  window.bitesizeTaskTypes["tag"] = {
    show: function () {
      toggles.forEach(function (b) { toggle(b, false); });
      if (chips) chips.replaceChildren();
      if (input) input.value = "";
    },
    collect: function () {
      if (input && !takeTyped(true)) {  // the page says it beside the field (aria-invalid)
        throw new Error(t("This tag is too long: at most {most} characters.", {most: MOST}));
      }
      const seen = new Set();
      const tags = toggles.filter(function (b) { return b.getAttribute("aria-pressed") === "true"; })
        .map(function (b) { return b.dataset.tag; })
        .concat(chipTexts())
        .filter(function (chip) { const key = plain(chip); return !seen.has(key) && seen.add(key); });
      if (tags.length > maxTags) throw new Error(t("Choose at most {most} tags.", {most: maxTags}));
      return {tags: tags};
    },
  };
})();
