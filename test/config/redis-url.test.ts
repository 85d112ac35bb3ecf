import { describe, expect, it } from 'vitest';
import { parseRedisUrl, redactRedisUrl } from '../../src/config/redis-url.ts';

describe('Redis URLs', () => {
  it('reads one server as it is', () => {
    expect(parseRedisUrl('rediss://:pw@redis:6380/2')).toEqual({
      kind: 'standalone',
      url: 'rediss://:pw@redis:6380/2',
    });
  });

  it('reads a Sentinel group: sentinels with default port 26379, master name, db, password, TLS', () => {
    expect(
      parseRedisUrl('rediss+sentinel://app:s%40cret@s1:26380,s2,[::1]:5000/shipper/3?sentinelPassword=sp'),
    ).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: 's1', port: 26_380 },
        { host: 's2', port: 26_379 },
        { host: '::1', port: 5000 },
      ],
      masterName: 'shipper',
      db: 3,
      tls: true,
      username: 'app',
      password: 's@cret',
      sentinelPassword: 'sp',
    });
  });

  it('reads a Cluster: seed nodes with default port 6379', () => {
    expect(parseRedisUrl('redis+cluster://:pw@n1,n2:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'n1', port: 6379 },
        { host: 'n2', port: 7001 },
      ],
      tls: false,
      password: 'pw',
    });
  });

  it.each([
    ['redis+sentinel://s1,s2', 'MASTER-NAME'],
    ['redis+sentinel://s1/m/x', 'must be a number'],
    ['redis+sentinel://s1:99999/m', 'host[:port]'],
    ['redis+cluster://n1/0', 'no path'],
    ['redis+cluster://n1?password=x', 'unknown query parameter "password"'],
    ['http://x', 'must be redis://'],
  ])('refuses %s, naming the problem without the URL', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
    try {
      parseRedisUrl(`${url.replace('://', '://:topsecret@')}`);
    } catch (error) {
      expect((error as Error).message).not.toContain('topsecret');
    }
  });

  it('prints every form without its passwords', () => {
    expect(redactRedisUrl('redis+sentinel://:pw@s1:26379,s2/m?sentinelPassword=sp')).toBe(
      'redis+sentinel://:***@s1:26379,s2/m?sentinelPassword=***',
    );
    expect(redactRedisUrl('rediss+cluster://u:pw@n1,n2')).toBe('rediss+cluster://u:***@n1,n2');
    expect(redactRedisUrl('redis://:pw@h:6379')).toBe('redis://:***@h:6379');
  });
});
