// Verifying one receipt offline (PROTOCOL §4, §5, §7, §11), in the order, with the numbers
// and the verdict words of verifier/receipt.py and verifier/checkpoint.py. Step 4 is done from
// the receipt's cosigned checkpoint with the trusted keys; the browser never asks a chain.
import { fromHex, isHex64, keccak256, toHex, utf8 } from "./bytes.js";
import { CanonicalizationError, canonicalBytes } from "./canonical.js";
import { JsonError, JsonFloat, parseJson } from "./json.js";
import { InvalidProof, leafHash, rootFromInclusionPath } from "./merkle.js";
import {
  BadSignature,
  MalformedCheckpoint,
  MalformedNote,
  UnknownKey,
  WrongOrigin,
  openCheckpoint,
  parseCheckpoint,
  parseLogKey,
  parseWitnessKey,
  splitNote,
} from "./note.js";
import { LOGS, RecordShapeError, checkRecordShape, isInteger, isObject, parseAt } from "./records.js";

const MAX_UINT32 = 2n ** 32n - 1n;
const MAX_UINT64 = 2n ** 64n - 1n;
const MAX_CHAIN_ID = 2n ** 256n - 1n;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const TX_HASH = /^0x[0-9a-f]{64}$/;

class Malformed extends Error {}

/** The trust root of offline verification: `{logKey, witnesses, quorum}` as verifier key
 * texts (GET /api/v1/logs/{log}/keys), parsed. Throws for a malformed key or a quorum larger
 * than the number of distinct witness keys. */
export function trustFromKeys(trust) {
  if (!trust) return null;
  if (trust.parsed) return trust;
  const logKey = parseLogKey(trust.logKey);
  const witnesses = (trust.witnesses || []).map((w) => parseWitnessKey(typeof w === "string" ? w : w.key));
  const quorum = trust.quorum === undefined ? 0 : trust.quorum;
  if (!Number.isInteger(quorum) || quorum < 0) throw new Error("the witness quorum is a non-negative integer");
  const distinct = new Set(witnesses.map((w) => `${w.name}+${w.keyIdHex}`)).size;
  if (quorum > distinct) {
    throw new Error(`a quorum of ${quorum} needs at least ${quorum} distinct witness keys, ${witnesses.length} given`);
  }
  return { parsed: true, logKey, witnesses, quorum };
}

/** What a page shows of the keys it trusted: name and key ID of each. */
export function describeTrust(trust) {
  const t = trustFromKeys(trust);
  if (!t) return null;
  return {
    log: { name: t.logKey.name, keyId: t.logKey.keyIdHex, key: t.logKey.text },
    witnesses: t.witnesses.map((w) => ({ name: w.name, keyId: w.keyIdHex, key: w.text })),
    quorum: t.quorum,
  };
}

function kind(value) {
  if (value === null) return "null";
  if (value === true || value === false) return String(value);
  if (value instanceof JsonFloat) return `the non-integer number ${value.text}`;
  if (typeof value === "number" && !Number.isInteger(value)) return `the non-integer number ${value}`;
  if (typeof value === "string") return "a string";
  if (Array.isArray(value)) return "an array";
  if (isObject(value)) return "an object";
  return typeof value;
}

function integer(value, name, low, high) {
  if (!isInteger(value)) throw new Malformed(`${name} must be an integer, got ${kind(value)}`);
  const big = BigInt(value);
  if (big < low || big > high) throw new Malformed(`${name} must be between ${low} and ${high}, got ${value}`);
  return typeof value === "bigint" ? value : value;
}

function object(value, name) {
  if (!isObject(value)) throw new Malformed(`${name} must be a JSON object`);
  return value;
}

function members(obj, name, required) {
  const missing = required.filter((m) => !Object.prototype.hasOwnProperty.call(obj, m));
  if (missing.length) throw new Malformed(`${name} lacks ${missing.join(", ")}`);
}

function unknown(obj, name, known) {
  return Object.keys(obj).filter((m) => !known.includes(m)).map((m) => `${name}.${m}`);
}

function hash(value, name) {
  if (!isHex64(value)) throw new Malformed(`${name} must be 64 lowercase hex characters`);
  return fromHex(value);
}

/** EIP-55: each hex letter is upper case exactly where the Keccak-256 of the lower-case
 * address has a nibble of 8 or more. */
