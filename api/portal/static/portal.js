/* civic-ledger portal: the little JavaScript the pages use. No inline scripts (CSP): pages
   pass data through data-* attributes. Everything works without JS except the live
   verification badges, which say so. */
(function () {
  "use strict";

  var body = document.body;
  var verifier = (body.getAttribute("data-verifier") || "").replace(/\/+$/, "");

  function labels() {
    var holder = document.getElementById("portal-labels");
    if (!holder) { return {}; }
    try { return JSON.parse(holder.getAttribute("data-labels") || "{}"); } catch (e) { return {}; }
  }
  var LABELS = labels();
  function label(key, fallback) { return LABELS[key] || fallback || key; }

  /* Bars: <span class="bar__fill" data-value="0.42"> gets width 42% (CSSOM is allowed by the CSP). */
  function drawBars(root) {
    var fills = (root || document).querySelectorAll("[data-value].bar__fill");
    for (var i = 0; i < fills.length; i++) {
      var v = parseFloat(fills[i].getAttribute("data-value"));
      if (!isFinite(v)) { v = 0; }
      fills[i].style.width = Math.max(0, Math.min(1, v)) * 100 + "%";
    }
  }

  function setBadge(el, verdict, text, title) {
    el.className = "badge badge--" + verdict;
    el.textContent = text || label("verdict." + verdict, verdict);
    el.setAttribute("data-verdict", verdict);
    if (title) { el.title = title; } else { el.removeAttribute("title"); }
  }

  function showUnreachable() {
    var notes = document.querySelectorAll("[data-verifier-down]");
    for (var i = 0; i < notes.length; i++) { notes[i].hidden = false; }
  }

  /* A receipt badge: <span data-receipt-url="/api/v1/records/<hash>/receipt">. The receipt
     comes from the API (same origin); the verdict from the verifier service. */
  function checkReceipt(el) {
    var url = el.getAttribute("data-receipt-url");
    return fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 202) { setBadge(el, "pending"); return "pending"; }
        if (!r.ok) { setBadge(el, "bad", label("verify.fetch_failed", "error") + " " + r.status); return "done"; }
        return r.text().then(function (receipt) {
          return fetch(verifier + "/verify/receipt", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: receipt,
            mode: "cors",
            credentials: "omit"
          }).then(function (v) {
            if (!v.ok) {
              setBadge(el, "unreachable", label("verdict.unreachable") + " (" + v.status + ")");
              showUnreachable();
              return "done";
            }
            return v.json().then(function (result) {
              setBadge(el, result.verdict, null, result.reason);
              return "done";
            });
          }, function () {
            setBadge(el, "unreachable");
            showUnreachable();
            return "done";
          });
        });
      }, function () { setBadge(el, "unreachable"); return "done"; });
  }

  /* A trail badge: <span data-trail-code="SG-…"> → GET <verifier>/verify/trail/<code>. */
  function checkTrail(el) {
    var code = el.getAttribute("data-trail-code");
    return fetch(verifier + "/verify/trail/" + encodeURIComponent(code), { mode: "cors", credentials: "omit" })
      .then(function (v) {
        if (!v.ok) { setBadge(el, "unreachable", label("verdict.unreachable") + " (" + v.status + ")"); showUnreachable(); return "done"; }
        return v.json().then(function (result) {
          setBadge(el, result.verdict, null, result.reason);
          return result.verdict === "pending" ? "pending" : "done";
        });
      }, function () { setBadge(el, "unreachable"); showUnreachable(); return "done"; });
  }

  var rounds = 0;
  function verifyAll() {
    var receipts = document.querySelectorAll("[data-receipt-url]:not([data-final])");
    var trails = document.querySelectorAll("[data-trail-code]:not([data-final])");
    if (!receipts.length && !trails.length) { return; }
    var jobs = [];
    function run(el, check) {
      jobs.push(check(el).then(function (state) {
        if (state !== "pending") { el.setAttribute("data-final", "1"); }
        return state;
      }));
    }
    for (var i = 0; i < receipts.length; i++) { run(receipts[i], checkReceipt); }
    for (var j = 0; j < trails.length; j++) { run(trails[j], checkTrail); }
    Promise.all(jobs).then(function (states) {
      rounds += 1;
      if (states.indexOf("pending") >= 0 && rounds < 90) {
        window.setTimeout(verifyAll, 2000);
        revealWhenAnchored();
      } else {
        revealWhenAnchored();
      }
    });
  }

  /* Links that only work once a record is anchored: <a data-anchored-by="<badge id>" hidden>. */
  function revealWhenAnchored() {
    var links = document.querySelectorAll("[data-anchored-by]");
    for (var i = 0; i < links.length; i++) {
      var badge = document.getElementById(links[i].getAttribute("data-anchored-by"));
      var v = badge && badge.getAttribute("data-verdict");
      var ready = v && v !== "pending" && v !== "checking";
      if (ready) {
        links[i].hidden = false;
        var readyText = links[i].getAttribute("data-ready-text");
        if (readyText) { links[i].textContent = readyText; }
        var waiting = document.querySelectorAll("[data-pending-for='" + links[i].getAttribute("data-anchored-by") + "']");
        for (var k = 0; k < waiting.length; k++) { waiting[k].hidden = true; }
      }
    }
  }

  /* Copy buttons: <button data-copy="#id">. */
  function wireCopy() {
    var buttons = document.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].hidden = false;
      buttons[i].addEventListener("click", function (ev) {
        var target = document.querySelector(ev.currentTarget.getAttribute("data-copy"));
        if (target && navigator.clipboard) {
          var button = ev.currentTarget;
          navigator.clipboard.writeText(target.textContent.trim()).then(function () {
            button.textContent = label("copy.done", "✓");
          });
        }
      });
    }
  }

  /* Receipt file upload on the verify page: show the chosen file's text in the textarea. */
  function wireReceiptFile() {
    var input = document.querySelector("[data-receipt-file]");
    var area = document.querySelector("[data-receipt-text]");
    if (!input || !area || !window.FileReader) { return; }
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file || file.size > 65536) { return; }
      var reader = new FileReader();
      reader.onload = function () { area.value = String(reader.result); };
      reader.readAsText(file);
    });
  }

  window.civicPortal = { drawBars: drawBars, verifyAll: verifyAll, setBadge: setBadge };
  drawBars(document);
  wireCopy();
  wireReceiptFile();
  verifyAll();
})();
