// Strict JSON (RFC 8259) as the Python verifier reads receipts (verifier/receipt.py
// receipt_from_json): no duplicate members, no NaN/Infinity, at most 64 levels of nesting, a
// leading byte order mark ignored. Unlike JSON.parse it keeps what JSON.parse would lose:
// a number written with a fraction or exponent ("1.0", "1e3") is a JsonFloat (Python reads
// it as a float, which no record may hold), and an integer beyond ±(2^53 − 1) is a BigInt.

export class JsonFloat {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

export class JsonError extends Error {}

export const MAX_NESTING = 64;

function define(obj, key, value) {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Parse strict JSON text; JsonError for anything Python's receipt reader refuses. */
export function parseJson(text) {
  if (typeof text !== "string") throw new JsonError("JSON text is a string");
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;

  function ws() {
    while (i < n) {
      const c = text[i];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") i++;
      else break;
    }
  }
  function fail(what) {
    throw new JsonError(`the receipt is not JSON: ${what} at character ${i}`);
  }
  function value(depth) {
    ws();
    if (i >= n) fail("unexpected end");
    const c = text[i];
    if (c === "{" || c === "[") {
      if (depth + 1 > MAX_NESTING) {
        throw new JsonError(`the receipt nests deeper than ${MAX_NESTING} levels`);
      }
      return c === "{" ? object(depth + 1) : array(depth + 1);
    }
    if (c === '"') return string();
    if (c === "t" && text.startsWith("true", i)) { i += 4; return true; }
    if (c === "f" && text.startsWith("false", i)) { i += 5; return false; }
    if (c === "n" && text.startsWith("null", i)) { i += 4; return null; }
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    return fail(`unexpected ${JSON.stringify(c)}`);
  }
  function object(depth) {
    i++;
    const out = {};
    const seen = new Set();
    ws();
    if (text[i] === "}") { i++; return out; }
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a member name");
      const key = string();
      if (seen.has(key)) {
        throw new JsonError(`duplicate member ${JSON.stringify(key)}: a receipt must mean one thing`);
      }
      seen.add(key);
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      define(out, key, value(depth));
      ws();
      if (text[i] === ",") { i++; continue; }
      if (text[i] === "}") { i++; return out; }
      fail("expected ',' or '}'");
    }
  }
  function array(depth) {
    i++;
    const out = [];
    ws();
    if (text[i] === "]") { i++; return out; }
    for (;;) {
      out.push(value(depth));
      ws();
      if (text[i] === ",") { i++; continue; }
      if (text[i] === "]") { i++; return out; }
      fail("expected ',' or ']'");
    }
  }
  function string() {
    i++;
    let out = "";
    let start = i;
    for (;;) {
      if (i >= n) fail("unterminated string");
      const c = text.charCodeAt(i);
      if (c === 0x22) { out += text.slice(start, i); i++; return out; }
      if (c < 0x20) fail("a control character in a string");
      if (c === 0x5c) {
        out += text.slice(start, i);
        const e = text[i + 1];
        const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
        if (e in simple) { out += simple[e]; i += 2; }
        else if (e === "u") {
          const hex = text.substr(i + 2, 4);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("a bad \\u escape");
          out += String.fromCharCode(parseInt(hex, 16));
          i += 6;
        } else fail("a bad escape");
        start = i;
        continue;
      }
      i++;
    }
  }
  function number() {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m) fail("a bad number");
    i += m[0].length;
    if (m[2] !== undefined || m[3] !== undefined) return new JsonFloat(m[0]);
    const big = BigInt(m[0]);
    if (big >= -BigInt(Number.MAX_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)) {
      return Number(big);
    }
    return big;
  }

  const result = value(0);
  ws();
  if (i < n) fail("extra data");
  return result;
}