export function isChecksumAddress(address) {
  const digits = address.slice(2);
  const h = toHex(keccak256(utf8(digits.toLowerCase())));
  for (let i = 0; i < 40; i++) {
    const c = digits[i];
    if (/[a-f]/.test(c) && parseInt(h[i], 16) >= 8) return false;
    if (/[A-F]/.test(c) && parseInt(h[i], 16) < 8) return false;
  }
  return true;
}

function step1(top) {
  object(top, "the receipt");
  members(top, "the receipt", ["v"]);
  const version = integer(top.v, "v", 0n, MAX_UINT64);
  if (version !== 1 && version !== 2) {
    throw new Malformed(`receipt version ${version} is not supported; this verifier knows v=1 and v=2`);
  }
  members(top, "the receipt", ["record", "proof", "anchor"]);
  const known = ["v", "record", "proof", "anchor", "leaf_hash", "redaction"];
  let checkpoint = null;
  if (version === 2) {
    known.push("checkpoint");
    if (Object.prototype.hasOwnProperty.call(top, "checkpoint")) {
      checkpoint = top.checkpoint;
      if (typeof checkpoint !== "string") {
        throw new Malformed(`checkpoint must be a string (a C2SP checkpoint, PROTOCOL §11), got ${kind(checkpoint)}`);
      }
    }
  }
  let ignored = unknown(top, "receipt", known);
  const record = top.record;
  let canonical = null;
  let kept = null;
  let redaction = null;
  if (record === null) {
    members(top, "a redacted receipt (record null)", ["leaf_hash", "redaction"]);
    kept = hash(top.leaf_hash, "leaf_hash");
    redaction = object(top.redaction, "redaction");
    members(redaction, "redaction", ["at", "reason"]);
    try {
      parseAt(redaction.at);
    } catch (e) {
      throw new Malformed(`redaction: ${e.message}`);
    }
    if (typeof redaction.reason !== "string" || !redaction.reason) {
      throw new Malformed("redaction.reason must be a non-empty string");
    }
    ignored = ignored.concat(unknown(redaction, "redaction", ["at", "reason"]));
  } else {
    const stray = ["leaf_hash", "redaction"].filter((m) => Object.prototype.hasOwnProperty.call(top, m));
    if (stray.length) {
      throw new Malformed(`${stray.join(" and ")} belong only to a redacted receipt, whose record is null`);
    }
    try {
      checkRecordShape(record);
      canonical = canonicalBytes(record);
    } catch (e) {
      if (e instanceof RecordShapeError || e instanceof CanonicalizationError) throw new Malformed(`record: ${e.message}`);
      throw e;
    }
  }
  const proof = object(top.proof, "proof");
  const proofMembers = ["log", "batch", "index", "size", "path", "root"];
  members(proof, "proof", proofMembers);
  ignored = ignored.concat(unknown(proof, "proof", proofMembers));
  const log = proof.log;
  if (typeof log !== "string" || !LOGS.includes(log)) throw new Malformed(`proof.log must be one of ${[...LOGS].sort()}`);
  if (record !== null && log !== record.log) {
    throw new Malformed(`proof.log ${JSON.stringify(log)} differs from record.log ${JSON.stringify(record.log)}`);
  }
  const batch = integer(proof.batch, "proof.batch", 0n, MAX_UINT64);
  const size = integer(proof.size, "proof.size", 1n, MAX_UINT32);
  const index = integer(proof.index, "proof.index", 0n, MAX_UINT32);
  if (index >= size) throw new Malformed(`proof.index ${index} must be below proof.size ${size}`);
  if (!Array.isArray(proof.path)) throw new Malformed("proof.path must be a JSON array");
  const path = proof.path.map((item, i) => hash(item, `proof.path[${i}]`));
  const root = hash(proof.root, "proof.root");

  const anchor = object(top.anchor, "anchor");
  const anchorMembers = ["chain_id", "contract", "tx", "block"];
  members(anchor, "anchor", anchorMembers);
  ignored = ignored.concat(unknown(anchor, "anchor", anchorMembers));
  const chainId = integer(anchor.chain_id, "anchor.chain_id", 1n, MAX_CHAIN_ID);
  const contract = anchor.contract;
  if (typeof contract !== "string" || !ADDRESS.test(contract)) {
    throw new Malformed("anchor.contract must be 0x followed by 40 hex characters");
  }
  const digits = contract.slice(2);
  if (digits !== digits.toLowerCase() && digits !== digits.toUpperCase() && !isChecksumAddress(contract)) {
    throw new Malformed(`anchor.contract ${contract} is mixed-case but not an EIP-55 checksum`);
  }
  if (typeof anchor.tx !== "string" || !TX_HASH.test(anchor.tx)) {
    throw new Malformed("anchor.tx must be 0x followed by 64 lowercase hex characters");
  }
  const block = integer(anchor.block, "anchor.block", 0n, MAX_UINT64);
  return { canonical, kept, redaction, log, batch, index, size, path, root, chainId, contract, tx: anchor.tx, block, version, checkpoint, ignored, record };
}

