import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findExecutable } from '../../src/daemon/redis-server.ts';
import { waitFor } from '../support/daemon.ts';

// scripts/env.sh installs Debian packages when they are missing; another apt or dpkg holding the lock
// (unattended-upgrades on a fresh machine, two scripts at once) made it fail at once (issue 9 §13).
// Here a real process holds dpkg's frontend lock the way apt does (fcntl), and env.sh must wait for it.

const LOCK = '/var/lib/dpkg/lock-frontend';
const ROOT = new URL('../..', import.meta.url).pathname;
// perl is in every Debian (perl-base); struct flock as on x86_64 and arm64.
const HOLD = `use Fcntl qw(F_SETLK F_WRLCK SEEK_SET);
open(my $fh, '+<', '${LOCK}') or die "open: $!";
my $lock = pack('s s x4 q q i x4', F_WRLCK, SEEK_SET, 0, 0, 0);
fcntl($fh, F_SETLK, $lock) or die "lock: $!";
$| = 1; print "locked\\n"; <STDIN>;`;

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'it must run as root';
  if (!findExecutable('apt-get') || !findExecutable('perl') || !existsSync(LOCK)) {
    return 'it needs Debian’s apt-get, perl and dpkg';
  }
  if (spawnSync('dpkg', ['-s', 'redis-server'], { stdio: 'ignore' }).status !== 0) {
    return 'it needs the redis-server package installed through dpkg';
  }
  return undefined;
}
const why = skipReason();
if (why) console.log(`SKIPPED: the apt lock test of scripts/env.sh: ${why}`);

describe.skipIf(why !== undefined)('scripts/env.sh and a held apt lock', () => {
  it('waits for the dpkg lock another process holds, then installs', async () => {
    const holder = spawn('perl', ['-e', HOLD], { stdio: ['pipe', 'pipe', 'pipe'] });
    let held = '';
    holder.stdout.on('data', (chunk: Buffer) => {
      held += chunk.toString();
    });
    const released = new Promise((resolve) => holder.on('exit', resolve));
    try {
      await waitFor('the lock to be held', () => held.includes('locked'), 20_000, 20);
      // A command that is missing and a package that is installed: apt-get has nothing to fetch, but it
      // must get the lock to find that out.
      const install = spawn(
        'bash',
        [
          '-c',
          'source scripts/env.sh >/dev/null && ensure_apt_package auditlog-no-such-command redis-server "the apt lock test"',
        ],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      install.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<number | null>((resolve) => install.on('exit', resolve));
      await waitFor(
        'env.sh to wait for the lock',
        () => stderr.includes('Waiting for cache lock'),
        60_000,
        50,
      );
      holder.stdin.end();
      await released;
      expect(await exited).toBe(0);
    } finally {
      holder.kill('SIGKILL');
    }
  }, 300_000);
});
