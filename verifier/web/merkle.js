// RFC 9162 (RFC 6962) hashes and inclusion proofs, as core/merkle.py (PROTOCOL §2, §4, §8).
import { concat, sha256 } from "./bytes.js";
import { canonicalBytes } from "./canonical.js";

export const HASH_SIZE = 32;
const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

export class InvalidProof extends Error {}

/** SHA-256(0x00 || entry). */
export function leafHash(entry) {
  return sha256(concat(LEAF, entry));
}

/** SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  return sha256(concat(NODE, left, right));
}

/** PROTOCOL §2: leaf_hash(record) = SHA-256(0x00 || canonical(record)). */
export function recordLeafHash(record) {
  return leafHash(canonicalBytes(record));
}

/** Recompute a root from a leaf hash and its inclusion path, nearest sibling first
 * (RFC 9162 §2.1.3.2). InvalidProof when the path cannot belong to a leaf at `index` of a
 * `size`-leaf tree. Returns {root, steps: [{onLeft, node}]}. */
export function rootFromInclusionPath(leaf, index, size, path) {
  if (!(index >= 0 && index < size)) {
    throw new InvalidProof(`index ${index} is outside a tree of size ${size}`);
  }
  if (leaf.length !== HASH_SIZE || path.some((p) => p.length !== HASH_SIZE)) {
    throw new InvalidProof("every hash must be 32 bytes");
  }
  // BigInt: indexes and sizes may exceed 2^31, where JavaScript's bit operators stop.
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  let r = leaf;
  const steps = [];
  for (const p of path) {
    if (sn === 0n) throw new InvalidProof("the path is longer than the tree is deep");
    const onLeft = (fn & 1n) === 1n || fn === sn;
    if (onLeft) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
    steps.push({ onLeft, node: r });
  }
  if (sn !== 0n) throw new InvalidProof("the path is shorter than the tree is deep");
  return { root: r, steps };
}
