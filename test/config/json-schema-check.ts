/**
 * A small JSON Schema (2020-12) checker for the keywords config/schema.json uses, so tests can show the
 * schema accepts what the loader accepts without another dependency. Unknown keywords fail loudly
 * rather than pass silently.
 */
type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  'title',
  'description',
  'default',
  'format',
  'examples',
  '$defs',
]);
const CHECKED = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'oneOf',
  'anyOf',
  'allOf',
  'const',
  'enum',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  '$ref',
]);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(expected: string, value: unknown): boolean {
  const actual = typeOf(value);
  return expected === actual || (expected === 'number' && actual === 'integer');
}

export function checkJsonSchema(root: Schema, value: unknown): string[] {
  const check = (schema: Schema, data: unknown, path: string): string[] => {
    const errors: string[] = [];
    const visit = (sub: Schema, item: unknown, at: string) => errors.push(...check(sub, item, at));
    for (const key of Object.keys(schema)) {
      if (!ANNOTATIONS.has(key) && !CHECKED.has(key))
        throw new Error(`json-schema-check: unsupported keyword ${key} at ${path}`);
    }
    if (typeof schema.$ref === 'string') {
      const name = schema.$ref.replace(/^#\/\$defs\//, '');
      visit((root.$defs as Record<string, Schema>)[name] as Schema, data, path);
    }
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((t) => typeMatches(t, data))) {
        errors.push(`${path}: expected ${types.join('|')}, got ${typeOf(data)}`);
        return errors;
      }
    }
    if ('const' in schema && data !== schema.const)
      errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
    if (Array.isArray(schema.enum) && !schema.enum.includes(data)) errors.push(`${path}: not in enum`);
    if (typeof data === 'string') {
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(data)) {
        errors.push(`${path}: does not match ${schema.pattern}`);
      }
      if (typeof schema.minLength === 'number' && data.length < schema.minLength)
        errors.push(`${path}: too short`);
      if (typeof schema.maxLength === 'number' && data.length > schema.maxLength)
        errors.push(`${path}: too long`);
    }
    if (typeof data === 'number') {
      if (typeof schema.minimum === 'number' && data < schema.minimum) errors.push(`${path}: below minimum`);
      if (typeof schema.maximum === 'number' && data > schema.maximum) errors.push(`${path}: above maximum`);
    }
    if (Array.isArray(data)) {
      if (typeof schema.minItems === 'number' && data.length < schema.minItems)
        errors.push(`${path}: too few items`);
      if (typeof schema.maxItems === 'number' && data.length > schema.maxItems)
        errors.push(`${path}: too many items`);
      if (schema.items !== undefined)
        for (const [i, item] of data.entries()) visit(schema.items as Schema, item, `${path}[${i}]`);
    }
    if (typeOf(data) === 'object') {
      const object = data as Record<string, unknown>;
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      for (const key of (schema.required ?? []) as string[]) {
        if (!(key in object)) errors.push(`${path}: missing ${key}`);
      }
      for (const [key, item] of Object.entries(object)) {
        if (properties[key] !== undefined) visit(properties[key], item, `${path}.${key}`);
        else if (schema.additionalProperties === false) errors.push(`${path}: unexpected ${key}`);
        else if (typeof schema.additionalProperties === 'object') {
          visit(schema.additionalProperties as Schema, item, `${path}.${key}`);
        }
      }
    }
    const branches = (keyword: 'oneOf' | 'anyOf' | 'allOf') =>
      ((schema[keyword] ?? []) as Schema[]).map((branch) => check(branch, data, path));
    if (schema.allOf) for (const branchErrors of branches('allOf')) errors.push(...branchErrors);
    if (schema.anyOf && !branches('anyOf').some((e) => e.length === 0))
      errors.push(`${path}: matches no anyOf branch`);
    if (schema.oneOf) {
      const matching = branches('oneOf').filter((e) => e.length === 0).length;
      if (matching !== 1) errors.push(`${path}: matches ${matching} oneOf branches`);
    }
    return errors;
  };
  return check(root, value, '$');
}
