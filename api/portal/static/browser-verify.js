/* civic-ledger portal: verification in the visitor's own browser (issue 17, item 4).
   Uses window.CivicVerify (static/dist/civic-verify.js, bundled from verifier/web with
   @noble/hashes and @noble/curves; nothing is loaded from elsewhere). No inline script (CSP):
   the pages pass URLs through data-* attributes.

   Track page:  <section data-browser-trail="/api/v1/suggestions/<code>/trail"
                         data-keys-url="/api/v1/logs/suggestions/keys"
                         data-checkpoint-url="/api/v1/logs/suggestions/checkpoint">
   Verify page: <section data-browser-receipt data-keys-base="/api/v1/logs/"> */
(function () {
  "use strict";
  var V = window.CivicVerify;
  var LABELS = {};
  try {
    var holder = document.getElementById("portal-labels");
    LABELS = holder ? JSON.parse(holder.getAttribute("data-labels") || "{}") : {};
  } catch (e) { LABELS = {}; }
  function label(key, fallback) { return LABELS[key] || fallback || key; }

  function setBadge(el, verdict, title) {
    if (!el) { return; }
    el.hidden = false;
    el.className = "badge badge--" + verdict;
    el.textContent = label("verdict." + verdict, verdict);
    el.setAttribute("data-verdict", verdict);
    if (title) { el.title = title; } else { el.removeAttribute("title"); }
  }

  function clear(el) { while (el && el.firstChild) { el.removeChild(el.firstChild); } }

  function element(tag, text, cls) {
    var el = document.createElement(tag);
    if (text !== undefined && text !== null) { el.textContent = text; }
    if (cls) { el.className = cls; }
    return el;
  }

  /* The keys the check trusted: name and key ID of each, and the whole key text. */
  function showTrust(root, trusted) {
    var list = root.querySelector("[data-trusted-keys]");
    if (!list || !trusted) { return; }
    clear(list);
    function add(kind, key, role) {
      var li = element("li");
      li.setAttribute("data-key-role", role);
      li.setAttribute("data-key-name", key.name);
      li.setAttribute("data-key-id", key.keyId);
      li.appendChild(element("strong", label(kind) + ": "));
      li.appendChild(element("span", key.name + " "));
      li.appendChild(element("code", key.keyId, "key-id"));
      li.appendChild(element("br"));
      li.appendChild(element("code", key.key, "mono key-text"));
      list.appendChild(li);
    }
    add("browser.log_key", trusted.log, "log");
    for (var i = 0; i < trusted.witnesses.length; i++) { add("browser.witness_key", trusted.witnesses[i], "witness"); }
    var quorum = root.querySelector("[data-quorum]");
    if (quorum) { quorum.textContent = String(trusted.quorum); }
  }

  function showCosigners(root, names) {
    var el = root.querySelector("[data-cosigners]");
    if (!el) { return; }
    el.textContent = names && names.length ? names.join(", ") : label("browser.none", "none");
    el.setAttribute("data-cosigners", (names || []).join(","));
  }

  function showChecks(root, checks) {
    var list = root.querySelector("[data-browser-checks]");
    if (!list) { return; }
    clear(list);
    for (var i = 0; i < checks.length; i++) {
      var li = element("li", null, checks[i].ok ? "check-ok" : "check-bad");
      li.appendChild(element("strong", checks[i].step + " · " + checks[i].name));
      li.appendChild(element("br"));
      li.appendChild(element("span", checks[i].detail, "hint mono"));
      list.appendChild(li);
    }
  }

  function trustFrom(keys) {
    var witnesses = (keys.witnesses || []).map(function (w) { return w.key; });
    /* At least one institution other than the operator, when any is published. */
    // The deployment's quorum (CIVIC_WITNESS_QUORUM) as /keys publishes it; 1 when it is silent.
    var quorum = typeof keys.quorum === "number" ? keys.quorum : 1;
    return { logKey: keys.log, witnesses: witnesses, quorum: witnesses.length ? Math.min(quorum, witnesses.length) : 0 };
  }

  function getText(url) {
    return fetch(url, { headers: { "Accept": "application/json, text/plain" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok || r.status === 202) { var e = new Error(url + ": " + r.status); e.status = r.status; throw e; }
        return r.text();
      });
  }

  function recordWord(r) {
    if (!r.ok) { return r.verdict; }
    if (r.status === "pending") { return "pending"; }
    return r.receipt_verdict || "valid";
  }

  /* ---- the track page ---- */
  var rounds = 0;
  function checkTrail(root) {
    var trailUrl = root.getAttribute("data-browser-trail");
    var keysUrl = root.getAttribute("data-keys-url");
    var checkpointUrl = root.getAttribute("data-checkpoint-url");
    var started = performance.now();
    /* The latest checkpoint first: a trail fetched after it is at least as recent. */
    var latest = getText(checkpointUrl).catch(function () { return null; });
    return Promise.all([latest, getText(keysUrl)]).then(function (got) {
      return getText(trailUrl).then(function (trailText) {
        var trust = trustFrom(JSON.parse(got[1]));
        var t0 = performance.now();
        var result = V.verifyTrail(trailText, trust, { latest: true, latestCheckpoint: got[0] });
        var t1 = performance.now();
        root.setAttribute("data-verify-ms", String(t1 - t0));
        root.setAttribute("data-total-ms", String(t1 - started));
        showTrail(root, result, trailText);
        /* Not anchored yet, or the witnesses have not cosigned yet: ask again. */
        return result.verdict === "pending" || result.verdict === "unconfirmed" ? "pending" : "done";
      });
    }).catch(function (e) {
      setBadge(root.querySelector("#browser-verdict"), "unreachable", label("browser.failed") + ": " + e.message);
      return "done";
    });
  }

  function showTrail(root, result, trailText) {
    root.hidden = false;
    setBadge(root.querySelector("#browser-verdict"), result.verdict, result.reason);
    var reason = root.querySelector("[data-browser-reason]");
    if (reason) { reason.textContent = result.reason; }
    setBadge(root.querySelector("#browser-trail-verdict"), result.trail.verdict, result.trail.reason);
    var comp = root.querySelector("#browser-completeness");
    if (result.completeness) {
      setBadge(comp, result.completeness.verdict, result.completeness.reason);
      if (result.completeness.verdict === "no_map") { comp.title = label("browser.no_map", "no map yet"); }
    }
    showTrust(root, result.trusted);
    showCosigners(root, result.cosigners);
    for (var i = 0; i < result.records.length; i++) {
      var r = result.records[i];
      var badge = document.querySelector("[data-browser-record='" + r.record_hash + "']") ||
        document.querySelector("[data-browser-index='" + i + "']");
      setBadge(badge, recordWord(r), r.problem || r.note || "");
    }
    var save = root.querySelector("[data-save-trail]");
    if (save && window.Blob && window.URL) {
      if (save.href && save.href.indexOf("blob:") === 0) { URL.revokeObjectURL(save.href); }
      save.href = URL.createObjectURL(new Blob([trailText], { type: "application/json" }));
      save.hidden = false;
    }
  }

  function runTrail(root) {
    checkTrail(root).then(function (state) {
      rounds += 1;
      if (state === "pending" && rounds < 90) { window.setTimeout(function () { runTrail(root); }, 2000); }
      else { root.setAttribute("data-browser-done", "1"); }
    });
  }

  /* ---- the verify page ---- */
  function checkReceipt(root) {
    var area = document.querySelector("[data-receipt-text]");
    var hashInput = document.getElementById("f-record_hash");
    var text = area && area.value.trim();
    var hash = hashInput && hashInput.value.trim().toLowerCase();
    var source;
    if (text) { source = Promise.resolve(text); }
    else if (/^[0-9a-f]{64}$/.test(hash || "")) { source = getText("/api/v1/records/" + hash + "/receipt"); }
    else { return Promise.resolve(); }
    root.hidden = false;
    setBadge(root.querySelector("#browser-verdict"), "checking");
    return source.then(function (receiptText) {
      var log = "suggestions";
      try {
        var parsed = JSON.parse(receiptText);
        if (parsed && parsed.proof && /^(suggestions|votes|access)$/.test(parsed.proof.log)) { log = parsed.proof.log; }
      } catch (e) { /* a malformed receipt: the verifier says so */ }
      return getText(root.getAttribute("data-keys-base") + log + "/keys").then(function (keysText) {
        var result = V.verifyReceipt(receiptText, trustFrom(JSON.parse(keysText)));
        setBadge(root.querySelector("#browser-verdict"), result.verdict, result.reason);
        var reason = root.querySelector("[data-browser-reason]");
        if (reason) { reason.textContent = result.reason; }
        showTrust(root, result.trusted);
        showCosigners(root, result.cosigners);
        showChecks(root, result.checks);
      });
    }).catch(function (e) {
      setBadge(root.querySelector("#browser-verdict"), e.status === 202 ? "pending" : "unreachable", label("browser.failed") + ": " + e.message);
    }).then(function () { root.setAttribute("data-browser-done", "1"); });
  }

  if (!V) { return; }
  var trail = document.querySelector("[data-browser-trail]");
  if (trail) { runTrail(trail); }
  var receipt = document.querySelector("[data-browser-receipt]");
  if (receipt) {
    var button = document.querySelector("[data-browser-run]");
    if (button) {
      button.hidden = false;
      button.addEventListener("click", function () { checkReceipt(receipt); });
    }
    checkReceipt(receipt);
  }
  window.civicBrowserVerify = { checkTrail: checkTrail, checkReceipt: checkReceipt };
})();
