// The shape of a PROTOCOL §1 record, as core/records.py checks it.
import { JsonFloat } from "./json.js";
import { isHex64 } from "./bytes.js";

export const LOGS = ["suggestions", "votes", "access"];
const MEMBERS = ["v", "log", "type", "subject", "seq", "prev", "at", "actor", "body", "salt"];
const AT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{3}Z$/;
const TYPE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const SALT = /^[0-9a-f]{32}$/;

export class RecordShapeError extends Error {}

export function isObject(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    !Array.isArray(value) &&
    !(value instanceof JsonFloat)
  );
}

export function isInteger(value) {
  return (typeof value === "number" && Number.isInteger(value)) || typeof value === "bigint";
}

/** Milliseconds since the epoch of a §1 time `YYYY-MM-DDTHH:MM:SS.sssZ`; RecordShapeError for
 * another spelling or a time that does not exist (month 13, 30 February, hour 24). */
export function parseAt(text) {
  const m = typeof text === "string" ? AT.exec(text) : null;
  if (!m) {
    throw new RecordShapeError(`'at' must look like 2026-11-27T09:30:00.123Z, got ${JSON.stringify(text)}`);
  }
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > days || hour > 23 || minute > 59 || second > 59) {
    throw new RecordShapeError(`'at' is not a real time: ${text}`);
  }
  return Date.parse(text);
}

/** RecordShapeError unless `record` has exactly the §1 members and types. */
export function checkRecordShape(record) {
  if (!isObject(record)) throw new RecordShapeError("a record is a JSON object");
  const keys = Object.keys(record);
  const missing = MEMBERS.filter((m) => !keys.includes(m));
  const extra = keys.filter((k) => !MEMBERS.includes(k));
  if (missing.length || extra.length) {
    throw new RecordShapeError(`record members differ: missing [${missing}], unexpected [${extra}]`);
  }
  const integer = (name) => {
    if (!isInteger(record[name])) throw new RecordShapeError(`'${name}' must be an integer`);
    return record[name];
  };
  if (integer("v") !== 1) throw new RecordShapeError("'v' must be 1");
  if (!LOGS.includes(record.log)) throw new RecordShapeError(`'log' must be one of ${LOGS}`);
  if (typeof record.type !== "string" || !TYPE.test(record.type)) {
    throw new RecordShapeError("'type' must be a dotted lowercase name like suggestion.submitted");
  }
  if (typeof record.subject !== "string" || !record.subject) {
    throw new RecordShapeError("'subject' must be a non-empty string");
  }
  const seq = integer("seq");
  if (seq < 0) throw new RecordShapeError("'seq' must not be negative");
  if (seq == 0 && record.prev !== null) throw new RecordShapeError("'prev' must be null when 'seq' is 0");
  if (seq > 0 && !isHex64(record.prev)) {
    throw new RecordShapeError("'prev' must be a 64-character lowercase hex leaf hash");
  }
  parseAt(record.at);
  const actor = record.actor;
  if (
    !isObject(actor) ||
    Object.keys(actor).length !== 2 ||
    !["role", "id"].every((k) => typeof actor[k] === "string" && actor[k])
  ) {
    throw new RecordShapeError('\'actor\' must be {"role": string, "id": string}');
  }
  if (!isObject(record.body)) throw new RecordShapeError("'body' must be an object");
  if (typeof record.salt !== "string" || !SALT.test(record.salt)) {
    throw new RecordShapeError("'salt' must be 32 lowercase hex characters");
  }
}
