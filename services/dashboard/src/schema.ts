// Validation of progress events against the repository's JSON Schema (draft 2020-12). The schema file is
// read at start, never copied here, so the C# side and the dashboard check against one contract.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Import from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { ProgressEvent } from './types.js';

// ajv is CommonJS; depending on how it is loaded (tsc output under node, or esbuild's bundle) the class is
// the module itself or its `default`.
const Ajv2020 = ((Ajv2020Import as unknown as { default?: unknown }).default ?? Ajv2020Import) as typeof Ajv2020Import.default;

const SCHEMA_RELATIVE = join('schemas', 'progress-event.schema.json');

/** The schema file: DASHBOARD_SCHEMA if set, else the first `schemas/progress-event.schema.json` found walking
 * up from this module (services/dashboard/dist -> repository root), so dist/, build/ and a clone all find it. */
export function findSchemaFile(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.DASHBOARD_SCHEMA;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`DASHBOARD_SCHEMA=${fromEnv}: no such file`);
    return resolve(fromEnv);
  }
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, SCHEMA_RELATIVE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(
    `cannot find ${SCHEMA_RELATIVE} above ${dirname(fileURLToPath(import.meta.url))}; set DASHBOARD_SCHEMA to the file`,
  );
}

export type Validation = { ok: true; event: ProgressEvent } | { ok: false; reason: string };

export interface Validator {
  validate(value: unknown): Validation;
  /** Where the schema was read from (shown by the server at start). */
  file: string;
}

/** Compiles the schema once. Throws (the server then stops with the reason) if the file is unreadable. */
export function loadValidator(file: string = findSchemaFile()): Validator {
  type Schema = {
    $id?: string;
    oneOf?: { $ref: string }[];
    properties?: { kind?: { enum?: string[] } };
    $defs?: Record<string, { properties?: { kind?: { const?: string } } }>;
  };
  const schema = JSON.parse(readFileSync(file, 'utf8')) as Schema;
  // The verdict: ajv stops at the first error (allErrors changes which errors are listed, never whether
  // the event is valid, and costs a third of the throughput with oneOf's nine branches).
  const check = new Ajv2020({ allErrors: false, strict: false }).compile(schema) as ValidateFunction;
  // For the reason: every field that is wrong, not the first one ajv met. Compiled on the first failure.
  let checkAll: ValidateFunction | undefined;
  // The verdict is always the whole schema's. To say why an event failed, its errors are not enough: oneOf
  // reports every branch's errors, relative to the referenced $defs, so "accuracy must be <= 1" comes
  // mixed with "topology: required" from job-started's branch. So, per kind, the same schema with oneOf
  // cut to that kind's branch (found in the schema by its kind const), used only to explain a failure.
  // Compiled on first use: most runs never see a bad event, and compiling costs start-up time.
  const explainers = new Map<string, ValidateFunction>();
  const explainerOf = (kind: string): ValidateFunction | undefined => {
    let v = explainers.get(kind);
    if (v) return v;
    for (const [name, def] of Object.entries(schema.$defs ?? {})) {
      if (def.properties?.kind?.const !== kind) continue;
      const one: Schema = { ...schema, oneOf: [{ $ref: `#/$defs/${name}` }] }; // own ajv instance: same $id is fine
      v = new Ajv2020({ allErrors: true, strict: false }).compile(one) as ValidateFunction;
      explainers.set(kind, v);
      return v;
    }
    return undefined;
  };
  const kinds = schema.properties?.kind?.enum ?? [];
  return {
    file,
    validate(value: unknown): Validation {
      if (check(value)) return { ok: true, event: value as ProgressEvent };
      checkAll ??= new Ajv2020({ allErrors: true, strict: false }).compile(schema) as ValidateFunction;
      checkAll(value);
      return { ok: false, reason: explain(value, checkAll.errors ?? [], explainerOf, kinds) };
    },
  };
}

/** One line that names the fields and what is wrong with them. */
function explain(value: unknown, errors: ErrorObject[], explainerOf: (kind: string) => ValidateFunction | undefined, kinds: string[]): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `event must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
  }
  const kind = (value as Record<string, unknown>).kind;
  const explainer = typeof kind === 'string' ? explainerOf(kind) : undefined;
  let errs = errors;
  if (explainer) {
    explainer(value);
    errs = explainer.errors ?? errors;
  } else {
    // No such kind: say that, plus what is wrong with the envelope (errors not from the oneOf branches).
    errs = errors.filter((e) => e.instancePath !== '/kind' && e.schemaPath !== '#/required' &&
      e.keyword !== 'oneOf' && e.keyword !== 'unevaluatedProperties');
    const k = kind === undefined ? 'kind: required' : `kind: ${truncate(JSON.stringify(kind), 40)} is not one of ${kinds.join(', ')}`;
    return truncate([k, ...new Set(errs.map(describe))].join('; '), 300);
  }
  // A failing branch leaves every property "unevaluated": those errors are noise unless they are all there is.
  const real = errs.filter((e) => e.keyword !== 'unevaluatedProperties' && e.keyword !== 'oneOf');
  const shown = real.length > 0 ? real : errs.filter((e) => e.keyword !== 'oneOf');
  return truncate([...new Set(shown.map(describe))].join('; ') || 'does not match the schema', 300);
}
function describe(e: ErrorObject): string {
  const field = e.instancePath === '' ? '' : e.instancePath.slice(1).replace(/\//g, '.');
  const params = e.params as Record<string, unknown>;
  if (e.keyword === 'required') {
    const missing = String(params.missingProperty);
    return `${field ? field + '.' : ''}${missing}: required`;
  }
  if (e.keyword === 'unevaluatedProperties' || e.keyword === 'additionalProperties') {
    const extra = String(params.unevaluatedProperty ?? params.additionalProperty);
    return `${field ? field + '.' : ''}${extra}: not a property of this kind of event`;
  }
  if (e.keyword === 'enum') {
    return `${field || 'event'}: must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
  }
  if (e.keyword === 'const') return `${field || 'event'}: must be ${JSON.stringify(params.allowedValue)}`;
  return `${field || 'event'}: ${e.message ?? e.keyword}`;
}

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}
