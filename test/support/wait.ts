/**
 * Polls `probe` until it gives a value (not undefined; a throw counts as not yet), every
 * `everyMs`; throws "timed out waiting for <what>" after `timeoutMs`.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
