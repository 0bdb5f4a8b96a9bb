// Verifying a trail in the browser: the PROTOCOL §5 trail checks of verifier/trail.py (with
// each receipt checked offline from its cosigned checkpoint) and §11 "A complete trail" from
// the map of trail heads (§10).
import { isHex64, toHex } from "./bytes.js";
import { canonicalBytes } from "./canonical.js";
import { parseJson } from "./json.js";
import { MapProofError, verifyMapProof } from "./map.js";
import { leafHash } from "./merkle.js";
import { checkReceiptCheckpoint, trustFromKeys, verifyReceipt, describeTrust } from "./receipt.js";
import { LOGS, checkRecordShape, isObject, parseAt } from "./records.js";
import {
  BadSignature,
  MalformedCheckpoint,
  MalformedNote,
  UnknownKey,
  WrongOrigin,
  openCheckpoint,
} from "./note.js";

// core/workflow.py: the published state machine of a suggestion.
export const TRANSITIONS = {
  SUBMITTED: ["DEPUTY_ACCEPTED", "REJECTED", "ANSWERED_DIRECT", "WITHDRAWN", "MERGED", "ASSIGNED"],
  DEPUTY_ACCEPTED: ["ASSIGNED", "WITHDRAWN", "MERGED"],
  ASSIGNED: ["IN_PROGRESS", "REASSIGN_REQUESTED"],
  REASSIGN_REQUESTED: ["ASSIGNED"],
  IN_PROGRESS: ["ANSWERED"],
  ANSWERED: ["CLOSED", "REHANDLING"],
  REHANDLING: ["ANSWERED"],
  CLOSED: ["FOLLOW_UP"],
  FOLLOW_UP: ["ANSWERED"],
  REJECTED: [],
  ANSWERED_DIRECT: [],
  WITHDRAWN: [],
  MERGED: [],
};
const STATES = Object.keys(TRANSITIONS);
const CATEGORIES = ["A", "B", "C", "D"];
const FOLLOW_UP_CATEGORIES = ["B", "C"];
const LEVELS = { satisfied: "CLOSED", basically_satisfied: "CLOSED", unsatisfied: "REHANDLING" };
const REPLIES = ["ANSWERED", "ANSWERED_DIRECT"];
const EVALUATED = ["CLOSED", "REHANDLING"];
const SUBMITTED = "suggestion.submitted";
const TRANSITION = "suggestion.transition";
const MAP_SUBJECT = "ledger/map";
const MAP_HEAD = "ledger.map_head";

function allowedNext(state, facts) {
  const next = new Set(TRANSITIONS[state]);
  if (state === "SUBMITTED" && !facts.byDeputy) next.delete("ASSIGNED");
  if (state === "CLOSED" && !FOLLOW_UP_CATEGORIES.includes(facts.category)) next.delete("FOLLOW_UP");
  return next;
}

const names = (states) => [...states].sort().join(", ") || "none";

