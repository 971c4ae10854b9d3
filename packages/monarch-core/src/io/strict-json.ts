/**
 * A small strict JSON parser for untrusted file headers: rejects duplicate keys (JSON.parse silently keeps
 * the last one), limits nesting depth, and returns objects as `Map`s so keys like `__proto__` stay data.
 */

/** A parsed JSON value; objects are Maps (insertion order = file order). */
export type JsonValue = null | boolean | number | string | JsonValue[] | Map<string, JsonValue>;

/** Thrown for malformed JSON; `message` is a short description without the file name. */
export class JsonSyntaxError extends Error {}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Parses `text` as one JSON value with at most `maxDepth` nested arrays/objects.
 * @throws JsonSyntaxError with a short description and character position.
 */
export function parseStrictJson(text: string, maxDepth = 32): JsonValue {
  let pos = 0;

  const fail = (what: string): never => {
    throw new JsonSyntaxError(`${what} at character ${pos}`);
  };
  const skipSpace = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) pos++;
      else break;
    }
  };
  const parseString = (): string => {
    const start = pos; // at the opening quote
    pos++;
    let escaped = false;
    for (;;) {
      if (pos >= text.length) fail('unterminated string');
      const c = text.charCodeAt(pos);
      if (c === 0x22) break;
      if (c < 0x20) fail('control character in string');
      if (c === 0x5c) {
        escaped = true;
        pos += 2;
      } else pos++;
    }
    pos++;
    const raw = text.slice(start, pos);
    if (!escaped) return raw.slice(1, -1);
    try {
      return JSON.parse(raw) as string;
    } catch {
      return fail('bad escape in string');
    }
  };
  const parseValue = (depth: number): JsonValue => {
    skipSpace();
    if (pos >= text.length) fail('unexpected end');
    const c = text[pos];
    if (c === '{' || c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      pos++;
      skipSpace();
      if (c === '[') {
        const arr: JsonValue[] = [];
        if (text[pos] === ']') {
          pos++;
          return arr;
        }
        for (;;) {
          arr.push(parseValue(depth + 1));
          skipSpace();
          if (text[pos] === ',') pos++;
          else if (text[pos] === ']') {
            pos++;
            return arr;
          } else fail("expected ',' or ']'");
        }
      }
      const obj = new Map<string, JsonValue>();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        skipSpace();
        if (text[pos] !== '"') fail('expected a string key');
        const key = parseString();
        if (obj.has(key)) fail(`duplicate key ${JSON.stringify(key).slice(0, 80)}`);
        skipSpace();
        if (text[pos] !== ':') fail("expected ':'");
        pos++;
        obj.set(key, parseValue(depth + 1));
        skipSpace();
        if (text[pos] === ',') pos++;
        else if (text[pos] === '}') {
          pos++;
          return obj;
        } else fail("expected ',' or '}'");
      }
    }
    if (c === '"') return parseString();
    if (text.startsWith('true', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('false', pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith('null', pos)) {
      pos += 4;
      return null;
    }
    NUMBER.lastIndex = pos;
    const m = NUMBER.exec(text);
    if (!m) return fail('unexpected character');
    pos += m[0].length;
    return Number(m[0]);
  };

  const value = parseValue(0);
  skipSpace();
  if (pos !== text.length) fail('trailing characters');
  return value;
}
