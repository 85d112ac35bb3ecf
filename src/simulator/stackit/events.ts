/**
 * The raw JSON of one STACKIT `AuditLogEntryResponse`, written by hand rather than by JSON.stringify.
 * Items are compact but deliberately non-canonical in JSON-legal ways (`\/` in paths and user agents,
 * `\u00e9`-style escapes for some non-ASCII text, numbers such as `1.50` or `1e3` in request bodies,
 * varying key order and optional keys), so that a client which re-encodes an item instead of keeping
 * its bytes produces something different from the provider's record.
 */
import { mixWords, Rng, uuidFor, uuidFromWords } from '../random.ts';
import type { SimEvent } from '../traffic.ts';

interface Style {
  /** Write `/` as `\/`. */
  readonly slash: boolean;
  /** Non-ASCII as raw UTF-8, or as `\uXXXX` escapes (lower or upper hex). */
  readonly unicode: 'raw' | 'lower' | 'upper';
}

/** Characters to escape, per style: [slash][unicode escaped]. JSON requires `"`, `\\` and C0 controls. */
const C0 = '\\u0000-\\u001f';
const NON_ASCII = '\\u0080-\\uffff';
const ESCAPE_PATTERNS = [
  [new RegExp(`["\\\\${C0}]`, 'g'), new RegExp(`["\\\\${C0}${NON_ASCII}]`, 'g')],
  [new RegExp(`["\\\\/${C0}]`, 'g'), new RegExp(`["\\\\/${C0}${NON_ASCII}]`, 'g')],
] as const;

/** A JSON string literal in the given style. */
export function jsonString(text: string, style: Style): string {
  const pattern = ESCAPE_PATTERNS[style.slash ? 1 : 0][style.unicode === 'raw' ? 0 : 1];
  pattern.lastIndex = 0;
  if (!pattern.test(text)) return `"${text}"`;
  const escaped = text.replace(pattern, (ch) => {
    const c = ch.charCodeAt(0);
    if (c === 0x22) return '\\"';
    if (c === 0x5c) return '\\\\';
    if (c === 0x2f) return '\\/';
    const hex = c.toString(16).padStart(4, '0');
    return `\\u${style.unicode === 'upper' ? hex.toUpperCase() : hex}`;
  });
  return `"${escaped}"`;
}

type Entry = readonly [key: string, json: string];

function object(entries: readonly Entry[]): string {
  let out = '{';
  for (let i = 0; i < entries.length; i++) {
    const [key, json] = entries[i] as Entry;
    out += `${i === 0 ? '' : ','}"${key}":${json}`;
  }
  return `${out}}`;
}

interface Person {
  readonly id: string;
  readonly email: string;
  readonly name: string;
}

const PEOPLE: readonly Person[] = [
  ['Renée Dubois', 'renee.dubois@example.com'],
  ['Jürgen Müller', 'juergen.mueller@example.de'],
  ['Åsa Lindström', 'asa.lindstrom@example.se'],
  ['Zoë Ćirić', 'zoe.ciric@example.org'],
  ['Alice Example', 'alice@example.com'],
  ['Bob Tables', 'bob.tables@example.net'],
].map(([name, email]) => ({ id: uuidFor(`person|${email}`), email: email as string, name: name as string }));

const SERVICE_ACCOUNTS: readonly Person[] = [
  'ci-deployer-4f2a1c',
  'terraform-7b1e09',
  'backup-runner-c3d5e7',
].map((name) => ({ id: uuidFor(`sa|${name}`), email: `${name}@sa.stackit.cloud`, name }));

const USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0',
  'stackit-cli/0.38.0 (linux/amd64)',
  'Terraform/1.9.5 terraform-provider-stackit/0.52.0',
  'stackit-sdk-go/core v0.15.1 (go1.23.2; linux/amd64)',
  'python-requests/2.32.3',
];

const NAMES = ['web-01', 'café-backend', 'büro-zürich', 'łódź-cache', 'straße-7', 'prod-eu01', 'データ-lake'];

interface Ctx {
  readonly rng: Rng;
  readonly style: Style;
  readonly scopeKind: string;
  readonly scopeId: string;
  readonly organizationId: string;
  readonly folderId: string;
  readonly projectId: string;
  readonly actor: Person;
  readonly resourceName: string;
}

