// locate.html's script: the volunteer's marks, drawn on an SVG over the picture.
// The page's hooks for this type (web/static/volunteer.js reads
// window.bitesizeTaskTypes); the page loads this file after the fragment and
// before volunteer.js, since the site's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
  // Words in the page's language: web/static/i18n.js, loaded before this file.
  const t = window.bitesizeI18n.t, tn = window.bitesizeI18n.tn;
  const root = document.querySelector(".task-locate");
  if (!root) return;
  const img = root.querySelector(".locate-stage img");
  const svg = root.querySelector(".locate-marks");
  const note = root.querySelector("[data-locate-note]");
  const undoButton = root.querySelector("[data-locate-undo]");
  const done = root.querySelector("[data-locate-done]");
  const isPoint = root.dataset.shape === "point";
  const most = Number(root.dataset.maxMarks);
  const SVG = "http://www.w3.org/2000/svg";
  const TAP = 10;  // screen px a pointer may wander and still be a tap
  let marks = [];  // [x1, y1, x2, y2] or [x, y], natural pixels, 0.1 px
  let size = [1, 1];  // the picture's natural width and height
  let drag = null;  // {id, start: natural [x, y], screen: [x, y], end}
  // The keyboard's crosshair (natural px) while the picture has focus, and the
  // corner of a box begun with Space (null: none begun).
  let cursor = null;
  let anchor = null;

  function round(v) { return Math.round(v * 10) / 10; }
  function clamp(v, low, high) { return Math.min(Math.max(v, low), high); }

  // Screen position -> the picture's natural pixels, kept on the picture:
  // a drag that slips past the edge stops at it.
  function natural(ev) {
    const r = svg.getBoundingClientRect();
    return [clamp((ev.clientX - r.left) * size[0] / (r.width || 1), 0, size[0]),
            clamp((ev.clientY - r.top) * size[1] / (r.height || 1), 0, size[1])];
  }

  function say(text) { note.textContent = text; note.hidden = !text; }

  function shapeOf(mark, cls) {
    const el = document.createElementNS(SVG, mark.length === 2 ? "circle" : "rect");
    if (mark.length === 2) {
      const r = svg.getBoundingClientRect();
      el.setAttribute("cx", mark[0]); el.setAttribute("cy", mark[1]);
      el.setAttribute("r", 7 * size[0] / (r.width || size[0]));  // ~7 screen px
    } else {
      el.setAttribute("x", mark[0]); el.setAttribute("y", mark[1]);
      el.setAttribute("width", mark[2] - mark[0]); el.setAttribute("height", mark[3] - mark[1]);
    }
    if (cls) el.setAttribute("class", cls);
    return el;
  }

  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    marks.forEach(function (mark) {
      svg.appendChild(shapeOf(mark, "halo"));
      svg.appendChild(shapeOf(mark));
    });
    if (drag && drag.end) svg.appendChild(shapeOf(boxOf(drag.start, drag.end), "drawing"));
    if (anchor && cursor) svg.appendChild(shapeOf(boxOf(anchor, cursor), "drawing"));
    if (cursor) drawCursor();
    const n = marks.length;
    done.textContent = n ? tn("Done ({n} mark)", "Done ({n} marks)", n) : t("Nothing here (0 marks)");
    undoButton.disabled = n === 0;
  }

  // A cross at the keyboard's crosshair: dark under yellow, like the marks.
  function drawCursor() {
    const r = svg.getBoundingClientRect();
    const arm = 12 * size[0] / (r.width || size[0]);
    [["cursor", 0], ["cursor-line", 0]].forEach(function (kind) {
      [[-arm, 0, arm, 0], [0, -arm, 0, arm]].forEach(function (d) {
        const line = document.createElementNS(SVG, "line");
        line.setAttribute("x1", cursor[0] + d[0]); line.setAttribute("y1", cursor[1] + d[1]);
        line.setAttribute("x2", cursor[0] + d[2]); line.setAttribute("y2", cursor[1] + d[3]);
        line.setAttribute("class", kind[0]);
        svg.appendChild(line);
      });
    });
  }

  function boxOf(a, b) {
    return [round(Math.min(a[0], b[0])), round(Math.min(a[1], b[1])),
            round(Math.max(a[0], b[0])), round(Math.max(a[1], b[1]))];
  }

  function add(mark) {
    if (marks.length >= most) { say(t("At most {most} marks here: send these first.", {most: most})); return; }
    marks.push(mark);
    say("");
  }

  function undo() {
    if (!marks.length) return;
    marks.pop();
    say(marks.length ? t("Last mark removed: {left} left.", {left: marks.length}) : t("Last mark removed: none left."));
    draw();
  }

  // By keyboard: arrows move the crosshair (2% of the picture, 10% with Shift),
  // Space marks a point or starts and ends a box, Delete removes the last mark.
  svg.addEventListener("focus", function () {
    if (!cursor) cursor = [round(size[0] / 2), round(size[1] / 2)];
    draw();
  });
  svg.addEventListener("blur", function () { cursor = null; anchor = null; draw(); });
  svg.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const step = (ev.shiftKey ? 0.1 : 0.02);
    const moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
    if (moves[ev.key]) {
      ev.preventDefault();
      cursor = [round(clamp(cursor[0] + moves[ev.key][0] * size[0], 0, size[0])),
                round(clamp(cursor[1] + moves[ev.key][1] * size[1], 0, size[1]))];
      draw();
    } else if (ev.key === " " || ev.key === "Spacebar" || ev.key === "Enter") {
      ev.preventDefault();
      ev.stopPropagation();  // on the picture, Enter marks; the page's Enter sends
      if (ev.repeat) return;
      if (isPoint) {
        const before = marks.length;
        add([cursor[0], cursor[1]]);
        if (marks.length > before) say(t("Point {n} marked.", {n: marks.length}));
      } else if (!anchor) {
        anchor = cursor.slice();
        say(t("Box started: move to the opposite corner, then Space."));
      } else {
        const box = boxOf(anchor, cursor);
        anchor = null;
        if (box[2] - box[0] >= 1 && box[3] - box[1] >= 1) {
          const before = marks.length;
          add(box);
          if (marks.length > before) say(t("Box {n} marked.", {n: marks.length}));
        } else {
          say(t("That box has no size: move the crosshair, then Space again."));
        }
      }
      draw();
    } else if (ev.key === "Delete" || ev.key === "Backspace") {
      ev.preventDefault();
      ev.stopPropagation();  // the page's own Backspace (undo) would remove a second
      undo();
    } else if (ev.key === "Escape" && anchor) {
      anchor = null;
      say(t("Box abandoned."));
      draw();
    }
  });

  function fit() {
    if (img.naturalWidth) size = [img.naturalWidth, img.naturalHeight];
    svg.setAttribute("viewBox", "0 0 " + size[0] + " " + size[1]);
    draw();
  }

  svg.addEventListener("pointerdown", function (ev) {
    if (drag || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    svg.setPointerCapture(ev.pointerId);
    drag = {id: ev.pointerId, start: natural(ev), screen: [ev.clientX, ev.clientY], end: null};
  });
  svg.addEventListener("pointermove", function (ev) {
    if (!drag || ev.pointerId !== drag.id || isPoint) return;
    drag.end = natural(ev);
    draw();
  });
  svg.addEventListener("pointerup", function (ev) {
    if (!drag || ev.pointerId !== drag.id) return;
    const moved = Math.hypot(ev.clientX - drag.screen[0], ev.clientY - drag.screen[1]);
    const end = natural(ev);
    if (isPoint && moved <= TAP) add([round(end[0]), round(end[1])]);
    if (!isPoint && moved > TAP / 2) {
      const box = boxOf(drag.start, end);
      if (box[2] - box[0] >= 1 && box[3] - box[1] >= 1) add(box);
    }
    drag = null;
    draw();
  });
  svg.addEventListener("pointercancel", function () { drag = null; draw(); });
  img.addEventListener("load", fit);
  window.addEventListener("resize", draw);
  undoButton.addEventListener("click", undo);

  document.addEventListener("keydown", function (ev) {
    if (root.closest("[hidden]") || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, [contenteditable]")) return;
    if (ev.key === "z" || ev.key === "Z" || ev.key === "Backspace") {
      ev.preventDefault();
      undo();
    } else if (ev.key === "Enter" && !(ev.target.closest && ev.target.closest("button, a"))) {
      ev.preventDefault();  // a focused button or link answers Enter itself
      // Enter sends marks; "nothing here" is said only with its own button, so a
      // stray Enter never records an empty tile that has some.
      if (marks.length) done.click();
      else say(t("No marks yet: mark them, or press “Nothing here” if there are none."));
    }
  });

  window.bitesizeTaskTypes = window.bitesizeTaskTypes || {};
  window.bitesizeTaskTypes.locate = {
    show: function (box, payload) {
      marks = [];
      drag = null;
      anchor = null;
      say("");
      const tile = payload.tile || [];
      size = [tile[2] || 1, tile[3] || 1];  // until the picture itself says
      if (img.complete) fit(); else draw();
    },
    collect: function () {
      if (marks.length > most) throw new Error(t("At most {most} marks, please.", {most: most}));
      const list = marks.map(function (mark) { return mark.map(round); });
      return isPoint ? {points: list} : {boxes: list};
    },
  };
})();
