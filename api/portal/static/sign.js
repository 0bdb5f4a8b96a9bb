/* civic-ledger portal: sign a ballot in the browser (政策沙盘).
 *
 * The deputy's private key (PKCS #8 PEM, as `civic-ledger deputy keygen` writes it) is read
 * from a file or pasted, imported into WebCrypto as a non-extractable Ed25519 key, and used
 * once: it is never sent anywhere, stored, or kept after signing.
 *
 * The signed bytes are exactly voting.ballots.ballot_message: RFC 8785 (JCS) of
 * {"simulation", "voter", "choices", "nonce"}. The signed ballot is POSTed to the JSON API
 * (same origin); the signature is its only authority.
 *
 * Data comes from the form's data-* attributes (no inline script under the CSP).
 */
(function () {
  "use strict";

  var form = document.getElementById("ballot-form");
  if (!form) { return; }
  var statusEl = document.getElementById("ballot-status");
  var button = document.getElementById("ballot-submit");

  function msg(name) { return form.getAttribute("data-msg-" + name) || name; }
  function say(text, kind) {
    statusEl.textContent = text;
    statusEl.className = "notice notice--" + (kind || "info");
    statusEl.setAttribute("data-result", kind || "info");
  }

  /* RFC 8785: object members sorted by their UTF-16 code units (JS's default string order),
     no white space, strings as JSON.stringify writes them (ECMAScript's serialisation is the
     one RFC 8785 §3.2.2.2 adopts), and integers only (records hold no floats, PROTOCOL §1). */
  function canonical(value) {
    if (value === null || typeof value === "boolean") { return JSON.stringify(value); }
    if (typeof value === "number") {
      if (!Number.isSafeInteger(value)) { throw new Error("not a safe integer: " + value); }
      return String(value);
    }
    if (typeof value === "string") { return JSON.stringify(value); }
    if (Array.isArray(value)) { return "[" + value.map(canonical).join(",") + "]"; }
    var keys = Object.keys(value).sort();
    return "{" + keys.map(function (k) { return JSON.stringify(k) + ":" + canonical(value[k]); }).join(",") + "}";
  }

  function pemToDer(pem) {
    var match = /-----BEGIN PRIVATE KEY-----([\s\S]*?)-----END PRIVATE KEY-----/.exec(pem);
    if (!match) { return null; }
    var b64 = match[1].replace(/\s+/g, "");
    var bin;
    try { bin = atob(b64); } catch (e) { return null; }
    var der = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { der[i] = bin.charCodeAt(i); }
    return der;
  }

  function hex(bytes) {
    var out = "";
    for (var i = 0; i < bytes.length; i++) { out += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16); }
    return out;
  }

  function newNonce() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return hex(bytes);
  }

  /* The choices in the shape of the ballot type (see core/voting/tally.py). */
  function collectChoices(type) {
    var i, inputs;
    if (type === "approval") {
      inputs = form.querySelectorAll("input[name='choice']:checked");
      var approved = [];
      for (i = 0; i < inputs.length; i++) { approved.push(inputs[i].value); }
      return approved;
    }
    if (type === "cumulative") {
      inputs = form.querySelectorAll("input[name='points']");
      var points = {};
      for (i = 0; i < inputs.length; i++) {
        var text = inputs[i].value.trim();
        if (text === "" || text === "0") { continue; }
        var n = Number(text);
        if (!Number.isSafeInteger(n) || n < 0) { throw new Error(msg("bad-choice")); }
        points[inputs[i].getAttribute("data-project")] = n;
      }
      return points;
    }
    if (type === "ordinal") {
      inputs = form.querySelectorAll("select[name='rank']");
      var ranked = [];
      for (i = 0; i < inputs.length; i++) {
        if (inputs[i].value) { ranked.push([Number(inputs[i].value), inputs[i].getAttribute("data-project")]); }
      }
      ranked.sort(function (a, b) { return a[0] - b[0]; });
      for (i = 1; i < ranked.length; i++) {
        if (ranked[i][0] === ranked[i - 1][0]) { throw new Error(msg("bad-choice")); }
      }
      return ranked.map(function (pair) { return pair[1]; });
    }
    inputs = form.querySelectorAll("input[type='radio']:checked");
    var votes = {};
    for (i = 0; i < inputs.length; i++) { votes[inputs[i].getAttribute("data-project")] = inputs[i].value; }
    return votes;
  }

  function readKeyText() {
    var pasted = document.getElementById("ballot-key-text").value.trim();
    if (pasted) { return Promise.resolve(pasted); }
    var file = document.getElementById("ballot-key-file").files[0];
    if (!file) { return Promise.resolve(""); }
    return file.text();
  }

  function clearKey() {
    document.getElementById("ballot-key-text").value = "";
    document.getElementById("ballot-key-file").value = "";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!window.crypto || !crypto.subtle) { say(msg("no-webcrypto"), "bad"); return; }
    var simulation = form.getAttribute("data-simulation");
    var voter = form.getAttribute("data-voter");
    var choices;
    try { choices = collectChoices(form.getAttribute("data-ballot-type")); } catch (e) { say(e.message, "bad"); return; }
    var nonce = newNonce();
    var message = new TextEncoder().encode(
      canonical({ simulation: simulation, voter: voter, choices: choices, nonce: nonce })
    );
    button.disabled = true;
    say(msg("signing"), "info");
    readKeyText().then(function (pem) {
      if (!pem) { throw new Error(msg("no-key")); }
      var der = pemToDer(pem);
      if (!der) { throw new Error(msg("bad-key")); }
      return crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"])
        .catch(function () { throw new Error(msg("bad-key")); });
    }).then(function (key) {
      clearKey();
      return crypto.subtle.sign({ name: "Ed25519" }, key, message);
    }).then(function (signature) {
      var ballot = {
        simulation: simulation, voter: voter, choices: choices, nonce: nonce,
        signature: hex(new Uint8Array(signature))
      };
      return fetch(form.getAttribute("data-endpoint"), {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(ballot),
        credentials: "omit"
      });
    }).then(function (response) {
      return response.json().then(function (body) {
        if (response.status === 201) {
          say(msg("sent") + " " + body.record_hash, "ok");
          statusEl.setAttribute("data-record-hash", body.record_hash);
        } else {
          say(msg("refused") + " (" + response.status + " " + (body.error || "") + ") " + (body.detail || ""), "bad");
        }
      });
    }).catch(function (error) {
      say(error && error.message ? error.message : String(error), "bad");
    }).then(function () { button.disabled = false; });
  });
})();
