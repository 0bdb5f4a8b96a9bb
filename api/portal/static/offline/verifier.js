/* The offline verifier's page (api/portal/static/offline/verifier.html): the bundle
   (window.CivicVerify) is inlined before this script; nothing is fetched. */
(function () {
  "use strict";
  var V = window.CivicVerify;
  function $(id) { return document.getElementById(id); }
  function clear(el) { while (el.firstChild) { el.removeChild(el.firstChild); } }
  function item(list, text, verdict) {
    var li = document.createElement("li");
    if (verdict) {
      var b = document.createElement("span");
      b.className = "badge";
      b.textContent = verdict;
      b.setAttribute("data-verdict", verdict);
      li.appendChild(b);
      li.appendChild(document.createTextNode(" "));
    }
    li.appendChild(document.createTextNode(text));
    list.appendChild(li);
    return li;
  }
  function readInto(fileInput, area) {
    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      if (!file) { return; }
      var reader = new FileReader();
      reader.onload = function () { area.value = String(reader.result); };
      reader.readAsText(file);
    });
  }
  readInto($("input-file"), $("input"));
  readInto($("keys-file"), $("keys"));

  /* Keys: the JSON of /keys ({log, witnesses: [{key}]}) or one verifier key per line. */
  function readKeys(text) {
    text = text.trim();
    if (text.charAt(0) === "{") {
      var keys = JSON.parse(text);
      return { logKey: keys.log, witnesses: (keys.witnesses || []).map(function (w) { return typeof w === "string" ? w : w.key; }) };
    }
    var lines = text.split(/\r?\n/).map(function (l) { return l.trim(); }).filter(Boolean);
    return { logKey: lines[0] || "", witnesses: lines.slice(1) };
  }

  function show(verdict, reason) {
    $("result").hidden = false;
    var badge = $("verdict");
    badge.textContent = verdict;
    badge.setAttribute("data-verdict", verdict);
    $("reason").textContent = reason || "";
  }

  function run() {
    ["trusted", "records", "checks"].forEach(function (id) { clear($(id)); });
    ["trail-verdict", "completeness", "cosigners"].forEach(function (id) { $(id).textContent = ""; });
    var trust;
    try {
      trust = readKeys($("keys").value);
      var q = parseInt($("quorum").value, 10);
      trust.quorum = isNaN(q) ? (trust.witnesses.length ? 1 : 0) : Math.min(q, trust.witnesses.length);
      V.trustFromKeys(trust);
    } catch (e) {
      show("error", "the trusted keys cannot be read: " + e.message);
      return;
    }
    var text = $("input").value;
    var data = null;
    try { data = V.parseJson(text); } catch (e) { data = null; }
    var result;
    if (data && typeof data === "object" && !Array.isArray(data) && Array.isArray(data.records)) {
      result = V.verifyTrail(text, trust, {});
      $("trail-verdict").textContent = result.trail.verdict + ": " + result.trail.reason;
      $("completeness").textContent = result.completeness.verdict + ": " + result.completeness.reason;
      $("completeness").setAttribute("data-verdict", result.completeness.verdict);
      result.records.forEach(function (r) {
        var word = !r.ok ? r.verdict : r.status === "pending" ? "pending" : r.receipt_verdict;
        var li = item($("records"), "seq " + r.seq + " · " + (r.type || "") + " · " + r.record_hash + (r.problem ? " · " + r.problem : ""), word);
        li.setAttribute("data-record-hash", r.record_hash);
      });
    } else {
      result = V.verifyReceipt(text, trust);
      result.checks.forEach(function (c) {
        var li = item($("checks"), c.step + " · " + c.name + ": " + c.detail);
        li.className = c.ok ? "check-ok" : "check-bad";
      });
    }
    show(result.verdict, result.reason);
    $("cosigners").textContent = (result.cosigners || []).join(", ") || "—";
    var t = result.trusted;
    if (t) {
      item($("trusted"), "log: " + t.log.name + " " + t.log.keyId + " · " + t.log.key);
      t.witnesses.forEach(function (w) { item($("trusted"), "witness: " + w.name + " " + w.keyId + " · " + w.key); });
      item($("trusted"), "quorum: " + t.quorum);
    }
  }
  $("run").addEventListener("click", run);
  window.civicOffline = { run: run };
})();
