/**
 * The one Ajv instance (draft 2020-12, strict, all errors, custom formats) and the
 * validators compiled from the versioned schema files in this folder.
 *
 * Glossary:
 * - **schema name**: what a batch says it is, e.g. `client-registration/v1`; maps to a
 *   schema file `client-registration.v1.json` and its `$id`.
 * - **envelope validator**: checks the batch object around the records (schema name,
 *   reference, createdAt, records is an array) without looking inside the records.
 * - **record validator**: checks one record (`#/$defs/record`); run once per record so
 *   each error belongs to a record index without parsing instance paths.
 *
 * The instance is built on first use and then shared: compiled validators are stateless
 * apart from `.errors` of the last synchronous call.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { AnySchemaObject, ValidateFunction } from 'ajv/dist/2020.js';
import { FlatRecordCheck } from './flat-record-check.js';
import { isAgb, isBsn11Proef, isCalendarDate, isDutchPostcode, isEmail, isRfc3339DateTime, isUzovi } from './formats.js';

/** The schema name of the client-registration batch format, version 1. */
export const CLIENT_REGISTRATION_V1 = 'client-registration/v1';

/** Field names of a client-registration v1 record, in schema order (`reference` optional). */
export const CLIENT_REGISTRATION_V1_FIELDS = [
  'reference', 'email', 'firstName', 'maidenName', 'postcode', 'birthDate', 'dueDate', 'bsn', 'careProvider', 'insurer',
] as const;

/** The validators of one schema name. */
export interface SchemaValidators {
  name: string;
  /** `$id` of the schema file. */
  id: string;
  envelope: ValidateFunction;
  record: ValidateFunction;
  /** Property names a record may have (for CSV headers). */
  recordFields: ReadonlySet<string>;
  /** Accepts plain records straight from their bytes, or null when the schema has none. */
  fastRecord: FlatRecordCheck | null;
}

/** Schema names the gateway knows, with the file each one lives in (next to this module). */
const SCHEMA_FILES: Readonly<Record<string, string>> = {
  [CLIENT_REGISTRATION_V1]: 'client-registration.v1.json',
};

/** The schema names this gateway validates. */
export const KNOWN_SCHEMAS: readonly string[] = Object.keys(SCHEMA_FILES);

/** Loads a schema file shipped beside this module. */
export function loadSchemaFile(fileName: string): AnySchemaObject {
  return JSON.parse(readFileSync(new URL(`./${fileName}`, import.meta.url), 'utf8')) as AnySchemaObject;
}

/** The custom string formats the schemas use (schemas/formats.ts), by format name. */
const FORMATS: Readonly<Record<string, (s: string) => boolean>> = {
  bsn: isBsn11Proef,
  'nl-postcode': isDutchPostcode,
  uzovi: isUzovi,
  agb: isAgb,
  date: isCalendarDate,
  'date-time': isRfc3339DateTime,
  email: isEmail,
};

/**
 * Record fields read after schema validation (the date rules, the subject index): the fast
 * record check returns their values in this order.
 */
export const READ_AFTER_VALIDATION = ['birthDate', 'dueDate', 'bsn'] as const;

/** Builds an Ajv with the gateway's options and custom formats registered. */
export function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    // inherited properties (a polluted Object.prototype) never satisfy `required`
    ownProperties: true,
    // error texts come from the code registry, never from Ajv
    messages: false,
  });
  for (const [name, validate] of Object.entries(FORMATS)) ajv.addFormat(name, { type: 'string', validate });
  return ajv;
}

let cache: Map<string, SchemaValidators> | undefined;

function compileAll(): Map<string, SchemaValidators> {
  const ajv = createAjv();
  const out = new Map<string, SchemaValidators>();
  for (const [name, file] of Object.entries(SCHEMA_FILES)) {
    const schema = loadSchemaFile(file);
    const id = schema.$id as string;
    ajv.addSchema(schema);
    const record = ajv.getSchema(`${id}#/$defs/record`);
    if (record === undefined) throw new Error(`schema ${name}: no #/$defs/record`);
    // The envelope is the same schema with `records` reduced to "an array": records are
    // validated one by one with `record`, so they are not walked twice.
    const properties = schema.properties as Record<string, AnySchemaObject>;
    const { $defs: _defs, ...rest } = schema;
    const envelope = ajv.compile({
      ...rest,
      $id: `${id}/envelope`,
      properties: { ...properties, records: { type: 'array' } },
    });
    const recordSchema = (schema.$defs as Record<string, AnySchemaObject>).record!;
    const recordFields = new Set(Object.keys(recordSchema.properties as object));
    const fastRecord = FlatRecordCheck.compile(recordSchema, FORMATS, READ_AFTER_VALIDATION);
    out.set(name, { name, id, envelope, record, recordFields, fastRecord });
  }
  return out;
}

/** The validators for `name`, or `undefined` when the gateway does not know that schema. */
export function getSchemaValidators(name: string): SchemaValidators | undefined {
  if (!Object.hasOwn(SCHEMA_FILES, name)) return undefined;
  cache ??= compileAll();
  return cache.get(name);
}
