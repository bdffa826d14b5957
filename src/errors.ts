/**
 * Errors are values with stable codes (compare panva/jose's ERR_* codes). Each code maps once to an
 * HTTP status and an RFC error body at the edge (src/http/errors.ts) and once to an audit reason.
 */
export type ErrorCode =
  // RFC 6749 §5.2 / RFC 8693 §2.2.2 token endpoint errors
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unsupported_token_type'
  // RFC 9449 §12.2
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  // RFC 6750 / generic API errors
  | 'invalid_token'
  | 'access_denied'
  | 'not_found'
  | 'unsupported_media_type'
  | 'method_not_allowed'
  | 'temporarily_unavailable'
  | 'server_error';

export class MayflyError extends Error {
  readonly code: ErrorCode;
  /** Finer reason for audit and logs (e.g. `task_closed`, `identity_locked`), never a secret. */
  readonly reason: string;
  readonly status: number;
  constructor(code: ErrorCode, description: string, opts: { reason?: string; status?: number } = {}) {
    super(description);
    this.name = 'MayflyError';
    this.code = code;
    this.reason = opts.reason ?? code;
    this.status = opts.status ?? defaultStatus(code);
  }
}

export function defaultStatus(code: ErrorCode): number {
  switch (code) {
    case 'invalid_client':
    case 'invalid_token':
      return 401;
    case 'access_denied':
      return 403;
    case 'not_found':
      return 404;
    case 'method_not_allowed':
      return 405;
    case 'unsupported_media_type':
      return 415;
    case 'temporarily_unavailable':
      return 503;
    case 'server_error':
      return 500;
    default:
      return 400;
  }
}

/** Thrown by a store when its backend cannot be reached; always answered 503, never "not active". */
export class StoreUnavailableError extends MayflyError {
  constructor(cause?: unknown) {
    super('temporarily_unavailable', 'credential store unreachable; nothing is issued or reported active until it returns', {
      reason: 'store_unavailable',
    });
    this.name = 'StoreUnavailableError';
    if (cause !== undefined) (this as { cause?: unknown }).cause = cause;
  }
}

export const fail = (code: ErrorCode, description: string, reason?: string): never => {
  throw new MayflyError(code, description, reason ? { reason } : {});
};
