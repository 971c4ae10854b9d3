import { FileFormatError } from '../errors.js';

/** Makes a one-line FileFormatError `"<file>: <problem>"` (newlines in either part are flattened). */
export function fileError(file: string, problem: string): FileFormatError {
  const oneLine = (s: string): string => s.replace(/[\r\n\u2028\u2029]+/g, ' ');
  return new FileFormatError(`${oneLine(file)}: ${oneLine(problem)}`, { parameter: file });
}

/** Shortens a user-controlled string for an error message. */
export function quote(value: string, max = 60): string {
  const s = JSON.stringify(value);
  return s.length > max ? `${s.slice(0, max)}…"` : s;
}
