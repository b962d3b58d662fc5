// What keeps a volunteer going on the answering page (static/volunteer.js):
// each answer counted and thanked, the charity's answer told after a practice
// (gold) task, and, at natural stopping points (MILESTONES answers this visit,
// or MINUTES of it), what the answers achieved and the way out. Studies of
// volunteers (../shared/research/peers.md) found thanks and a sense of
// contribution keep them; a count alone does not.
(function () {
  "use strict";
  const MILESTONES = [5, 15, 30, 50, 100, 200];
  const MINUTES = [10, 20, 40, 60, 90, 120];  // of a visit, from its first answer

  // options: projectId, api, record() (the volunteer's GET /volunteers/me),
  // taskBox (focused again after "Keep going").
  function open(options) {
    const i18n = window.bitesizeI18n;
    const t = i18n.t, tn = i18n.tn, number = i18n.number;
    const projectId = options.projectId;
    // What this visit did, kept for the tab like the tasks it holds.
    const COUNT = "bitesize.count." + projectId;
    const VISIT = "bitesize.visit." + projectId;
    const answered = document.getElementById("answered");
    const thanks = document.getElementById("saved");
    const feedbackBox = document.getElementById("feedback");
    const feedbackText = document.getElementById("feedback-text");
    const milestone = document.getElementById("milestone");
    const milestoneText = document.getElementById("milestone-text");
    const progressLine = document.getElementById("project-progress");
    let count = 0, savedTimer = null;
    try { count = Number(sessionStorage.getItem(COUNT)) || 0; } catch (e) { count = 0; }
    answered.textContent = number(count);

    function counted() {
      count += 1;
      try { sessionStorage.setItem(COUNT, String(count)); } catch (e) { /* this page only */ }
      answered.textContent = number(count);
      thank(t("Saved, thank you!"));
      feedbackBox.hidden = true;
      if (MILESTONES.includes(count)) { celebrate(); return; }
      const minutes = visitMinutes();
      const mark = MINUTES.filter(function (m) { return m <= minutes; }).pop();
      if (mark && mark > lastMark()) { lastMark(mark); celebrate(mark); }
    }

    // Learn by doing: on a volunteer's first practice (gold) tasks the answer's
    // reply carries the charity's answer; said about the task just answered.
    function tell(feedback) {
      const expected = feedback.expected === null || feedback.expected === undefined
        ? null : "“" + feedback.expected + "”";
      const practice = " " + t("(It was a practice task, to help you learn.)");
      feedbackText.textContent = (feedback.right
        ? (expected ? t("Right: on the task you just answered, the charity's answer is {answer} too.", {answer: expected})
                    : t("Right: on the task you just answered, the charity's answer is yours too."))
        : (expected ? t("Not quite: on the task you just answered, the charity's answer is {answer}.", {answer: expected})
                    : t("Not quite: on the task you just answered, your answer scored {percent} out of 100.",
                        {percent: Math.round(feedback.score * 100)}))) + practice;
      feedbackBox.classList.toggle("right", !!feedback.right);
      feedbackBox.hidden = false;
    }

    function thank(text) {  // said briefly, in a polite live region
      thanks.textContent = text;
      clearTimeout(savedTimer);
      savedTimer = setTimeout(function () { thanks.textContent = ""; }, 4000);
    }
    // An answer refused on this page: the last one's thanks must not stand beside it.
    function hush() { clearTimeout(savedTimer); thanks.textContent = ""; }

    // When this visit's first answer was taken, and the last time mark said.
    function visitMinutes() {
      try {
        let began = Number(sessionStorage.getItem(VISIT + ".start"));
        if (!began) { began = Date.now(); sessionStorage.setItem(VISIT + ".start", String(began)); }
        return (Date.now() - began) / 60000;
      } catch (e) { return 0; }
    }
    function lastMark(set) {
      try {
        if (set) sessionStorage.setItem(VISIT + ".mark", String(set));
        return Number(sessionStorage.getItem(VISIT + ".mark")) || 0;
      } catch (e) { return set || 0; }
    }

    async function celebrate(minutes) {
      let finished = 0, done = null;
      try {
        const mine = (await options.record()).projects.find(function (p) { return String(p.id) === projectId; });
        finished = mine ? mine.finished : 0;
        const r = await fetch(options.api + "/projects/" + projectId);
        if (r.ok) done = (await r.json()).progress;
      } catch (e) { /* said without the figures */ }
      if (done && progressLine) {
        progressLine.textContent = t("{done} of {tasks} tasks done", {done: number(done.retired + done.settled), tasks: number(done.tasks)});
      }
      milestoneText.textContent = [
        minutes ? t("You have given {minutes} minutes this visit, {count} tasks: thank you!", {minutes: minutes, count: number(count)})
                : t("That is {count} tasks this visit: thank you!", {count: number(count)}),
        finished ? tn("Your answers have helped finish {n} task of this project so far: results the charity can use now.",
                      "Your answers have helped finish {n} tasks of this project so far: results the charity can use now.", finished)
                 : t("Each one brings a task closer to a result the charity can use."),
        t("Keep going, or take a break: every few minutes help.")].join(" ");
      milestone.hidden = false;
    }

    document.getElementById("keep-going").addEventListener("click", function () {
      milestone.hidden = true;
      const first = options.taskBox.querySelector("button:not([disabled]), input, textarea, select");
      if (first) first.focus();
    });

    return {counted: counted, tell: tell, thank: thank, hush: hush};
  }

  window.bitesizeEncouragement = {open: open};
})();
