/**
 * Public surface of `schemas/`: batch validation, the record formats, and the schema
 * names. Test fixtures live in `schemas/testing/sample-records.ts` (not re-exported).
 */
export { validateBatch, MAX_ERRORS_PER_RECORD, type BatchValidation, type ValidationContext, type RecordIssue } from './batch-validator.js';
export { CLIENT_REGISTRATION_V1, CLIENT_REGISTRATION_V1_FIELDS, KNOWN_SCHEMAS, getSchemaValidators, type SchemaValidators } from './compiled-schemas.js';
export {
  BSN_PLACEHOLDER,
  EMAIL_MAX_LENGTH,
  isAgb,
  isBsn11Proef,
  isCalendarDate,
  isDutchPostcode,
  isEmail,
  isNineDigits,
  isRfc3339DateTime,
  isUzovi,
} from './formats.js';
export { schemaFromFileName, stripPgpExtensions } from './csv-payload.js';
