// C2SP signed notes, checkpoints and cosignatures (PROTOCOL §9), as core/note.py,
// core/checkpoint.py and core/cosignature.py read them. Ed25519 from @noble/curves, verified
// strictly as RFC 8032 (not ZIP 215), the way the Python verifier's OpenSSL does.
import { ed25519 } from "@noble/curves/ed25519.js";
import { concat, decodeBase64, encodeBase64, equal, sha256, toHex, utf8 } from "./bytes.js";

export const SIGNATURE_TYPE_ED25519 = 0x01;
export const SIGNATURE_TYPE_COSIGNATURE_V1 = 0x04;
export const MAX_SIGNATURES = 100;
const PREFIX = "\u2014 "; // EM DASH, SPACE
const MAX_TIMESTAMP = (1n << 63n) - 1n;
const MAX_SIZE = (1n << 64n) - 1n;

export class NoteError extends Error {}
export class MalformedNote extends NoteError {}
export class MalformedKey extends NoteError {}
export class UnknownKey extends NoteError {}
export class MalformedCheckpoint extends NoteError {}
export class WrongOrigin extends NoteError {}
export class BadSignature extends NoteError {
  constructor(name, keyId) {
    super(`the signature by ${name}+${toHex(keyId)} does not verify`);
    this.keyName = name;
    this.keyId = keyId;
  }
}

/** Non-empty, no Unicode space, no '+', no control character, no surrogate. */
export function isValidKeyName(name) {
  if (typeof name !== "string" || !name) return false;
  for (const c of name) {
    const code = c.codePointAt(0);
    if (c === "+" || /\s/u.test(c) || code === 0x85 || code < 0x20 || (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
  }
  return true;
}

/** SHA-256(name || 0x0A || type || public key)[:4]. */
export function keyId(name, type, publicKey) {
  return sha256(concat(utf8(name), new Uint8Array([0x0a, type]), publicKey)).slice(0, 4);
}

function ed25519Verify(publicKey, message, signature) {
  if (signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** A verifier key from `<name>+<8 hex key id>+<base64(type || public key)>` of the given
 * type (0x01 log key, 0x04 witness cosignature/v1 key). MalformedKey otherwise. The result
 * `{name, type, publicKey, keyId, text, id}` verifies signature lines (`verify`). */
export function parseVerifierKey(text, type = SIGNATURE_TYPE_ED25519) {
  if (typeof text !== "string") throw new MalformedKey("a verifier key is text");
  text = text.trim();
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (first < 0 || second < 0) throw new MalformedKey("a verifier key is <name>+<hex key ID>+<base64 key>");
  const name = text.slice(0, first);
  const hexId = text.slice(first + 1, second);
  const encoded = text.slice(second + 1);
  if (!isValidKeyName(name)) throw new MalformedKey(`${JSON.stringify(name)} is not a key name`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) {
    throw new MalformedKey(`the key ID of a verifier key is 8 lowercase hex digits, got ${JSON.stringify(hexId)}`);
  }
  let raw;
  try {
    raw = decodeBase64(encoded);
  } catch (e) {
    throw new MalformedKey(`the key of a verifier key: ${e.message}`);
  }
  if (raw.length < 2) throw new MalformedKey("the key of a verifier key is a type byte and key material");
  if (raw[0] !== type) {
    const kind = type === SIGNATURE_TYPE_ED25519 ? "an Ed25519 note key" : "a cosignature/v1 key";
    throw new MalformedKey(`not ${kind} (type 0x${raw[0].toString(16).padStart(2, "0")})`);
  }
  const publicKey = raw.slice(1);
  if (publicKey.length !== 32) throw new MalformedKey(`an Ed25519 public key is 32 bytes, got ${publicKey.length}`);
  const id = keyId(name, type, publicKey);
  if (toHex(id) !== hexId) throw new MalformedKey(`the key ID ${hexId} does not belong to this name and key`);
  const verify =
    type === SIGNATURE_TYPE_ED25519
      ? (message, signature) => ed25519Verify(publicKey, message, signature)
      : (message, signature) => {
          if (signature.length !== 72) return false;
          const time = timestampOfBytes(signature);
          if (time > MAX_TIMESTAMP) return false;
          const signed = concat(utf8(`cosignature/v1\ntime ${time}\n`), message);
          return ed25519Verify(publicKey, signed, signature.slice(8));
        };
  return { name, type, publicKey, keyId: id, keyIdHex: hexId, text, verify };
}

/** A log's key (type 0x01). */
export function parseLogKey(text) {
  return parseVerifierKey(text, SIGNATURE_TYPE_ED25519);
}

/** A witness's cosignature/v1 key (type 0x04). */
export function parseWitnessKey(text) {
  return parseVerifierKey(text, SIGNATURE_TYPE_COSIGNATURE_V1);
}

function timestampOfBytes(signature) {
  let t = 0n;
  for (let i = 0; i < 8; i++) t = (t << 8n) | BigInt(signature[i]);
  return t;
}

function checkCharacters(text) {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a) || (c >= 0xd800 && c <= 0xdfff)) {
      // A well-formed surrogate pair is one character (Python sees code points).
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { i++; continue; }
      }
      throw new MalformedNote(`a note holds no control character but the newline (found U+${c.toString(16).toUpperCase().padStart(4, "0")})`);
    }
  }
}