class StateMachine {
  constructor() {
    this.possible = null;
    this.submitter = null;
    this.byDeputy = null;
    this.category = null;
    this.categoryKnown = true;
  }
  get state() {
    return this.possible && this.possible.size === 1 ? [...this.possible][0] : null;
  }
  facts() {
    const deputies = this.byDeputy !== null ? [this.byDeputy] : [false, true];
    const categories = this.categoryKnown ? [this.category] : [null, ...CATEGORIES];
    return deputies.flatMap((d) => categories.map((c) => ({ byDeputy: d, category: c })));
  }
  allowed(state) {
    const options = this.facts().map((f) => allowedNext(state, f));
    const surely = new Set([...options[0]].filter((s) => options.every((o) => o.has(s))));
    const maybe = new Set(options.flatMap((o) => [...o]));
    return [surely, maybe];
  }
  whyNot(frm, to) {
    const where = TRANSITIONS[frm].length
      ? `from ${frm} the allowed next states are ${names(this.allowed(frm)[1])}`
      : `${frm} is final: no transition leaves it`;
    if (frm === "SUBMITTED" && to === "ASSIGNED") {
      return `${frm} → ${to} only for a deputy's own suggestion, and this one was submitted by a ${this.submitter}; ${where}`;
    }
    if (frm === "CLOSED" && to === "FOLLOW_UP") {
      return `${frm} → ${to} only after a reply of category B or C, and the latest reply was ${this.category ? "category " + this.category : "without a category"}; ${where}`;
    }
    return `${frm} → ${to} is not in the state machine; ${where}`;
  }
  visible(record) {
    const kind = record.type;
    if (this.possible === null) {
      this.possible = new Set(["SUBMITTED"]);
      if (kind !== SUBMITTED) return { problem: `a suggestion's trail begins with ${SUBMITTED}, not ${kind}` };
      this.submitter = record.actor.role;
      this.byDeputy = this.submitter === "deputy";
      return { to: "SUBMITTED" };
    }
    if (kind === SUBMITTED) return { problem: `a suggestion is submitted once; this is a second ${SUBMITTED}` };
    if (kind !== TRANSITION) return {};
    const body = record.body;
    const frm = STATES.includes(body.from) ? body.from : null;
    const to = STATES.includes(body.to) ? body.to : null;
    if (frm === null || to === null) {
      return { from: frm, to, problem: `body.from ${JSON.stringify(body.from)} and body.to ${JSON.stringify(body.to)} must both be states of the published state machine` };
    }
    let problem = null;
    let note = null;
    if (!this.possible.has(frm)) {
      problem = this.possible.size === 1
        ? `the transition is from ${frm}, but the suggestion is in ${this.state}`
        : `the transition is from ${frm}, but after the erased record(s) before it the suggestion can only be in ${names(this.possible)}`;
    } else {
      const [surely, maybe] = this.allowed(frm);
      if (!maybe.has(to)) problem = this.whyNot(frm, to);
      else if (!surely.has(to)) note = `${frm} → ${to} is allowed only for some values of facts held in erased content: not checked`;
      if (problem === null && EVALUATED.includes(to) && body.level !== undefined && body.level !== null) {
        const outcome = LEVELS[body.level];
        if (outcome === undefined) problem = `body.level ${JSON.stringify(body.level)} is not an evaluation level`;
        else if (outcome !== to) problem = `an evaluation of ${body.level} moves the suggestion to ${outcome}, not to ${to}`;
      }
    }
    this.possible = new Set([to]);
    if (REPLIES.includes(to)) {
      this.category = CATEGORIES.includes(body.category) ? body.category : null;
      this.categoryKnown = true;
    }
    return { from: frm, to, problem, note };
  }
  unseen() {
    if (this.possible === null) {
      this.possible = new Set(["SUBMITTED"]);
      this.byDeputy = null;
      return "the first record cannot be seen: taken to be SUBMITTED";
    }
    const reachable = new Set();
    for (const s of this.possible) for (const n of this.allowed(s)[1]) reachable.add(n);
    if (REPLIES.some((r) => reachable.has(r))) this.categoryKnown = false;
    this.possible = new Set([...this.possible, ...reachable]);
    return `the next transition may start from ${names(this.possible)}`;
  }
}

function readEntry(entry) {
  if (!isObject(entry)) throw new Error("the entry must be a JSON object");
  const { record_hash: recordHash, status, receipt = null, record = null } = entry;
  if (!isHex64(recordHash)) throw new Error("record_hash must be 64 lowercase hex characters");
  if (status === "anchored" && receipt === null) throw new Error("an anchored entry must carry its receipt");
  if (status === "pending" && receipt !== null) throw new Error("a pending entry has no receipt yet, but this one carries one");
  if (status !== "anchored" && status !== "pending") throw new Error(`status must be 'anchored' or 'pending', got ${JSON.stringify(status)}`);
  if (record !== null) {
    try {
      checkRecordShape(record);
      canonicalBytes(record);
    } catch (e) {
      throw new Error(`record: ${e.message}`);
    }
  }
  return { recordHash, status, receipt, record };
}

