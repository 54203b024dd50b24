/**
 * Waits until `check()` holds, polling every 10 ms: a hang guard for tests that wait
 * for processes or rebalances, not a performance bound. Throws naming `what` (and
 * `detail()`, the state worth seeing) after `ms`.
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000, detail?: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail === undefined ? '' : `: ${detail()}`}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