interface Template {
  readonly kinds: readonly string[];
  readonly source: string;
  readonly name: string;
  readonly type: 'ADMIN_ACTIVITY' | 'SYSTEM_EVENT' | 'POLICY_DENIED';
  readonly method: string;
  readonly path: (c: Ctx) => string;
  readonly body?: (c: Ctx) => string;
  readonly parameters?: (c: Ctx) => string;
  readonly result?: (c: Ctx) => string;
}

const s = (c: Ctx, text: string): string => jsonString(text, c.style);
const pickNumber = (c: Ctx, ...texts: string[]): string => c.rng.pick(texts);

const TEMPLATES: readonly Template[] = [
  {
    kinds: ['project'],
    source: 'membership',
    name: 'Project member added',
    type: 'ADMIN_ACTIVITY',
    method: 'PATCH',
    path: (c) => `/v2/${c.projectId}/members`,
    body: (c) =>
      object([
        [
          'members',
          `[${object([
            ['subject', s(c, c.rng.pick(PEOPLE).email)],
            ['role', s(c, 'editor')],
          ])}]`,
        ],
        ['resourceType', s(c, 'project')],
      ]),
  },
  {
    kinds: ['organization', 'folder'],
    source: 'membership',
    name: 'Member added',
    type: 'ADMIN_ACTIVITY',
    method: 'PATCH',
    path: (c) => `/v2/${c.scopeId}/members`,
    body: (c) =>
      object([
        [
          'members',
          `[${object([
            ['subject', s(c, c.rng.pick(PEOPLE).email)],
            ['role', s(c, 'reader')],
          ])}]`,
        ],
        ['resourceType', s(c, c.scopeKind)],
      ]),
  },
  {
    kinds: ['project'],
    source: 'iaas',
    name: 'Server created',
    type: 'ADMIN_ACTIVITY',
    method: 'POST',
    path: (c) => `/v1/projects/${c.projectId}/servers`,
    body: (c) =>
      object([
        ['name', s(c, c.resourceName)],
        ['machineType', s(c, c.rng.pick(['c1.2', 'g1.4', 'm1a.8cd']))],
        ['availabilityZone', s(c, 'eu01-1')],
        [
          'bootVolume',
          object([
            ['size', pickNumber(c, '64', '1e2', '1.5e2', '100')],
            ['performanceClass', s(c, 'storage_premium_perf1')],
          ]),
        ],
      ]),
    result: (c) => object([['status', s(c, 'CREATING')]]),
  },
  {
    kinds: ['project'],
    source: 'iaas',
    name: 'Volume resized',
    type: 'ADMIN_ACTIVITY',
    method: 'POST',
    path: (c) => `/v1/projects/${c.projectId}/volumes/${uuidFromWords(c.rng.words())}/resize`,
    body: (c) => object([['size', pickNumber(c, '1e3', '1E3', '500', '2.5e2')]]),
  },
  {
    kinds: ['project'],
    source: 'ske',
    name: 'Cluster updated',
    type: 'ADMIN_ACTIVITY',
    method: 'PUT',
    path: (c) => `/v2/projects/${c.projectId}/regions/eu01/clusters/${c.resourceName}`,
    body: (c) =>
      object([
        ['kubernetes', object([['version', s(c, '1.31.4')]])],
        [
          'nodepools',
          `[${object([
            ['name', s(c, 'pool-a')],
            ['minimum', '1'],
            ['maximum', pickNumber(c, '3', '10', '1e1')],
            ['cpuThreshold', pickNumber(c, '0.80', '0.8', '8.0e-1')],
          ])}]`,
        ],
      ]),
  },
  {
    kinds: ['project'],
    source: 'object-storage',
    name: 'Bucket created',
    type: 'ADMIN_ACTIVITY',
    method: 'POST',
    path: (c) => `/v2/project/${c.projectId}/regions/eu01/bucket/${c.resourceName}`,
  },
  {
    kinds: ['project'],
    source: 'dns',
    name: 'Record set created',
    type: 'ADMIN_ACTIVITY',
    method: 'POST',
    path: (c) => `/v1/projects/${c.projectId}/zones/${uuidFromWords(c.rng.words())}/rrsets`,
    body: (c) =>
      object([
        ['name', s(c, 'www')],
        ['type', s(c, 'A')],
        ['ttl', pickNumber(c, '3600', '3.6e3', '3600.0')],
        ['records', `[${object([['content', s(c, '203.0.113.10')]])}]`],
        ['comment', s(c, `für ${c.actor.name}`)],
      ]),
  },
  {
    kinds: ['project', 'organization'],
    source: 'service-account',
    name: 'Service account key created',
    type: 'ADMIN_ACTIVITY',
    method: 'POST',
    path: (c) => `/v2/projects/${c.projectId}/service-accounts/${c.rng.pick(SERVICE_ACCOUNTS).email}/keys`,
    body: (c) => object([['validUntil', s(c, '2026-12-31T23:59:59Z')]]),
    result: (c) =>
      object([
        ['keyType', s(c, 'USER_MANAGED')],
        ['keyAlgorithm', s(c, 'RSA_2048')],
      ]),
  },
  {
    kinds: ['project', 'folder'],
    source: 'resource-manager',
    name: 'Project updated',
    type: 'ADMIN_ACTIVITY',
    method: 'PATCH',
    path: (c) => `/v2/projects/${c.projectId}`,
    body: (c) =>
      object([
        ['name', s(c, c.rng.pick(['Büro Zürich', 'Café Backend', 'Señor Payments', 'Plain Project']))],
        ['labels', object([['billing', s(c, `cc-${c.rng.range(1000, 9999)}`)]])],
      ]),
  },
  {
    kinds: ['organization', 'folder'],
    source: 'resource-manager',
    name: 'Folder created',
    type: 'ADMIN_ACTIVITY',
    method: 'POST',
    path: () => '/v2/folders',
    body: (c) =>
      object([
        ['name', s(c, c.resourceName)],
        ['containerParentId', s(c, c.scopeId)],
        ['members', '[]'],
      ]),
  },
  {
    kinds: ['organization', 'folder'],
    source: 'resource-manager',
    name: 'Project created',
    type: 'ADMIN_ACTIVITY',
    method: 'POST',
    path: () => '/v2/projects',
    body: (c) =>
      object([
        ['name', s(c, c.resourceName)],
        ['containerParentId', s(c, c.scopeId)],
      ]),
  },
  {
    kinds: ['project'],
    source: 'postgres-flex',
    name: 'Backup deleted',
    type: 'SYSTEM_EVENT',
    method: 'DELETE',
    path: (c) => `/v2/projects/${c.projectId}/regions/eu01/instances/${c.resourceName}/backups`,
    parameters: (c) => object([['olderThanDays', pickNumber(c, '30', '3e1')]]),
  },
  {
    kinds: ['project', 'folder', 'organization'],
    source: 'resource-manager',
    name: 'Permission denied',
    type: 'POLICY_DENIED',
    method: 'DELETE',
    path: (c) => `/v2/${c.scopeKind}s/${c.scopeId}`,
  },
];