/** The §5 trail checks on the entries of a trail listing, receipts verified offline.
 * Returns {verdict, state, first_bad, reason, records: [...]}, verdicts as verifier/trail.py
 * (valid, pending, gap, broken_link, illegal_transition, time_reversed, or the failing
 * receipt's verdict: altered, malformed, unconfirmed, bad_signature, wrong_chain, ...). */
export function verifyTrailEntries(entries, trust, { log = "suggestions", subject = null } = {}) {
  const parsedTrust = trustFromKeys(trust);
  if (!Array.isArray(entries)) return { verdict: "malformed", state: null, first_bad: null, reason: "the trail must be a JSON array", records: [], subject };
  if (!entries.length) return { verdict: "gap", state: null, first_bad: null, reason: "the trail is empty: no record with seq 0", records: [], subject };
  const machine = log === "suggestions" ? new StateMachine() : null;
  let lastHash = null;
  let lastSeq = null;
  let lastAt = null;
  const seqsSeen = new Map();
  const seqAt = new Map();
  entries.forEach((e, i) => {
    const seq = isObject(e) && isObject(e.record) ? e.record.seq : undefined;
    if (Number.isInteger(seq) && !seqAt.has(seq)) seqAt.set(seq, i);
  });
  const results = entries.map((raw, index) => {
    const problems = [];
    const notes = [];
    let entry;
    try {
      entry = readEntry(raw);
    } catch (e) {
      const claimed = isObject(raw) ? raw.record_hash : null;
      lastHash = isHex64(claimed) ? claimed : null;
      if (machine) machine.unseen();
      return { index, seq: null, record_hash: typeof claimed === "string" ? claimed : null, status: isObject(raw) ? raw.status : null, type: null, at: null, receipt_verdict: null, ok: false, verdict: "malformed", problem: e.message, cosigners: [], receipt_index: null };
    }
    const record = entry.record;
    let receiptVerdict = null;
    let proven = null;
    let cosigners = [];
    let receiptIndex = null;
    if (entry.status === "anchored") {
      const checked = verifyReceipt(entry.receipt, parsedTrust);
      receiptVerdict = checked.verdict;
      proven = checked.record_hash;
      cosigners = checked.cosigners;
      receiptIndex = checked.proof ? checked.proof.index : null;
      if (checked.verdict !== "valid" && checked.verdict !== "redacted") {
        problems.push([checked.verdict, `receipt: ${checked.reason}`]);
      } else if (checked.verdict === "redacted") {
        notes.push(checked.reason);
        if (record === null && checked.proof.log !== log) {
          problems.push(["broken_link", `a record of the '${checked.proof.log}' log in a trail of the '${log}' log`]);
        }
      }
    }
    if (record !== null) {
      const hashed = toHex(leafHash(canonicalBytes(record)));
      if (hashed !== entry.recordHash) {
        problems.push(["altered", `the record hashes to ${hashed}, not to the record hash ${entry.recordHash} the trail gives`]);
      }
    }
    if (proven !== null && proven !== entry.recordHash) {
      problems.push(["altered", `the receipt proves record ${proven}, not ${entry.recordHash}: it is the receipt of another record`]);
    }
    let from = null;
    let to = null;
    if (record === null) {
      notes.push("its seq, prev, time, log, subject and transition cannot be checked");
      if (machine) notes.push(machine.unseen());
    } else {
      if (record.log !== log) problems.push(["broken_link", `a record of the '${record.log}' log in a trail of the '${log}' log`]);
      else if (subject === null) subject = record.subject;
      else if (record.subject !== subject) problems.push(["broken_link", `a record about '${record.subject}' in the trail of '${subject}'`]);
      // seq follows the record before
      const seq = record.seq;
      const expected = lastSeq === null ? index : lastSeq[1] + (index - lastSeq[0]);
      const earlier = seqsSeen.get(seq);
      lastSeq = [index, seq];
      if (!seqsSeen.has(seq)) seqsSeen.set(seq, index);
      if (seq !== expected) {
        const later = seqAt.get(expected);
        if (earlier !== undefined) problems.push(["broken_link", `a second record with seq ${seq} (the first is at position ${earlier}): the trail forks`]);
        else if (later !== undefined && later > index) problems.push(["broken_link", `out of order: seq ${seq} stands where seq ${expected} belongs (seq ${expected} is at position ${later})`]);
        else problems.push(["gap", `no record with seq ${expected}: position ${index} holds seq ${seq}`]);
      }
      if (index > 0 && lastHash !== null && record.prev !== lastHash) {
        problems.push(["broken_link", `prev is ${record.prev || "null"}, but the record before (position ${index - 1}) has leaf hash ${lastHash}`]);
      }
      const moment = parseAt(record.at);
      if (lastAt !== null && moment < lastAt[1]) problems.push(["time_reversed", `at ${record.at} is earlier than the time of the record at position ${lastAt[0]}`]);
      else lastAt = [index, moment];
      if (machine) {
        const move = machine.visible(record);
        from = move.from || null;
        to = move.to || null;
        if (move.problem) problems.push(["illegal_transition", move.problem]);
        if (move.note) notes.push(move.note);
      }
    }
    lastHash = entry.recordHash;
    const first = problems[0] || null;
    return {
      index,
      seq: record ? record.seq : null,
      record_hash: entry.recordHash,
      status: entry.status,
      type: record ? record.type : null,
      at: record ? record.at : null,
      from_state: from,
      to_state: to,
      receipt_verdict: receiptVerdict,
      receipt_index: receiptIndex,
      cosigners,
      ok: first === null,
      verdict: first ? first[0] : null,
      problem: first ? first[1] : null,
      note: notes.join("; ") || null,
    };
  });
  const state = machine ? machine.state : null;
  const bad = results.find((r) => !r.ok);
  if (bad) {
    return { verdict: bad.verdict, state, first_bad: bad.index, records: results, subject, reason: `record at position ${bad.index} (${bad.seq !== null ? "seq " + bad.seq : "content not visible"}, record hash ${bad.record_hash}): ${bad.problem}` };
  }
  const pending = results.filter((r) => r.status === "pending");
  if (pending.length) {
    return { verdict: "pending", state, first_bad: null, records: results, subject, reason: `every check that can be made passed, but ${pending.length} of ${results.length} records are not anchored yet (from position ${pending[0].index})` };
  }
  return { verdict: "valid", state, first_bad: null, records: results, subject, reason: `${results.length} records: every receipt anchored, every link, time and transition in order${state ? "; it reaches " + state : ""}` };
}

