// A long-lived node process for the Python tests (tests/web/conftest.py `js`): one JSON
// request per line on stdin, one JSON answer per line on stdout. Requests:
//   {"op": "canonical", "text": "<JSON text>"}               → {"hex": ...} | {"error": ...}
//   {"op": "receipt", "receipt": "<JSON text>", "trust": {...} | null} → {"verdict", ...}
//   {"op": "trail", "answer": "<JSON text>", "trust": {...}, "options": {...}} → {"verdict", ...}
//   {"op": "map", "root": hex, "subject": str, "proof": {...}} → {"member"|"absent"} | {"error"}
import { createInterface } from "node:readline";
import * as V from "../../../verifier/web/index.js";

function answer(request) {
  switch (request.op) {
    case "canonical":
      try {
        return { hex: V.toHex(V.canonicalBytes(V.parseJson(request.text))) };
      } catch (e) {
        return { error: String(e.message) };
      }
    case "receipt": {
      const r = V.verifyReceipt(request.receipt, request.trust);
      return { verdict: r.verdict, record_hash: r.record_hash, reason: r.reason, cosigners: r.cosigners, checks: r.checks };
    }
    case "trail": {
      const r = V.verifyTrail(request.answer, request.trust, request.options || {});
      return {
        verdict: r.verdict,
        reason: r.reason,
        trail_verdict: r.trail.verdict,
        first_bad: r.trail.first_bad,
        state: r.state,
        completeness: r.completeness && { verdict: r.completeness.verdict, reason: r.completeness.reason },
        cosigners: r.cosigners,
      };
    }
    case "map":
      try {
        return V.verifyMapProof(request.root, request.subject, request.proof);
      } catch (e) {
        return { error: String(e.message) };
      }
    default:
      return { error: `unknown op ${request.op}` };
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  let out;
  try {
    out = answer(JSON.parse(line));
  } catch (e) {
    out = { crash: String(e && e.stack) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
