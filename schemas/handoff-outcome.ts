/**
 * The outcome body of `POST /internal/v1/handoffs/{batchId}/outcome`, checked against
 * `handoff-outcome.v1.json` with its own Ajv instance (draft 2020-12, strict). What the
 * schema cannot say — every accepted record exactly once — is checked by the caller against
 * the batch. Errors name the path and keyword, never the value.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { PgwError } from '../gateway/core/errors.js';
import { loadSchemaFile } from './compiled-schemas.js';

export type RecordOutcome = 'created' | 'exists' | 'failed';

export interface OutcomeRecord {
  record: number;
  outcome: RecordOutcome;
  code?: string;
  message?: string;
}

export interface OutcomeBody {
  version?: number;
  records: OutcomeRecord[];
}

let validator: ValidateFunction | null = null;

function compiled(): ValidateFunction {
  validator ??= new Ajv2020({ strict: true, allErrors: false }).compile(loadSchemaFile('handoff-outcome.v1.json'));
  return validator;
}

/** The body as an outcome, or `outcome.unknown_value` / `outcome.invalid` naming where it is wrong. */
export function parseOutcomeBody(body: unknown): OutcomeBody {
  const v = compiled();
  if (v(body)) return body as OutcomeBody;
  const e = v.errors![0]!;
  const path = e.instancePath || '/';
  if (e.keyword === 'enum' && /^\/records\/\d+\/outcome$/.test(path)) throw new PgwError('outcome.unknown_value', undefined, { path });
  throw new PgwError('outcome.invalid', undefined, { path, keyword: e.keyword });
}