function isInt(value) {
  return typeof value === "number" && Number.isInteger(value);
}

/** The records of the trail as shown: seq (the entry's place when its content is erased),
 * record hash, and whether its receipt places it in batch <= b (before batch b's map head, the
 * last entry of its batch); pending records come after. As verifier/trail.py `_shown`. */
function shownRecords(entries, log, batch) {
  const shown = [];
  (Array.isArray(entries) ? entries : []).forEach((raw, place) => {
    if (!isObject(raw)) return;
    const record = raw.record;
    let seq = isObject(record) ? record.seq : null;
    if (!isInt(seq)) seq = place;
    let before = false;
    const receipt = raw.receipt;
    if (raw.status === "anchored" && isObject(receipt) && isObject(receipt.proof) && receipt.proof.log === log) {
      before = isInt(receipt.proof.batch) && receipt.proof.batch <= batch;
    }
    shown.push({ seq, recordHash: typeof raw.record_hash === "string" ? raw.record_hash : "", before });
  });
  return shown;
}

/** Freshness offline: the size of the log's latest cosigned checkpoint, or why it cannot be
 * trusted ({size} or {verdict, reason}). */
function latestFromCheckpoint(note, trust) {
  if (note === null || note === undefined) {
    return { verdict: "unconfirmed", reason: "the service gave no latest checkpoint: whether the map is the latest is unknown" };
  }
  let opened;
  try {
    opened = openCheckpoint(note, trust.logKey, trust.witnesses);
  } catch (e) {
    if (e instanceof BadSignature) return { verdict: "bad_signature", reason: `the latest checkpoint's line by ${e.keyName}+${toHex(e.keyId)} does not verify` };
    if (e instanceof UnknownKey || e instanceof WrongOrigin) return { verdict: "wrong_chain", reason: `the latest checkpoint is not this log's: ${e.message}` };
    if (e instanceof MalformedNote || e instanceof MalformedCheckpoint) return { verdict: "malformed", reason: `the latest checkpoint is not a checkpoint: ${e.message}` };
    throw e;
  }
  if (opened.witnesses.length < trust.quorum) {
    return { verdict: "unconfirmed", reason: `the latest checkpoint is cosigned by ${opened.witnesses.length} trusted witnesses, ${trust.quorum} required` };
  }
  return { size: opened.checkpoint.size };
}

