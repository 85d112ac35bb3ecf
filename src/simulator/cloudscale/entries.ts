/**
 * The raw JSON of one cloudscale.ch project-log entry, written by hand. Fields follow what is known
 * (research/providers.md §4.4): `timestamp` (µs, `Z`), `action`, `message`, `ip_address` (null for
 * staff and automated tasks), `actor` (one of user, api_token, system, admin) and `subject` (one of
 * organization, user, project); the last three shapes come from a third-party client, so they are
 * a best guess. A few entries carry an extra field the shipper has never heard of.
 *
 * Rendering varies in JSON-legal ways (non-ASCII raw or `\uXXXX`-escaped, `\/`, key order), so a client
 * that re-encodes an entry instead of keeping its bytes produces something else. The content depends
 * only on the project, timestamp and content seed, never on the id: byte-identical twins stay identical.
 */

import { Rng, uuidFor, uuidFromWords } from '../random.ts';
import { jsonString } from '../stackit/events.ts';
import { formatTimestamp, type LogEntry } from './log.ts';

type Field = readonly [key: string, json: string];

function object(fields: readonly Field[]): string {
  return `{${fields.map(([key, json]) => `"${key}":${json}`).join(',')}}`;
}

interface Style {
  readonly slash: boolean;
  readonly unicode: 'raw' | 'lower' | 'upper';
}

const PEOPLE = [
  'renee.dubois@example.com',
  'juergen.mueller@example.ch',
  'asa.lindstrom@example.se',
  'zoe.ciric@example.org',
  'alice@example.com',
];

const NAMES = ['web-01', 'café-backend', 'büro-zürich', 'cache', 'straße-7', 'db "primary"', 'データ-lake'];

interface Template {
  readonly action: string;
  readonly message: (name: string) => string;
}

const TEMPLATES: readonly Template[] = [
  { action: 'server_create', message: (n) => `Server '${n}' has been created` },
  { action: 'server_start', message: (n) => `Server '${n}' has been started` },
  { action: 'server_stop', message: (n) => `Server '${n}' has been stopped` },
  { action: 'server_delete', message: (n) => `Server '${n}' has been deleted` },
  { action: 'volume_create', message: (n) => `Volume '${n}' has been created` },
  { action: 'volume_delete', message: (n) => `Volume '${n}' has been deleted` },
  { action: 'server_volume_attach', message: (n) => `Volume '${n}' has been attached to server 'web-01'` },
  { action: 'floating_ip_create', message: () => 'Floating IP 192.0.2.17/32 has been created' },
  { action: 'network_create', message: (n) => `Network '${n}' has been created` },
  { action: 'objects_user_create', message: (n) => `Objects user '${n}/s3' has been created` },
];

function sourceIp(rng: Rng): string {
  if (rng.chance(0.25))
    return `2001:db8:${rng.int(0x10000).toString(16)}::${rng.range(1, 0xffff).toString(16)}`;
  return `${rng.pick(['185.98.122', '203.0.113', '198.51.100'])}.${rng.range(1, 254)}`;
}

/** Renders the raw JSON text of one project-log entry. */
export function renderCloudscaleEntry(entry: LogEntry): string {
  const rng = new Rng(entry.contentWords);
  const style: Style = {
    slash: rng.chance(0.3),
    unicode: rng.pick(['raw', 'raw', 'lower', 'upper'] as const),
  };
  const s = (text: string): string => jsonString(text, style);
  const template = rng.pick(TEMPLATES);
  const name = rng.pick(NAMES);
  const projectUuid = uuidFor(`cloudscale project|${entry.project}`);

  const actorRoll = rng.next();
  let actor: string;
  let ip: string;
  if (actorRoll < 0.55) {
    actor = object([['user', object([['email', s(rng.pick(PEOPLE))]])]]);
    ip = s(sourceIp(rng));
  } else if (actorRoll < 0.85) {
    actor = object([
      [
        'api_token',
        object([
          ['uuid', s(uuidFromWords(rng.words()))],
          ['description', s(rng.pick(['terraform/prod', 'ci: deploy ✓', 'backup-runner']))],
        ]),
      ],
    ]);
    ip = s(sourceIp(rng));
  } else if (actorRoll < 0.95) {
    actor = object([['system', '{}']]);
    ip = 'null';
  } else {
    actor = object([['admin', '{}']]);
    ip = 'null';
  }
  const subjectRoll = rng.next();
  const subject =
    subjectRoll < 0.8
      ? object([
          [
            'project',
            object([
              ['uuid', s(projectUuid)],
              ['name', s(entry.project)],
            ]),
          ],
        ])
      : object([
          [
            'organization',
            object([
              ['href', s(`https://api.cloudscale.ch/v1/organizations/${uuidFor(`org|${entry.project}`)}`)],
              ['uuid', s(uuidFor(`org|${entry.project}`))],
              ['name', s('Example AG')],
            ]),
          ],
        ]);

  const fields: Field[] = [
    ['timestamp', `"${formatTimestamp(entry.tUs)}"`],
    ['action', s(template.action)],
    ['message', s(template.message(name))],
    ['ip_address', ip],
    ['actor', actor],
    ['subject', subject],
  ];
  // Fields the shipper does not know must pass through untouched.
  if (rng.chance(0.1)) fields.push(['request_id', s(uuidFromWords(rng.words()))]);
  if (rng.chance(0.5)) fields.sort((a, b) => (a[0] < b[0] ? -1 : 1));
  return object(fields);
}
