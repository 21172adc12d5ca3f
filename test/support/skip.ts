// A test that cannot run on this host is registered as skipped, so uvu counts
// it, and named with the reason on a line scripts/test.mjs collects and lists.
import { test } from 'uvu';

export const SKIP_MARK = '# skip:';

export function skipTest(name: string, reason: string): void {
  console.log(`${SKIP_MARK} ${name} -- ${reason}`);
  test.skip(name, () => undefined);
}