/** §11 "A complete trail as of batch b", as verifier/trail.py verify_completeness checks it
 * offline: `map` is the trail answer's member ({log, subject, batch, map_head: <v2 receipt of
 * batch b's ledger.map_head record>, proof}, or null), `entries` the trail listing as shown.
 * {verdict, reason, batch, mapRoot, headSeq, headHash, cosigners}: complete | truncated |
 * head_mismatch | unknown_subject | stale | altered | no_map | malformed | the map head
 * receipt's failing verdict (unconfirmed, bad_signature, wrong_chain, root_mismatch). With
 * `latest`, batch b must be the latest: `latestCheckpoint` (the log's latest cosigned
 * checkpoint) may not be larger than the map head's tree (else stale). */
export function checkCompleteness(map, entries, subject, trust, { log = "suggestions", latest = false, latestCheckpoint = null } = {}) {
  trust = trustFromKeys(trust);
  const known = {};
  const out = (verdict, reason) => ({ verdict, reason, ...known });
  if (map === null || map === undefined) {
    return out("no_map", "the service showed no map of trail heads: completeness cannot be checked");
  }
  if (!isObject(map) || !isInt(map.batch) || !isObject(map.map_head) || !("proof" in map)) {
    return out("malformed", "the map is not an object with batch, map_head (a receipt) and proof");
  }
  const batch = map.batch;
  known.batch = batch;
  if ((map.log === undefined ? log : map.log) !== log) return out("altered", `the map is of the ${JSON.stringify(map.log)} log, not '${log}'`);
  const head = verifyReceipt(map.map_head, trust);
  known.cosigners = head.cosigners;
  if (head.verdict !== "valid") {
    return out(head.verdict === "redacted" ? "altered" : head.verdict, `the map head's receipt: ${head.reason}`);
  }
  const rec = head.record;
  const proof = map.map_head.proof;
  const body = isObject(rec.body) ? rec.body : {};
  const index = map.map_head.v === 2 ? proof.index : body.index;
  let problem = null;
  if (rec.type !== MAP_HEAD || rec.subject !== MAP_SUBJECT) problem = `the record is a '${rec.type}' of '${rec.subject}'`;
  else if (rec.log !== log || proof.log !== log) problem = `it is of the '${rec.log}' log, not '${log}'`;
  else if (body.batch !== batch || proof.batch !== batch) problem = `its body names batch ${JSON.stringify(body.batch)} and its receipt batch ${proof.batch}, not batch ${batch}`;
  else if (body.index !== index) problem = `its body names index ${JSON.stringify(body.index)}, its receipt ${index}`;
  else if (!isHex64(body.map_root)) problem = "its body has no map_root";
  if (problem !== null) return out("altered", `the map head is not batch ${batch}'s: ${problem}`);
  known.mapRoot = body.map_root;
  if ((map.subject === undefined ? subject : map.subject) !== subject) {
    return out("altered", `the map proof is for ${JSON.stringify(map.subject)}, not ${JSON.stringify(subject)}`);
  }
  let proven;
  try {
    proven = verifyMapProof(body.map_root, subject, map.proof);
  } catch (e) {
    if (e instanceof MapProofError) return out("altered", `the map proof: ${e.message}`);
    throw e;
  }
  const shown = shownRecords(entries, log, batch);
  const before = shown.filter((s) => s.before);
  if (proven.absent) {
    if (before.length) {
      return out("unknown_subject", `the map of batch ${batch} proves ${subject} has no trail, yet the record with seq ${before[0].seq} (${before[0].recordHash}) is shown anchored in batch ${batch} or before`);
    }
  } else {
    const { seq, leafHash } = proven.member;
    known.headSeq = seq;
    known.headHash = leafHash;
    const at = shown.filter((s) => s.seq === seq);
    const beyond = before.filter((s) => s.seq > seq);
    if (!at.length && shown.every((s) => s.seq < seq)) {
      const last = shown.length ? `seq ${shown[shown.length - 1].seq}` : "no record";
      return out("truncated", `the map of batch ${batch} holds seq ${seq} (record hash ${leafHash}) of ${subject}; the trail shown ends at ${last}`);
    }
    if (!at.length) return out("head_mismatch", `the map holds seq ${seq} (record hash ${leafHash}); the trail shown has no record with that seq`);
    if (at[0].recordHash !== leafHash) return out("head_mismatch", `the map holds seq ${seq} as record hash ${leafHash}; the trail shows ${at[0].recordHash}`);
    if (!at[0].before) return out("head_mismatch", `the map of batch ${batch} holds seq ${seq}, which the trail shows anchored after batch ${batch} (or pending)`);
    if (beyond.length) return out("head_mismatch", `the map of batch ${batch} holds seq ${seq}, yet the record with seq ${beyond[0].seq} is shown anchored in batch ${batch} or before`);
  }
  if (latest) {
    const fresh = latestFromCheckpoint(latestCheckpoint, trust);
    if (fresh.verdict) return out(fresh.verdict, fresh.reason);
    if (fresh.size > BigInt(proof.size)) {
      return out("stale", `the map is of batch ${batch} (size ${proof.size}), but the log's latest cosigned checkpoint has size ${fresh.size}`);
    }
  }
  const what = proven.absent ? `${subject} had no trail` : `its head is seq ${proven.member.seq}`;
  return out("complete", `the trail shown is the whole trail of ${subject} as of batch ${batch}${latest ? ", the latest" : ""}: ${what}, map root ${body.map_root}, cosigned by ${head.cosigners.join(", ") || "no witness"}`);
}

