import { redactUrl } from './redact.ts';

/**
 * Where Redis is, read from `daemon.redis.url` (or REDIS_URL). One string, so a Kubernetes Secret or an
 * environment variable can carry all of it, password included:
 *
 *   redis://[user:pass@]host:6379[/db]                               one server
 *   redis+sentinel://[user:pass@]s1:26379,s2:26379,s3/mymaster[/db]   Sentinel: sentinels, then the master name
 *   redis+cluster://[user:pass@]n1:6379,n2:6379,n3                   Cluster: any subset of the nodes (seeds)
 *
 * `rediss` instead of `redis` turns TLS on, for the sentinels and the master alike. The password in the
 * userinfo is the data nodes' password; Sentinels that require their own give it as `?sentinelPassword=`
 * (`${VAR}` references resolve before this is read).
 */
export type RedisEndpoint =
  | { readonly kind: 'standalone'; readonly url: string }
  | {
      readonly kind: 'sentinel';
      readonly sentinels: readonly HostPort[];
      readonly masterName: string;
      readonly db: number;
      readonly tls: boolean;
      readonly username?: string;
      readonly password?: string;
      readonly sentinelPassword?: string;
    }
  | {
      readonly kind: 'cluster';
      readonly nodes: readonly HostPort[];
      readonly tls: boolean;
      readonly username?: string;
      readonly password?: string;
    };

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const DEFAULT_PORT = { sentinel: 26_379, cluster: 6379 } as const;
const MULTI_HOST = /^(rediss?)\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?(?:\?([^#]*))?$/;

/** Parses a Redis URL; throws an Error whose message never contains the URL (it may hold a password). */
export function parseRedisUrl(value: string): RedisEndpoint {
  const multi = MULTI_HOST.exec(value);
  if (!multi) {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(URL_FORMS);
    }
    if ((url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
      throw new Error(URL_FORMS);
    }
    return { kind: 'standalone', url: value };
  }
  const [, scheme, mode, userinfo, hostList, path = '', query = ''] = multi as unknown as [
    string,
    string,
    'sentinel' | 'cluster',
    string | undefined,
    string,
    string | undefined,
    string | undefined,
  ];
  const hosts = parseHosts(hostList, DEFAULT_PORT[mode], mode);
  const credentials = parseUserinfo(userinfo);
  const params = new URLSearchParams(query);
  const unknownParam = [...params.keys()].find(
    (name) => !(mode === 'sentinel' && name === 'sentinelPassword'),
  );
  if (unknownParam !== undefined) {
    throw new Error(
      `unknown query parameter "${unknownParam}"${mode === 'sentinel' ? ' (only sentinelPassword is read)' : ' (a cluster URL takes none)'}`,
    );
  }
  const tls = scheme === 'rediss';
  const segments = path.split('/').filter((segment) => segment !== '');
  if (mode === 'cluster') {
    if (segments.length > 0)
      throw new Error('a redis+cluster:// URL has no path (Redis Cluster has only database 0)');
    return { kind: 'cluster', nodes: hosts, tls, ...credentials };
  }
  const [masterName, dbText, ...rest] = segments;
  if (masterName === undefined || rest.length > 0) {
    throw new Error(
      'a redis+sentinel:// URL ends with /MASTER-NAME[/DB], e.g. redis+sentinel://s1,s2,s3/mymaster',
    );
  }
  const db = dbText === undefined ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || !/^\d+$/.test(dbText ?? '0')) {
    throw new Error('the database after the master name must be a number, e.g. /mymaster/0');
  }
  const sentinelPassword = params.get('sentinelPassword');
  return {
    kind: 'sentinel',
    sentinels: hosts,
    masterName: decodeURIComponent(masterName),
    db,
    tls,
    ...credentials,
    ...(sentinelPassword !== null && sentinelPassword !== '' ? { sentinelPassword } : {}),
  };
}

const URL_FORMS =
  'must be redis://host:port, rediss://…, redis+sentinel://s1:26379,s2,s3/MASTER, redis+cluster://n1:6379,n2,n3 ' +
  '(rediss+… for TLS), or empty for the embedded redis-server';

function parseHosts(list: string, defaultPort: number, mode: string): HostPort[] {
  if (list === '') throw new Error(`a redis+${mode}:// URL needs at least one host`);
  return list.split(',').map((entry) => {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(entry.trim());
    const port = match?.[2] === undefined ? defaultPort : Number(match[2]);
    if (!match || port < 1 || port > 65_535) {
      throw new Error(`"${entry.trim()}" in the host list is not host[:port]`);
    }
    return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
  });
}

function parseUserinfo(userinfo: string | undefined): { username?: string; password?: string } {
  if (userinfo === undefined || userinfo === '') return {};
  const colon = userinfo.indexOf(':');
  // `redis://secret@host` is read as a password, as ioredis reads the single-host form.
  if (colon < 0) return { password: decodeURIComponent(userinfo) };
  const username = decodeURIComponent(userinfo.slice(0, colon));
  const password = decodeURIComponent(userinfo.slice(colon + 1));
  return { ...(username !== '' ? { username } : {}), ...(password !== '' ? { password } : {}) };
}

/** True when the text is a Redis URL of any of the accepted forms. */
export function isRedisUrl(value: string): boolean {
  try {
    parseRedisUrl(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * A Redis URL safe to print, in any of the forms: passwords and `sentinelPassword` become `***`. Text
 * that does not parse is withheld.
 */
export function redactRedisUrl(value: string): string {
  const multi = MULTI_HOST.exec(value);
  if (!multi) return redactUrl(value);
  // The multi-host list is not a WHATWG host: redact the rest as a one-host URL, then put the list back.
  const [, scheme, mode, userinfo, hostList, path = '', query = ''] = multi;
  const single = `${scheme}://${userinfo !== undefined ? `${userinfo}@` : ''}placeholder${path}${query ? `?${query}` : ''}`;
  const redacted = redactUrl(single);
  if (redacted.startsWith('[redacted')) return redacted;
  return redacted.replace(`${scheme}://`, `${scheme}+${mode}://`).replace('placeholder', hostList ?? '');
}
