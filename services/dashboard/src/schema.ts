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
  const schema = JSON.parse(readFileSync(file, 'utf8')) as {
    properties?: { kind?: { enum?: string[] } };
    $defs?: Record<string, { properties?: { kind?: { const?: string } } }>;
  };
  // allErrors: a rejected event's reason names the field that is wrong, not only "must match oneOf".
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  const check = ajv.compile(schema) as ValidateFunction;
  // kind -> the $defs entry that describes it, read from the schema, to pick that branch's errors out of oneOf's.
  const defOfKind = new Map<string, string>();
  for (const [name, def] of Object.entries(schema.$defs ?? {})) {
    const k = def.properties?.kind?.const;
    if (typeof k === 'string') defOfKind.set(k, name);
  }
  const kinds = schema.properties?.kind?.enum ?? [];
  return {
    file,
    validate(value: unknown): Validation {
      if (check(value)) return { ok: true, event: value as ProgressEvent };
      return { ok: false, reason: explain(value, check.errors ?? [], defOfKind, kinds) };
    },
  };
}

/** One line that names the field and what is wrong with it, from ajv's errors. */
export function explain(
  value: unknown,
  errors: ErrorObject[],
  defOfKind: Map<string, string>,
  kinds: string[],
): string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `event must be a JSON object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`;
  }
  const kind = (value as Record<string, unknown>).kind;
  const def = typeof kind === 'string' ? defOfKind.get(kind) : undefined;
  // Errors of the other oneOf branches only say "kind must be X"; keep the top-level ones and this kind's.
  const relevant = errors.filter((e) => {
    if (e.keyword === 'oneOf') return false;
    const m = /^#\/\$defs\/([^/]+)\//.exec(e.schemaPath);
    if (!m) return true;
    if (m[1] === 'id' || m[1] === 'round' || m[1] === 'generation' || m[1] === 'count' || m[1] === 'bytes' ||
        m[1] === 'ms' || m[1] === 'usd' || m[1] === 'text' || m[1] === 'nodes') return true;
    return def !== undefined && m[1] === def;
  });
  const parts = (relevant.length > 0 ? relevant : errors).slice(0, 3).map(describe);
  const unique = [...new Set(parts)];
  if (def === undefined && typeof kind === 'string' && kinds.length > 0 && !unique.some((p) => p.startsWith('kind'))) {
    unique.unshift(`kind: '${kind}' is not one of ${kinds.join(', ')}`);
  }
  return truncate(unique.join('; '), 300);
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