/** Verify a trail answer of GET /api/v1/suggestions/{code}/trail (object or JSON text):
 * {tracking_code, state, records: [{record_hash, status, record, receipt}], map}. Returns
 * {verdict, trail: {verdict, ...§5 result}, completeness: {...} | null, records, subject,
 * trusted, cosigners}. The overall `verdict` is the §5 trail verdict when that fails (or is
 * pending), else the completeness verdict when the answer carries a map, else `valid`. */
export function verifyTrail(answer, trust, options = {}) {
  if (typeof answer === "string") answer = parseJson(answer);
  trust = trustFromKeys(trust);
  const trusted = describeTrust(trust);
  const log = options.log || (isObject(answer) && answer.log) || "suggestions";
  if (!LOGS.includes(log)) throw new Error(`log must be one of ${LOGS}`);
  const subject = isObject(answer) ? answer.tracking_code || answer.subject || null : null;
  const entries = isObject(answer) ? answer.records : answer;
  const trail = verifyTrailEntries(entries, trust, { log, subject });
  const cosigners = [...new Set(trail.records.flatMap((r) => r.cosigners || []))].sort();
  let completeness = null;
  if (isObject(answer)) {
    const map = answer.map === undefined ? null : answer.map;
    completeness = checkCompleteness(map, entries, trail.subject || subject, trust, { ...options, log });
  }
  // The whole trail's word: the §5 verdict unless it is valid, then the completeness verdict
  // (no_map: completeness cannot be proven, the trail is `valid` as far as it goes).
  let verdict = trail.verdict;
  if (verdict === "valid" && completeness && completeness.verdict !== "no_map") verdict = completeness.verdict;
  const reason = verdict === trail.verdict ? trail.reason : completeness.reason;
  return { verdict, reason, trail, completeness, records: trail.records, subject: trail.subject || subject, trusted, cosigners, state: trail.state };
}

export { checkReceiptCheckpoint };
