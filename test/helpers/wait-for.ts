/**
 * Wait for something the test cannot be told about (a file, a log line, a ledger row): poll
 * `fn` until it returns a truthy value and return that value; after `timeoutMs` throw,
 * naming `what`. Polls every 25 ms, never sleeps blindly. The one waitFor of the suite.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