// Receipts of one batch share one checkpoint: each (trust, note) is opened once, so a trail of
// ten records in one batch costs three Ed25519 verifications, not thirty.
const openedNotes = new WeakMap();

function openOnce(note, trust) {
  let notes = openedNotes.get(trust);
  if (!notes) {
    notes = new Map();
    openedNotes.set(trust, notes);
  }
  let done = notes.get(note);
  if (!done) {
    try {
      done = { value: openCheckpoint(note, trust.logKey, trust.witnesses) };
    } catch (e) {
      done = { error: e };
    }
    notes.set(note, done);
  }
  if (done.error) throw done.error;
  return done.value;
}

function unverifiedOrigin(note) {
  try {
    return parseCheckpoint(splitNote(note).text).origin;
  } catch {
    return null;
  }
}

/** Step 4 offline (verifier/checkpoint.py check_receipt_checkpoint): {verdict | null,
 * details, opened}. */
export function checkReceiptCheckpoint(note, { log, size, root, trust }) {
  const key = trust.logKey;
  const done = [];
  if (!key.name.endsWith(`/${log}`)) {
    done.push(`the log key ${JSON.stringify(key.name)} is not the key of log ${JSON.stringify(log)} (its name ends in /${log})`);
    return { verdict: "wrong_chain", details: done };
  }
  let opened;
  try {
    opened = openOnce(note, trust);
  } catch (e) {
    if (e instanceof BadSignature) {
      done.push(`the checkpoint's line by ${e.keyName}+${toHex(e.keyId)} does not verify`);
      return { verdict: "bad_signature", details: done };
    }
    if (e instanceof UnknownKey) {
      const origin = unverifiedOrigin(note);
      if (origin === key.name) {
        done.push(`the checkpoint names log ${JSON.stringify(origin)} but is not signed by its key ${key.text}`);
        return { verdict: "bad_signature", details: done };
      }
      done.push(`the checkpoint is not signed by the log key ${JSON.stringify(key.name)}; it claims to be of ${JSON.stringify(origin)}: another log's`);
      return { verdict: "wrong_chain", details: done };
    }
    if (e instanceof WrongOrigin) {
      done.push(e.message);
      return { verdict: "wrong_chain", details: done };
    }
    if (e instanceof MalformedNote || e instanceof MalformedCheckpoint) {
      done.push(`the checkpoint is not a signed C2SP checkpoint: ${e.message}`);
      return { verdict: "malformed", details: done };
    }
    throw e;
  }
  const cp = opened.checkpoint;
  done.push(`the checkpoint of ${JSON.stringify(cp.origin)} is signed by the log key ${key.name}`);
  if (cp.size !== BigInt(size) || toHex(cp.root) !== toHex(root)) {
    done.push(`the checkpoint has size ${cp.size} and root ${toHex(cp.root)}; the receipt claims size ${size} and root ${toHex(root)}`);
    return { verdict: "root_mismatch", details: done, opened };
  }
  done.push(`its size ${size} and root ${toHex(root)} are the receipt's`);
  const cosigned = opened.witnesses.map((w) => w.name).sort();
  const distinct = new Set(trust.witnesses.map((w) => `${w.name}+${w.keyIdHex}`)).size;
  done.push(`${cosigned.length} of ${distinct} trusted witnesses cosigned (${cosigned.length ? cosigned.join(", ") : "none"}); ${trust.quorum || "none"} required`);
  if (cosigned.length < trust.quorum) return { verdict: "unconfirmed", details: done, opened };
  return { verdict: null, details: done, opened };
}

/** Verify a receipt (parsed JSON, or its text) offline with `trust` = {logKey, witnesses,
 * quorum} (key texts). Never throws for a bad receipt: every fault is a verdict. Returns
 * {verdict, record_hash, reason, checks: [{step, name, ok, detail}], cosigners: [names],
 * cosignatures: [{name, keyId, timestamp}], trusted: {log, witnesses, quorum} | null,
 * proof: {log, batch, index, size} | null, record}. */
