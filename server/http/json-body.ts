// Request bodies at the trust boundary: JSON only, UTF-8 only, bounded, no duplicate keys.
// - Only UTF-8 (RFC 8259 §8.1): body-parser also decodes utf-16/utf-32 (and with
//   `charset=utf-7`-style labels a filter that reads the bytes as UTF-8 and Parley would
//   disagree about the text), so any other charset is refused 415 before the body is read.
// - Duplicate keys are refused 400 (shared/json-duplicates.ts says why).
import express, { type RequestHandler } from 'express';
import { hasDuplicateKey } from '../../shared/json-duplicates.ts';
import { sendError } from './errors.ts';

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

class DuplicateKeyError extends Error {
  readonly status = 400;
  readonly type = 'entity.duplicate.key';
}

export function jsonBody(limitBytes: number): RequestHandler[] {
  const onlyUtf8: RequestHandler = (req, res, next) => {
    const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return sendError(res, 415, 'unsupported_media_type', 'Send the request body as UTF-8 JSON.');
    }
    next();
  };
  const parse = express.json({
    limit: limitBytes,
    strict: true, // objects and arrays only
    verify: (_req, _res, buf) => {
      if (hasDuplicateKey(buf.toString('utf8'))) throw new DuplicateKeyError('duplicate key');
    },
  });
  return [onlyUtf8, parse];
}
