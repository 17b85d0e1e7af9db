/**
 * The kinds of setting config.ts declares, and what is derived from its list of settings:
 * each kind knows how its environment variable is parsed, its JSON schema and its default;
 * the `Config` type is inferred from the list (a `path` of `limits.records` and an
 * `int(…)` value make `Config['limits']['records']` a number).
 */

/** How an environment variable's text becomes a value. */
export type EnvKind = 'string' | 'int' | 'number' | 'list' | 'bool';

/** A default computed from other settings after loading; `shown` is what the README says. */
export interface Derived {
  readonly shown: string;
}

export interface Field<V> {
  readonly kind: EnvKind;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly default: V | Derived;
}

export interface Setting {
  /** The variable; null: a file-only setting (not in the README table). */
  readonly env: string | null;
  /** Where it sits in the config object and in the JSON file (`--config`). */
  readonly path: string;
  readonly value: Field<unknown>;
  /** Its line in the README table. */
  readonly doc: string;
  /** In the logged config: `value` is replaced by `[set]`, `url` keeps the URL without credentials. */
  readonly secret?: 'value' | 'url';
  /** A second variable naming a file that holds the value (a secret kept out of the environment). */
  readonly file?: { readonly env: string; readonly doc: string; readonly read: (text: string) => string };
}

interface Bounds {
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
}
interface TextRules {
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}

export const POS: Bounds = { minimum: 1 };
export const PORT: Bounds = { minimum: 0, maximum: 65535 };

/** The database URL's default: a SQLite file in the data directory. */
export function derived(shown: string): Derived {
  return { shown };
}

export function isDerived(v: unknown): v is Derived {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'shown' in v;
}

export function int(def: number, bounds: Bounds = {}): Field<number> {
  return { kind: 'int', default: def, schema: { type: 'integer', ...bounds } };
}

export function num(def: number, bounds: Bounds = {}): Field<number> {
  return { kind: 'number', default: def, schema: { type: 'number', ...bounds } };
}

export function bool(def: boolean): Field<boolean> {
  return { kind: 'bool', default: def, schema: { type: 'boolean' } };
}

export function text(def: string | Derived, rules: TextRules = {}): Field<string> {
  return { kind: 'string', default: def, schema: { type: 'string', ...rules } };
}

/** A string that is unset (null) by default. */
export function textOrNull(rules: TextRules = {}): Field<string | null> {
  return { kind: 'string', default: null, schema: { type: ['string', 'null'], ...rules } };
}

export function oneOf<const T extends readonly string[]>(values: T, def: NoInfer<T[number]>): Field<T[number]> {
  return { kind: 'string', default: def, schema: { enum: values } };
}

/** Comma-separated in the environment, an array of strings in the file; empty by default. */
export function list(rules: { maxItems: number; pattern: string }): Field<string[]> {
  return { kind: 'list', default: [], schema: { type: 'array', maxItems: rules.maxItems, items: { type: 'string', pattern: rules.pattern } } };
}

// The config type, from the list: each setting becomes `{ a: { b: V } }` for its path `a.b`,
// and the intersection of all of them is flattened into one nested object type.
type Nest<P extends string, V> = P extends `${infer Head}.${infer Rest}` ? { [K in Head]: Nest<Rest, V> } : { [K in P]: V };
type Part<S> = S extends { path: infer P extends string; value: Field<infer V> } ? Nest<P, V> : never;
type Intersect<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type Flat<T> = T extends readonly unknown[] | string | number | boolean | null ? T : { [K in keyof T]: Flat<T[K]> };
export type ConfigOf<List extends readonly Setting[]> = Flat<Intersect<Part<List[number]>>>;

/** The JSON schema of the whole config object, nested like the paths, in the list's order. */
export function schemaOf(list: readonly Setting[]): Record<string, unknown> {
  const root = objectSchema();
  for (const s of list) {
    const parts = s.path.split('.');
    let cur = root;
    for (const p of parts.slice(0, -1)) {
      cur.properties[p] ??= objectSchema();
      cur = cur.properties[p] as ObjectSchema;
    }
    const leaf = parts[parts.length - 1]!;
    cur.properties[leaf] = s.value.schema;
  }
  return seal(root);
}

interface ObjectSchema {
  type: 'object';
  additionalProperties: false;
  properties: Record<string, unknown>;
}

function objectSchema(): ObjectSchema {
  return { type: 'object', additionalProperties: false, properties: {} };
}

/** Every setting has a value after the defaults, so each one is required at every level. */
function seal(o: ObjectSchema): Record<string, unknown> {
  const properties = Object.fromEntries(Object.entries(o.properties).map(([k, v]) => [k, (v as ObjectSchema).type === 'object' ? seal(v as ObjectSchema) : v]));
  return { ...o, required: Object.keys(properties), properties };
}
