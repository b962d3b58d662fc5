// locate.html's script: the volunteer's marks, drawn on an SVG over the picture.
// The page's hooks for this type (web/static/volunteer.js reads
// window.bitesizeTaskTypes); the page loads this file after the fragment and
// before volunteer.js, since the site's Content-Security-Policy runs no inline script.
(function () {
  "use strict";
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
    marks.forEach(function (mark) { svg.appendChild(shapeOf(mark)); });
    if (drag && drag.end) svg.appendChild(shapeOf(boxOf(drag.start, drag.end), "drawing"));
    const n = marks.length;
    done.textContent = n ? "Done (" + n + (n === 1 ? " mark)" : " marks)") : "Nothing here (0 marks)";
    undoButton.disabled = n === 0;
  }

  function boxOf(a, b) {
    return [round(Math.min(a[0], b[0])), round(Math.min(a[1], b[1])),
            round(Math.max(a[0], b[0])), round(Math.max(a[1], b[1]))];
  }

  function add(mark) {
    if (marks.length >= most) { say("At most " + most + " marks here: send these first."); return; }
    marks.push(mark);
    say("");
  }

  function undo() { if (marks.length) { marks.pop(); say(""); draw(); } }

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
      done.click();
    }
  });

  window.bitesizeTaskTypes = window.bitesizeTaskTypes || {};
  window.bitesizeTaskTypes.locate = {
    show: function (box, payload) {
      marks = [];
      drag = null;
      say("");
      const tile = payload.tile || [];
      size = [tile[2] || 1, tile[3] || 1];  // until the picture itself says
      if (img.complete) fit(); else draw();
    },
    collect: function () {
      if (marks.length > most) throw new Error("At most " + most + " marks, please.");
      const list = marks.map(function (mark) { return mark.map(round); });
      return isPoint ? {points: list} : {boxes: list};
    },
  };
})();
