// RFC 8785 (JCS) canonical bytes of a record, as core/canonical.py writes them (PROTOCOL §2).
// Records carry no floats and no integers beyond ±(2^53 − 1) (PROTOCOL §1): both are refused,
// as are lone surrogates, rather than relying on JCS number formatting.
import { JsonFloat } from "./json.js";
import { utf8 } from "./bytes.js";

export class CanonicalizationError extends Error {}

export const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function str(text, path) {
  if (LONE_SURROGATE.test(text)) {
    throw new CanonicalizationError(`${path}: a lone surrogate is not Unicode text`);
  }
  // JSON.stringify escapes exactly what RFC 8785 §3.2.2.2 escapes: " \ \b \f \n \r \t and
  // other controls as lowercase \u00xx; nothing else.
  return JSON.stringify(text);
}

function write(value, path) {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (typeof value === "string") return str(value, path);
  if (typeof value === "number") {
    if (!Number.isInteger(value)) {
      throw new CanonicalizationError(`${path}: floating-point numbers are not allowed in records`);
    }
    if (Math.abs(value) > MAX_SAFE_INTEGER) {
      throw new CanonicalizationError(`${path}: integer ${value} is outside ±(2^53 − 1)`);
    }
    return String(value === 0 ? 0 : value);
  }
  if (typeof value === "bigint") {
    throw new CanonicalizationError(`${path}: integer ${value} is outside ±(2^53 − 1)`);
  }
  if (value instanceof JsonFloat) {
    throw new CanonicalizationError(`${path}: floating-point numbers are not allowed in records`);
  }
  if (Array.isArray(value)) {
    return "[" + value.map((item, i) => write(item, `${path}[${i}]`)).join(",") + "]";
  }
  if (typeof value === "object") {
    // Members sorted by UTF-16 code units (§3.2.3): JavaScript's default string order.
    const keys = Object.keys(value).sort();
    return (
      "{" +
      keys.map((k) => str(k, path) + ":" + write(value[k], `${path}.${k}`)).join(",") +
      "}"
    );
  }
  throw new CanonicalizationError(`${path}: ${typeof value} is not a JSON value`);
}

/** The RFC 8785 text of a JSON value (records: objects, arrays, strings, safe integers,
 * booleans, null). CanonicalizationError for anything PROTOCOL §1 forbids. */
export function canonicalText(value) {
  return write(value, "$");
}

/** The RFC 8785 UTF-8 bytes of a JSON value. */
export function canonicalBytes(value) {
  return utf8(canonicalText(value));
}
