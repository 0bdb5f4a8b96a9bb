// The map of trail heads (PROTOCOL §10), as core/trailmap.py verifies its proofs.
import { concat, equal, fromHex, sha256, toHex, utf8 } from "./bytes.js";
import { isObject } from "./records.js";

export class MapProofError extends Error {}

const EMPTY = new Uint8Array(32);
const TERMINAL = new Uint8Array([2]);
const INNER = new Uint8Array([3]);

/** SHA-256(utf8(subject)): the subject's key in the map. */
export function keyOf(subject) {
  return sha256(utf8(subject));
}

/** Bit `depth` of a key, from the most significant bit of its first byte. */
export function bit(key, depth) {
  return (key[depth >> 3] >> (7 - (depth & 7))) & 1;
}

export function terminalHash(key, value) {
  return sha256(concat(TERMINAL, key, value));
}

export function innerHash(left, right) {
  return sha256(concat(INNER, left, right));
}

function hex(value, size, what) {
  if (typeof value !== "string" || value.length !== 2 * size || !/^[0-9a-f]*$/.test(value)) {
    throw new MapProofError(`${what} must be ${2 * size} lowercase hex characters`);
  }
  return fromHex(value);
}

function exactly(obj, names) {
  const keys = Object.keys(obj);
  return keys.length === names.length && names.every((n) => keys.includes(n));
}

/** A map proof from its JSON form {key, siblings, terminal}; MapProofError otherwise. */
export function parseMapProof(data) {
  if (!isObject(data) || !exactly(data, ["key", "siblings", "terminal"])) {
    throw new MapProofError("a map proof is an object with key, siblings and terminal");
  }
  const key = hex(data.key, 32, "proof.key");
  if (!Array.isArray(data.siblings) || data.siblings.length > 256) {
    throw new MapProofError("proof.siblings must be a list of at most 256 hashes");
  }
  const siblings = data.siblings.map((s) => hex(s, 32, "a sibling"));
  let terminal = null;
  if (data.terminal !== null) {
    if (!isObject(data.terminal) || !exactly(data.terminal, ["key", "value"])) {
      throw new MapProofError("proof.terminal is null or an object with key and value");
    }
    terminal = { key: hex(data.terminal.key, 32, "terminal.key"), value: hex(data.terminal.value, 40, "terminal.value") };
  }
  return { key, siblings, terminal };
}

/** The map root a proof leads to: from the terminal up, the last sibling first. */
export function mapProofRoot(proof) {
  let h = proof.terminal === null ? EMPTY : terminalHash(proof.terminal.key, proof.terminal.value);
  for (let depth = proof.siblings.length - 1; depth >= 0; depth--) {
    const sibling = proof.siblings[depth];
    h = bit(proof.key, depth) ? innerHash(sibling, h) : innerHash(h, sibling);
  }
  return h;
}

/** Check a map proof (JSON form) for `subject` against `mapRoot` (hex or bytes).
 * Returns {member: {seq, leafHash}} or {absent: true}; throws MapProofError when the proof
 * is not one, its key is not SHA-256(utf8(subject)), or it does not reach the root (the
 * completeness verdict `altered`). */
export function verifyMapProof(mapRoot, subject, proofJson) {
  const root = typeof mapRoot === "string" ? hex(mapRoot, 32, "map_root") : mapRoot;
  const proof = parseMapProof(proofJson);
  if (!equal(proof.key, keyOf(subject))) throw new MapProofError("the proof's key is not SHA-256 of the subject");
  if (!equal(mapProofRoot(proof), root)) throw new MapProofError("the map proof does not reach the map root");
  const t = proof.terminal;
  if (t === null) return { absent: true };
  if (equal(t.key, proof.key)) {
    let seq = 0n;
    for (let i = 0; i < 8; i++) seq = (seq << 8n) | BigInt(t.value[i]);
    return { member: { seq: Number(seq), leafHash: toHex(t.value.slice(8)) } };
  }
  for (let d = 0; d < proof.siblings.length; d++) {
    if (bit(t.key, d) !== bit(proof.key, d)) throw new MapProofError("the terminal does not lie on the key's path");
  }
  return { absent: true };
}
