// Unit tests of the browser verifier (verifier/web), run by `node --test` from
// tests/web/test_js_unit.py so that ./scripts/test covers them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as V from "../../../verifier/web/index.js";

const asset = (name) => readFileSync(new URL(`../../assets/${name}`, import.meta.url), "utf8");

test("RFC 8785 bytes: sorted members (UTF-16 order), minimal escapes, no floats", () => {
  assert.equal(V.canonicalText({ b: 1, a: [true, null, "x"] }), '{"a":[true,null,"x"],"b":1}');
  assert.equal(V.canonicalText({ "\u20ac": 1, "\ud83d\ude00": 2, "\ufb01": 3 }), '{"€":1,"😀":2,"ﬁ":3}');
  assert.equal(V.canonicalText({ s: "\u0000\u001f\n\"\\/\u2028" }), '{"s":"\\u0000\\u001f\\n\\"\\\\/\u2028"}');
  assert.throws(() => V.canonicalBytes(V.parseJson('{"a":1.0}')), V.CanonicalizationError);
  assert.throws(() => V.canonicalBytes(V.parseJson('{"a":9007199254740992}')), V.CanonicalizationError);
  assert.throws(() => V.canonicalBytes({ a: 0.5 }), V.CanonicalizationError);
  assert.throws(() => V.canonicalBytes({ a: "\ud800" }), V.CanonicalizationError);
  assert.equal(V.canonicalText(V.parseJson('{"a":-9007199254740991}')), '{"a":-9007199254740991}');
});

test("the committed record's canonical bytes and leaf hash (tests/assets)", () => {
  const record = V.parseJson(asset("record-submitted.json"));
  assert.equal(V.canonicalText(record), asset("record-submitted.canonical"));
  assert.equal(V.toHex(V.recordLeafHash(record)), asset("record-submitted.leaf-hash").trim());
});

test("strict JSON: duplicate members and bad numbers are refused", () => {
  assert.throws(() => V.parseJson('{"a":1,"a":2}'), V.JsonError);
  assert.throws(() => V.parseJson("NaN"), V.JsonError);
  assert.throws(() => V.parseJson('{"a":01}'), V.JsonError);
  assert.equal(V.parseJson('\ufeff{"__proto__":1}').__proto__, 1);
  assert.throws(() => V.parseJson("[".repeat(65) + "]".repeat(65)), V.JsonError);
});

test("base64 is read in its one canonical spelling", () => {
  assert.deepEqual([...V.decodeBase64("AAE=")], [0, 1]);
  assert.throws(() => V.decodeBase64("AAF="));
  assert.throws(() => V.decodeBase64("AAE"));
  assert.equal(V.encodeBase64(new Uint8Array([255, 254, 253, 252])), "//79/A==");
});

test("receipts without a trust root are unconfirmed; tampered ones fail earlier", () => {
  assert.equal(V.verifyReceipt(asset("receipt.json"), null).verdict, "unconfirmed");
  assert.equal(V.verifyReceipt(asset("receipt-altered.json"), null).verdict, "altered");
  assert.equal(V.verifyReceipt(asset("receipt-malformed.json"), null).verdict, "malformed");
  assert.equal(V.verifyReceipt("{not json", null).verdict, "malformed");
});

test("an inclusion path that does not fit its index and size is refused", () => {
  const leaf = new Uint8Array(32);
  assert.throws(() => V.rootFromInclusionPath(leaf, 0, 2, []), V.InvalidProof);
  assert.throws(() => V.rootFromInclusionPath(leaf, 2, 2, [leaf]), V.InvalidProof);
  assert.deepEqual(V.rootFromInclusionPath(leaf, 0, 1, []).root, leaf);
});

test("verifier keys: key ID, type and form are checked", () => {
  // RFC 8032 test 1 public key, named as a log
  const pub = V.fromHex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  const name = "civic-ledger.localhost/suggestions";
  const id = V.toHex(V.keyId(name, 1, pub));
  const text = `${name}+${id}+${V.encodeBase64(new Uint8Array([1, ...pub]))}`;
  const key = V.parseLogKey(text);
  assert.equal(key.keyIdHex, id);
  assert.throws(() => V.parseWitnessKey(text), /not a cosignature/);
  assert.throws(() => V.parseLogKey(text.replace(`+${id}+`, "+00000000+")), /does not belong/);
  // RFC 8032 test 1: the empty message
  const sig = V.fromHex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  assert.equal(key.verify(new Uint8Array(0), sig), true);
  sig[0] ^= 1;
  assert.equal(key.verify(new Uint8Array(0), sig), false);
});

test("map proofs: the empty map proves every subject absent; a wrong key is refused", () => {
  const key = V.toHex(V.mapKeyOf("SG-7K3M-9QXD-P2WT"));
  const zero = "00".repeat(32);
  assert.deepEqual(V.verifyMapProof(zero, "SG-7K3M-9QXD-P2WT", { key, siblings: [], terminal: null }), { absent: true });
  assert.throws(() => V.verifyMapProof(zero, "SG-OTHER", { key, siblings: [], terminal: null }), V.MapProofError);
  const value = "00000000000000035" + "a".repeat(63);
  const single = { key, value };
  const root = V.toHex(V.sha256(V.fromHex("02" + key + value)));
  assert.deepEqual(V.verifyMapProof(root, "SG-7K3M-9QXD-P2WT", { key, siblings: [], terminal: single }), { member: { seq: 3, leafHash: "5" + "a".repeat(63) } });
});
