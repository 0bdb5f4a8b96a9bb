// civic-ledger's verifier for the browser: everything a page (or the offline file) needs to
// check receipts and trails itself, from the log's and the witnesses' keys alone.
// Bundled by scripts/build-web into api/portal/static/dist/civic-verify.js (window.CivicVerify).
export { parseJson, JsonFloat, JsonError } from "./json.js";
export { canonicalBytes, canonicalText, CanonicalizationError } from "./canonical.js";
export { toHex, fromHex, encodeBase64, decodeBase64, sha256 } from "./bytes.js";
export { leafHash, nodeHash, recordLeafHash, rootFromInclusionPath, InvalidProof } from "./merkle.js";
export { checkRecordShape, parseAt, RecordShapeError } from "./records.js";
export {
  keyId,
  parseVerifierKey,
  parseLogKey,
  parseWitnessKey,
  splitNote,
  openNote,
  parseCheckpoint,
  openCheckpoint,
  checkpointText,
} from "./note.js";
export { verifyReceipt, trustFromKeys, describeTrust, checkReceiptCheckpoint, isChecksumAddress } from "./receipt.js";
export { verifyMapProof, keyOf as mapKeyOf, MapProofError } from "./map.js";
export { verifyTrail, verifyTrailEntries, checkCompleteness } from "./trail.js";

/** Trust from the answer of GET /api/v1/logs/{log}/keys: {log, origin, witnesses: [{name,
 * key, url}]}; quorum defaults to every witness listed. */
export function trustFromKeysAnswer(keys, quorum) {
  const witnesses = (keys.witnesses || []).map((w) => (typeof w === "string" ? w : w.key));
  return { logKey: keys.log, witnesses, quorum: quorum === undefined ? witnesses.length : quorum };
}

export const VERSION = "1";
