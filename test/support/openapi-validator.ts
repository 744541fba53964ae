import { Ajv, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { openApiDocument } from '../../src/http/openapi-document.js';

/**
 * The contract between the code and its OpenAPI document (GET /docs/json): every answer the app
 * gives must be one its document declares, for that operation and status, with that media type,
 * and a body that matches the declared schema. `checkResponses(app)` makes every `app.inject`
 * of the tests check this (test/support/harness.ts does it for every app it builds), so the code
 * and the document cannot drift apart without a test failing.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses?: Record<string, { content?: Record<string, { schema?: Json }> }> }>>;
  components?: { schemas?: Record<string, Json> };
}

// ajv-formats is CommonJS with a `default` export: its function is `.default` under NodeNext, itself under a bundler.
type FormatsPlugin = typeof formatsPlugin.default;
const addFormats: FormatsPlugin = (formatsPlugin as unknown as { default?: FormatsPlugin }).default ?? (formatsPlugin as unknown as FormatsPlugin);

const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Keywords of OpenAPI 3.0's schema object that JSON Schema does not have (or that say nothing of validity). */
const OPENAPI_ONLY = new Set(['nullable', 'example', 'xml', 'discriminator', 'externalDocs', 'deprecated', 'readOnly', 'writeOnly']);

/**
 * An OpenAPI 3.0 schema as JSON Schema (draft-07, for Ajv): `$ref`s to components inlined,
 * `nullable: true` as a `null` type, and objects closed: a property the document does not declare
 * is a mismatch, as the document would not tell a client about it.
 */
export function toJsonSchema(schema: Json, components: Record<string, Json> = {}, seen: string[] = []): Json {
  if (Array.isArray(schema)) return schema.map((s) => toJsonSchema(s, components, seen));
  if (!isObject(schema)) return schema;
  if (typeof schema.$ref === 'string') {
    const name = schema.$ref.replace(/^#\/components\/schemas\//, '');
    const target = components[name];
    if (target === undefined) throw new Error(`the document refers to ${schema.$ref}, which it does not define`);
    if (seen.includes(name)) throw new Error(`${schema.$ref} refers to itself; the contract check does not follow recursive schemas`);
    return toJsonSchema(target, components, [...seen, name]);
  }
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (OPENAPI_ONLY.has(key)) continue;
    if (key === 'properties' && isObject(value)) {
      out.properties = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, toJsonSchema(s, components, seen)]));
    } else if (['items', 'not', 'additionalProperties', 'anyOf', 'oneOf', 'allOf'].includes(key)) {
      out[key] = toJsonSchema(value, components, seen);
    } else {
      out[key] = value;
    }
  }
  if (out.type === 'object' && isObject(out.properties) && out.additionalProperties === undefined) out.additionalProperties = false;
  if (schema.nullable !== true) return out;
  if (typeof out.type === 'string') {
    return { ...out, type: [out.type, 'null'], ...(Array.isArray(out.enum) ? { enum: [...out.enum, null] } : {}) };
  }
  return { anyOf: [out, { type: 'null' }] };
}

/** What an answer is, for the check: the request as sent, the answer as received. */
export interface Answer {
  method: string;
  /** The route template that answered (Fastify's, `/api/imports/:id`), or undefined when no route matched. */
  route: string | undefined;
  url: string;
  statusCode: number;
  contentType: string | undefined;
  body: string;
}

/** Checks answers against one OpenAPI document. */
export class OpenApiContract {
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(readonly document: OpenApiDocument) {
    addFormats(this.ajv);
    // Request bodies only; an answer never carries a binary string.
    this.ajv.addFormat('binary', true);
  }

