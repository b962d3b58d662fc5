/* The uploads panel of a console project page (web/console/uploads.py).
 *
 * The panel works without this script: a plain form, and a Refresh link for the
 * jobs. With it: files can be dropped on the drop zone, the upload goes by
 * XMLHttpRequest so a bar shows the bytes sent, and the jobs' rows follow the
 * split live by polling the panel's JSON status (each job's row comes as
 * server-rendered HTML, so the numbers are drawn in one place only).
 * No inline script: everything it needs is in data attributes.
 */
(function () {
  "use strict";

  var POLL_MS = 1000;
  var panel = document.querySelector("[data-uploads]");
  var form = panel && panel.querySelector("[data-upload-form]");
  if (!form) { return; }  // no panel, or an archived project's: nothing to send
  var input = form.querySelector("input[type=file]");
  var zone = form.querySelector("[data-dropzone]");
  var chosen = form.querySelector("[data-chosen]");
  var errorsBox = form.querySelector("[data-upload-errors]");
  var progressBox = form.querySelector("[data-upload-progress]");
  var bytesBar = form.querySelector("[data-bytes-bar]");
  var bytesText = form.querySelector("[data-bytes-text]");
  var table = panel.querySelector("[data-jobs]");
  var announcer = panel.querySelector("[data-jobs-status]");
  var statusUrl = panel.getAttribute("data-status-url");
  var maxBytes = parseInt(panel.getAttribute("data-max-bytes"), 10) || 0;
  var polling = false;
  var failures = 0;

  function megabytes(n) {
    return (n / (1024 * 1024)).toFixed(n < 10 * 1024 * 1024 ? 1 : 0) + " MB";
  }

  function showChosen() {
    var names = Array.prototype.map.call(input.files || [], function (f) { return f.name; });
    chosen.textContent = names.length ? "Chosen: " + names.join(", ") : "";
  }

  function showErrors(messages) {
    errorsBox.textContent = "";
    messages.forEach(function (text) {
      var p = document.createElement("p");
      p.className = "error";
      p.textContent = text;
      errorsBox.appendChild(p);
    });
  }

  // --- choosing files: the input, or a drop on the zone --------------------------
  input.addEventListener("change", showChosen);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      showChosen();
    }
  });

  // --- sending, with the bytes sent -------------------------------------------------
  form.addEventListener("submit", function (event) {
    if (!window.FormData || !window.XMLHttpRequest) { return; }  // the plain form then
    event.preventDefault();
    var total = 0;
    Array.prototype.forEach.call(input.files || [], function (f) { total += f.size; });
    if (maxBytes && total > maxBytes) {
      showErrors(["These files add up to " + megabytes(total) + ", more than the " +
                  megabytes(maxBytes) + " one upload may be: send fewer at a time."]);
      return;
    }
    send(new FormData(form));
  });

  function send(data) {
    var xhr = new XMLHttpRequest();
    var button = form.querySelector("button[type=submit]");
    var token = form.querySelector("input[name=csrf_token]");
    showErrors([]);
    button.disabled = true;
    progressBox.hidden = false;
    bytesBar.value = 0;
    bytesText.textContent = "";
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    if (token) { xhr.setRequestHeader("X-CSRFToken", token.value); }
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) {
        bytesBar.value = Math.floor(event.loaded * 100 / event.total);
        bytesText.textContent = megabytes(event.loaded) + " of " + megabytes(event.total) +
          " sent";
      }
    });
    xhr.addEventListener("load", function () {
      button.disabled = false;
      progressBox.hidden = true;
      sent(xhr);
    });
    xhr.addEventListener("error", function () {
      button.disabled = false;
      progressBox.hidden = true;
      showErrors(["The connection closed before the upload was sent. Try again; if the " +
                  "files are large, send fewer at a time."]);
    });
    xhr.send(data);
  }

  function sent(xhr) {
    var reply = null;
    try { reply = JSON.parse(xhr.responseText); } catch (e) { reply = null; }
    if (!reply) {
      showErrors([xhr.status === 400 ?
        "This form has expired or did not come from this site: reload the page and try again." :
        "The upload failed (HTTP " + xhr.status + "): reload the page and try again."]);
      return;
    }
    var errors = reply.errors || {};
    var messages = Object.keys(errors).map(function (k) { return errors[k]; });
    showErrors(messages);
    if (reply.next) {
      window.location.assign(reply.next);  // a CSV: its columns are matched next
      return;
    }
    if (!messages.length) {
      form.reset();
      showChosen();
    }
    if (reply.jobs && reply.jobs.length) { startPolling(); }
  }

  // --- following the jobs -----------------------------------------------------------
  function parseRow(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  function update(job) {
    var fresh = parseRow(job.html);
    var old = document.getElementById("job-" + job.id);
    if (!old) {
      var first = table.querySelector("tbody.job");
      table.insertBefore(fresh, first);  // the newest first, as the page lists them
      table.hidden = false;
      table.parentElement.hidden = false;  // its scroll region
      var none = panel.querySelector("[data-no-jobs]");
      if (none) { none.remove(); }
      return;
    }
    if (old.getAttribute("data-state") !== job.state) {
      old.replaceWith(fresh);  // a new state may bring an error, problems, Run again
      announce(job.file + ": " + job.state);
      return;
    }
    fresh.querySelectorAll("[data-field]").forEach(function (cell) {
      var target = old.querySelector("[data-field=" + cell.getAttribute("data-field") + "]");
      if (target && target.innerHTML !== cell.innerHTML) { target.innerHTML = cell.innerHTML; }
    });
    var bar = old.querySelector("[role=progressbar]");
    var freshBar = fresh.querySelector("[role=progressbar]");
    ["value", "aria-valuenow", "aria-valuetext"].forEach(function (name) {
      bar.setAttribute(name, freshBar.getAttribute(name));
    });
  }

  function poll() {
    fetch(statusUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        failures = 0;
        data.jobs.slice().reverse().forEach(update);  // oldest first: new ones stack on top
        if (data.active) {
          window.setTimeout(poll, POLL_MS);
        } else {
          polling = false;
        }
      })
      .catch(function () {
        failures += 1;
        if (failures < 5) {
          window.setTimeout(poll, POLL_MS * failures * 2);
        } else {
          polling = false;
          announce("The jobs' progress could not be fetched: use Refresh.");
        }
      });
  }

  function startPolling() {
    if (!polling) {
      polling = true;
      poll();
    }
  }

  if (panel.getAttribute("data-active") === "true") { startPolling(); }
}());