export function verifyReceipt(receipt, trust) {
  const checks = [];
  const out = { verdict: null, record_hash: null, reason: "", checks, cosigners: [], cosignatures: [], trusted: null, proof: null, record: null };
  const passed = (step, name, detail) => checks.push({ step, name, ok: true, detail });
  const fail = (verdict, step, name, detail) => {
    checks.push({ step, name, ok: false, detail });
    out.verdict = verdict;
    out.reason = detail;
    return out;
  };
  let parsedTrust = null;
  try {
    parsedTrust = trustFromKeys(trust);
    out.trusted = parsedTrust && describeTrust(parsedTrust);
  } catch (e) {
    return fail("unconfirmed", 4, "trust root", `the trusted keys cannot be read: ${e.message}`);
  }
  if (typeof receipt === "string") {
    try {
      receipt = parseJson(receipt);
    } catch (e) {
      if (e instanceof JsonError) return fail("malformed", 1, "receipt is well-formed", e.message);
      throw e;
    }
  }
  let r;
  try {
    r = step1(receipt);
  } catch (e) {
    if (e instanceof Malformed) return fail("malformed", 1, "receipt is well-formed", e.message);
    throw e;
  }
  out.record = r.record;
  out.proof = { log: r.log, batch: Number(r.batch), index: Number(r.index), size: Number(r.size), version: Number(r.version) };
  const redacted = r.canonical === null;
  const place = r.version === 1 ? `leaf ${r.index} of ${r.size}` : `entry ${r.index} of ${r.size}`;
  let summary = `v${r.version} ${redacted ? "redacted " : ""}receipt: log '${r.log}', batch ${r.batch}, ${place}, chain ${r.chainId}`;
  if (r.checkpoint !== null && !parsedTrust) summary += "; its checkpoint is not read (no log key given)";
  if (r.ignored.length) summary += `; ignored unknown members: ${r.ignored.join(", ")}`;
  passed(1, "receipt is well-formed", summary);

  let leaf;
  if (r.canonical !== null) {
    leaf = leafHash(r.canonical);
    passed(2, "record hash", `${toHex(leaf)}: SHA-256(0x00 || ${r.canonical.length} canonical bytes of the record)`);
  } else {
    leaf = r.kept;
    passed(2, "record hash", `${toHex(leaf)}: kept leaf hash of a record erased at ${r.redaction.at} (${r.redaction.reason}); its content cannot be checked`);
  }
  out.record_hash = toHex(leaf);

  let computed;
  try {
    computed = rootFromInclusionPath(leaf, r.index, r.size, r.path).root;
  } catch (e) {
    if (!(e instanceof InvalidProof)) throw e;
    return fail("altered", 3, "inclusion proof", `a path of ${r.path.length} hashes does not fit ${place}: ${e.message}`);
  }
  if (toHex(computed) !== toHex(r.root)) {
    return fail("altered", 3, "inclusion proof", `recomputed root ${toHex(computed)} differs from proof.root ${toHex(r.root)}: the record or its proof is not what was anchored`);
  }
  passed(3, "inclusion proof", `recomputed root ${toHex(computed)} from ${r.path.length} path hashes equals proof.root`);

  if (!parsedTrust) {
    return fail("unconfirmed", 4, "trust root", "neither a chain endpoint nor the log's key was given: nothing says the root was anchored (PROTOCOL §11)");
  }
  if (r.checkpoint === null) {
    return fail("unconfirmed", 4, "checkpoint", "the receipt carries no checkpoint to check with the log's key");
  }
  const checked = checkReceiptCheckpoint(r.checkpoint, { log: r.log, size: r.size, root: r.root, trust: parsedTrust });
  if (checked.opened) {
    out.cosignatures = checked.opened.cosignatures;
    out.cosigners = checked.opened.witnesses.map((w) => w.name).sort();
  }
  const ok = checked.verdict ? checked.details.slice(0, -1) : checked.details;
  for (const detail of ok) passed(4, "checkpoint", detail);
  if (checked.verdict) return fail(checked.verdict, 4, "checkpoint", checked.details[checked.details.length - 1]);
  const where = `batch ${r.batch} of log '${r.log}', as its signed checkpoint says`;
  out.verdict = redacted ? "redacted" : "valid";
  out.reason = redacted
    ? `the record's content was erased (${r.redaction.reason}); its leaf hash is in ${where}`
    : `the record is entry ${r.index} of log '${r.log}', in its tree of ${r.size} entries: ${where} (the chain was not asked)`;
  return out;
}