  /**
   * The mismatch between the answer and the document, or undefined when it matches. Answers of
   * routes the document leaves out are not checked: pages, Swagger UI, no route at all (the 404
   * handler), and routes tests add to their app. That no API route is left out of the document,
   * test/openapi-contract.test.ts checks.
   */
  problem(answer: Answer): string | undefined {
    const what = `${answer.method} ${answer.url} → ${answer.statusCode}`;
    if (answer.route === undefined) return undefined;
    const path = answer.route.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/(.)\/$/, '$1');
    const method = answer.method === 'HEAD' ? 'get' : answer.method.toLowerCase();
    const operation = this.document.paths[path]?.[method];
    if (!operation) return undefined;
    const status = String(answer.statusCode);
    const responses = operation.responses ?? {};
    const declared = responses[status] ?? responses[`${status[0]}XX`] ?? responses.default;
    if (!declared) {
      return `${what}: ${method.toUpperCase()} ${path} does not declare ${status} (it declares ${Object.keys(responses).join(', ')}); body: ${answer.body.slice(0, 300)}`;
    }
    if (answer.method === 'HEAD') return undefined;
    const content = declared.content ?? {};
    const mediaTypes = Object.keys(content);
    if (mediaTypes.length === 0) {
      return answer.body === '' ? undefined : `${what}: the document declares no body for ${status}, but one came: ${answer.body.slice(0, 300)}`;
    }
    const mediaType = (answer.contentType ?? '').split(';')[0]!.trim().toLowerCase();
    const media = content[mediaType];
    if (!media) return `${what}: answered as ${mediaType || 'no content type'}, the document declares ${mediaTypes.join(', ')}`;
    if (media.schema === undefined) return undefined;
    let body: unknown = answer.body;
    if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
      try {
        body = JSON.parse(answer.body);
      } catch {
        return `${what}: the body is not JSON: ${answer.body.slice(0, 300)}`;
      }
    }
    const validate = this.validator(`${path} ${method} ${status} ${mediaType}`, media.schema);
    if (validate(body)) return undefined;
    const errors = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '(body)'} ${e.message ?? ''}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
    return `${what}: the body does not match the document's schema for ${method.toUpperCase()} ${path} ${status}: ${errors.join('; ')}; body: ${answer.body.slice(0, 300)}`;
  }

  private validator(key: string, schema: Json): ValidateFunction {
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema, this.document.components?.schemas) as object);
      this.validators.set(key, validate);
    }
    return validate;
  }
}

/**
 * The contract of the document every app serves: it depends on no setting, so one is enough per
 * process. It is the one `zinc openapi` prints, never that of a test's app (which may have routes
 * of the test's own).
 */
let shared: Promise<OpenApiContract> | undefined;

/** The contract of the document `zinc openapi` prints (and every instance serves). */
export function sharedContract(): Promise<OpenApiContract> {
  shared ??= openApiDocument().then((document) => new OpenApiContract(document as OpenApiDocument));
  return shared;
}

/** How many answers were checked in this process (a test can assert the check ran). */
export const contractStats = { checked: 0 };

/**
 * Makes every `app.inject(options)` of this app check its answer against the app's OpenAPI
 * document, and fail (reject) when they differ. Call before the app is ready (right after
 * buildApp). Injections in the chained or callback style are not checked.
 */
export function checkResponses(app: FastifyInstance): FastifyInstance {
  const routes = new WeakMap<object, string | undefined>();
  // onSend runs for every answer, those of errors thrown before the handler (401, 429) included.
  app.addHook('onSend', async (request, _reply, payload) => {
    routes.set(request.raw, request.routeOptions.url);
    return payload;
  });
  const inject = app.inject.bind(app) as (options: InjectOptions | string) => Promise<LightMyRequestResponse>;
  const checked = async (options: InjectOptions | string) => {
    const response = await inject(options);
    const contract = await sharedContract();
    const method = (typeof options === 'string' ? 'GET' : (options.method ?? 'GET')).toUpperCase();
    const problem = contract.problem({
      method,
      route: routes.get(response.raw.req),
      url: typeof options === 'string' ? options : String(options.url ?? options.path ?? ''),
      statusCode: response.statusCode,
      contentType: response.headers['content-type'] as string | undefined,
      body: response.body,
    });
    contractStats.checked += 1;
    if (problem) throw new Error(`the answer does not match the OpenAPI document: ${problem}`);
    return response;
  };
  (app as unknown as { inject: unknown }).inject = (...args: unknown[]) =>
    args.length === 1 && args[0] !== undefined
      ? checked(args[0] as InjectOptions | string)
      : (inject as (...all: unknown[]) => unknown)(...args);
  return app;
}