function parseSignatureLine(line) {
  if (!line.startsWith(PREFIX)) throw new MalformedNote("a signature line starts with an em dash (U+2014) and a space");
  const rest = line.slice(PREFIX.length);
  const space = rest.indexOf(" ");
  const name = space < 0 ? rest : rest.slice(0, space);
  if (space < 0 || !isValidKeyName(name)) throw new MalformedNote(`no valid key name in the signature line ${JSON.stringify(line)}`);
  let raw;
  try {
    raw = decodeBase64(rest.slice(space + 1));
  } catch (e) {
    throw new MalformedNote(`the signature by ${name}: ${e.message}`);
  }
  if (raw.length <= 4) throw new MalformedNote(`the signature by ${name} is a key ID and at least one byte`);
  return { name, keyId: raw.slice(0, 4), signature: raw.slice(4) };
}

/** The text and signature lines of a note, checked for form only. MalformedNote otherwise. */
export function splitNote(note) {
  if (typeof note !== "string") throw new MalformedNote("a note is text");
  checkCharacters(note);
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new MalformedNote("a note has a blank line between its text and its signatures");
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) throw new MalformedNote("every signature line ends in a newline");
  const lines = block.slice(0, -1).split("\n");
  if (lines.length > MAX_SIGNATURES) throw new MalformedNote(`more than ${MAX_SIGNATURES} signature lines`);
  return { text: note.slice(0, split + 1), lines: lines.map(parseSignatureLine) };
}

const ident = (name, id) => `${name}+${toHex(id)}`;

/** c2sp.org/signed-note: lines by unknown keys are ignored, every line by a known key must
 * verify (BadSignature), at least one must (UnknownKey). */
export function openNote(note, known) {
  const byId = new Map();
  for (const key of known) {
    const id = ident(key.name, key.keyId);
    const other = byId.get(id);
    if (other && !equal(other.publicKey, key.publicKey)) throw new Error(`two known keys are both ${id}`);
    byId.set(id, key);
  }
  const { text, lines } = splitNote(note);
  const message = utf8(text);
  const verified = [];
  const ignored = [];
  const same = (a, b) => a.name === b.name && equal(a.keyId, b.keyId) && equal(a.signature, b.signature);
  for (const line of lines) {
    const key = byId.get(ident(line.name, line.keyId));
    if (!key) {
      if (!ignored.some((l) => same(l, line))) ignored.push(line);
      continue;
    }
    if (!key.verify(message, line.signature)) throw new BadSignature(line.name, line.keyId);
    if (!verified.some((l) => same(l, line))) verified.push(line);
  }
  if (!verified.length) {
    const seen = ignored.map((l) => ident(l.name, l.keyId)).join(", ");
    throw new UnknownKey(`no signature by a known key (the note is signed by ${seen})`);
  }
  return { text, signatures: verified, unverified: ignored };
}

/** A checkpoint from its note text: {origin, size (BigInt), root (32 bytes), extensions}. */
export function parseCheckpoint(text) {
  if (!text.endsWith("\n")) throw new MalformedCheckpoint("a checkpoint's text ends in a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new MalformedCheckpoint("a checkpoint has an origin, a size and a root line");
  if (lines.some((l) => !l)) throw new MalformedCheckpoint("a checkpoint has no empty line");
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || BigInt(sizeText) > MAX_SIZE) {
    throw new MalformedCheckpoint(`the size line is a decimal without leading zeroes, got ${JSON.stringify(sizeText)}`);
  }
  let root;
  try {
    root = decodeBase64(rootText);
  } catch (e) {
    throw new MalformedCheckpoint(`the root line: ${e.message}`);
  }
  if (root.length !== 32) throw new MalformedCheckpoint("the root is 32 bytes");
  return { origin, size: BigInt(sizeText), root, extensions };
}

/** Verify a (cosigned) checkpoint with the log's key and the trusted witnesses' keys, as
 * core/checkpoint.py open_checkpoint. Returns {checkpoint, note, cosignatures: [{name, keyId,
 * timestamp}], witnesses: [distinct names+ids]}. */
export function openCheckpoint(note, logKey, witnesses = []) {
  const opened = openNote(note, [logKey, ...witnesses]);
  if (!opened.signatures.some((s) => s.name === logKey.name && equal(s.keyId, logKey.keyId))) {
    throw new UnknownKey(`the checkpoint is not signed by the log key ${logKey.text}`);
  }
  const checkpoint = parseCheckpoint(opened.text);
  if (checkpoint.origin !== logKey.name) {
    throw new WrongOrigin(`the checkpoint's origin ${JSON.stringify(checkpoint.origin)} is not the log ${JSON.stringify(logKey.name)}`);
  }
  const witnessIds = new Set(witnesses.map((w) => ident(w.name, w.keyId)));
  const cosignatures = opened.signatures
    .filter((s) => witnessIds.has(ident(s.name, s.keyId)))
    .map((s) => ({ name: s.name, keyId: toHex(s.keyId), timestamp: Number(timestampOfBytes(s.signature)) }));
  const distinct = [...new Map(cosignatures.map((c) => [`${c.name}+${c.keyId}`, c])).values()];
  return { checkpoint, note: opened, cosignatures, witnesses: distinct };
}

/** The checkpoint body of PROTOCOL §9. */
export function checkpointText(origin, size, root) {
  return `${origin}\n${size}\n${encodeBase64(root)}\n`;
}