const TEMPLATES_BY_KIND = new Map<string, readonly Template[]>(
  ['organization', 'folder', 'project'].map((kind) => [
    kind,
    TEMPLATES.filter((t) => t.kinds.includes(kind)),
  ]),
);

function sourceIp(rng: Rng, internal: boolean): string {
  if (internal) return `10.${rng.int(256)}.${rng.int(256)}.${rng.range(1, 254)}`;
  const roll = rng.next();
  if (roll < 0.3) return `2001:db8:${rng.int(0x10000).toString(16)}::${rng.range(1, 0xffff).toString(16)}`;
  const net = rng.pick(['203.0.113', '198.51.100', '192.0.2']);
  return `${net}.${rng.range(1, 254)}`;
}

/** Renders the raw JSON text of one STACKIT audit-log item. */
export function renderStackitEvent(event: SimEvent): string {
  const rng = new Rng(event.contentWords);
  const style: Style = {
    slash: rng.chance(0.5),
    unicode: rng.pick(['raw', 'raw', 'lower', 'upper'] as const),
  };
  const { kind, id: scopeId } = event.scope.ref;
  const organizationId =
    kind === 'organization' ? scopeId : uuidFromWords(mixWords(event.scope.words, 0, 101));
  const folderId = kind === 'folder' ? scopeId : uuidFromWords(mixWords(event.scope.words, 0, 102));
  const projectId = kind === 'project' ? scopeId : uuidFromWords(mixWords(event.scope.words, 0, 103));
  const templates = TEMPLATES_BY_KIND.get(kind) ?? TEMPLATES;
  const template = rng.pick(templates);
  const system = template.type === 'SYSTEM_EVENT';
  const viaServiceAccount = !system && rng.chance(0.35);
  const actor = system
    ? { id: 'system', email: '', name: 'system' }
    : viaServiceAccount
      ? rng.pick(SERVICE_ACCOUNTS)
      : rng.pick(PEOPLE);
  const ctx: Ctx = {
    rng,
    style,
    scopeKind: kind,
    scopeId,
    organizationId,
    folderId,
    projectId,
    actor,
    resourceName: rng.pick(NAMES),
  };
  const correlationId = uuidFromWords(rng.words());
  const userAgent = system ? 'stackit-internal/1.0 (audit-relay)' : rng.pick(USER_AGENTS);
  const denied = template.type === 'POLICY_DENIED';

  const initiator: Entry[] = [['id', s(ctx, actor.id)]];
  if (actor.email !== '' && rng.chance(0.8)) initiator.push(['email', s(ctx, actor.email)]);

  const request: Entry[] = [['endpoint', s(ctx, `${template.method} ${template.path(ctx)}`)]];
  if (template.parameters) request.push(['parameters', template.parameters(ctx)]);
  else if (rng.chance(0.4)) request.push(['parameters', '{}']);
  if (template.body) request.push(['body', template.body(ctx)]);
  if (rng.chance(0.5)) {
    request.push([
      'headers',
      object([
        ['Accept', s(ctx, 'application/json')],
        ['X-Request-Id', s(ctx, correlationId)],
      ]),
    ]);
  }

  const required: Entry[] = [
    ['id', jsonString(event.id, style)],
    ['receivedTimeStamp', `"${event.receivedTimeText}"`],
    ['eventTimeStamp', `"${event.eventTimeText}"`],
    ['eventName', s(ctx, template.name)],
    ['eventSource', s(ctx, template.source)],
    ['eventType', `"${template.type}"`],
    ['eventVersion', s(ctx, rng.pick(['v1.0', 'v1.0', 'v1.1']))],
    ['severity', denied ? '"ERROR"' : '"INFO"'],
    ['visibility', rng.chance(0.9) ? '"PUBLIC"' : '"PRIVATE"'],
    ['region', s(ctx, rng.chance(0.85) ? 'eu01' : 'eu02')],
    ['sourceIpAddress', s(ctx, sourceIp(rng, system))],
    ['userAgent', s(ctx, userAgent)],
    ['initiator', object(initiator)],
    ['request', object(request)],
  ];
  const optional: Entry[] = [];
  if (rng.chance(0.9)) {
    const context: Entry[] = [['organizationId', s(ctx, organizationId)]];
    if (kind !== 'organization' && rng.chance(0.8)) context.push(['folderId', s(ctx, folderId)]);
    if (kind === 'project') context.push(['projectId', s(ctx, projectId)]);
    optional.push(['context', object(context)]);
  }
  if (rng.chance(0.85)) optional.push(['correlationId', s(ctx, correlationId)]);
  if (rng.chance(0.9)) optional.push(['resourceId', s(ctx, kind === 'project' ? projectId : scopeId)]);
  if (rng.chance(0.7)) optional.push(['resourceName', s(ctx, ctx.resourceName)]);
  if (template.result && !denied && rng.chance(0.8)) optional.push(['result', template.result(ctx)]);
  if (denied) {
    optional.push([
      'details',
      object([
        ['reason', s(ctx, `missing permission resource-manager.${kind}.delete`)],
        ['code', pickNumber(ctx, '403', '4.03e2')],
      ]),
    ]);
  } else if (rng.chance(0.3)) {
    optional.push([
      'details',
      object([['note', s(ctx, `changed by ${actor.name} via ${userAgent.split(' ')[0]}`)]]),
    ]);
  }
  if (viaServiceAccount && rng.chance(0.6)) {
    const principal = rng.pick(PEOPLE);
    optional.push([
      'serviceAccountDelegationInfo',
      object([
        [
          'principals',
          `[${object([
            ['id', s(ctx, principal.id)],
            ['email', s(ctx, principal.email)],
          ])}]`,
        ],
      ]),
    ]);
  }

  const order = rng.int(3);
  if (order === 1) {
    // Times first, as some log pipelines print them.
    const [id, received, eventTime, ...rest] = required;
    return object([eventTime as Entry, received as Entry, id as Entry, ...rest, ...optional]);
  }
  if (order === 2) return object([...required, ...optional].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  return object([...required, ...optional]);
}
