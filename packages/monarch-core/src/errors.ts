/**
 * Errors thrown by every `@monarch-mixer` package.
 *
 * Every error is one line that says who complained, what was expected, what came in, and a hint where
 * there is one. All of them extend {@link M2Error}; `M2Error.isInstance(e)` recognises them even when
 * two copies of this package are installed.
 */

const BRAND = Symbol.for('@monarch-mixer/M2Error');

/** Structured details carried by every {@link M2Error}. */
export interface M2ErrorDetails {
  /** The parameter, tensor, file or flag at fault. */
  parameter?: string;
  /** The offending value (kept short). */
  value?: unknown;
}

/** Base class of all errors thrown by Monarch Mixer packages. */
export class M2Error extends Error {
  /** The parameter, tensor, file or flag at fault, where known. */
  readonly parameter?: string;
  /** The offending value, where known. */
  readonly value?: unknown;
  /** Marks instances across duplicate installs. */
  readonly [BRAND] = true;

  /**
   * @param message - One line naming the problem.
   * @param details - Optional structured fields.
   */
  constructor(message: string, details: M2ErrorDetails = {}) {
    super(message);
    this.name = 'M2Error';
    this.parameter = details.parameter;
    this.value = details.value;
  }

  /** True if `error` is an M2Error from any copy of this package. */
  static isInstance(error: unknown): error is M2Error {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** A tensor or array has the wrong shape. */
export class ShapeError extends M2Error {
  /** @inheritDoc */
  constructor(message: string, details: M2ErrorDetails = {}) {
    super(message, details);
    this.name = 'ShapeError';
  }
}

/** A model or layer configuration is invalid. */
export class ConfigError extends M2Error {
  /** @inheritDoc */
  constructor(message: string, details: M2ErrorDetails = {}) {
    super(message, details);
    this.name = 'ConfigError';
  }
}

/** A function argument or command-line flag is out of range or of the wrong kind. */
export class InvalidArgumentError extends M2Error {
  /** @inheritDoc */
  constructor(message: string, details: M2ErrorDetails = {}) {
    super(message, details);
    this.name = 'InvalidArgumentError';
  }
}

/** A file (checkpoint, tokenizer, dataset, image) is missing, malformed, truncated or hostile. */
export class FileFormatError extends M2Error {
  /** @inheritDoc */
  constructor(message: string, details: M2ErrorDetails = {}) {
    super(message, details);
    this.name = 'FileFormatError';
  }
}

/** A TensorFlow.js backend is unknown, not installed, or cannot start on this machine. */
export class BackendError extends M2Error {
  /** @inheritDoc */
  constructor(message: string, details: M2ErrorDetails = {}) {
    super(message, details);
    this.name = 'BackendError';
  }
}
