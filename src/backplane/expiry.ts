/**
 * When an abandoned codespace goes (PROTOCOL.md §7: CODESPACE_TTL_S, TMP_CODESPACE_TTL_S for
 * tmp- ones, 0 keeps it for ever). The same rule for every store that expires on its own: Redis
 * keys carry it as their TTL; the memory and file stores are swept by the hub (`sweepEveryMs`),
 * which never removes a codespace that has a channel.
 */
export interface ExpiryPolicy {
  /** Seconds after the last activity; 0: never. */
  ttlS: number;
  tmpTtlS: number;
}

export function ttlSOf(policy: ExpiryPolicy, codespace: string): number {
  return codespace.startsWith('tmp-') ? policy.tmpTtlS : policy.ttlS;
}

export function expiredAt(policy: ExpiryPolicy, codespace: string, activeAtMs: number, nowMs: number): boolean {
  const ttlS = ttlSOf(policy, codespace);
  return ttlS > 0 && nowMs - activeAtMs >= ttlS * 1000;
}

/**
 * Milliseconds between sweeps: a tenth of the shorter TTL, between 1 s and 60 s, so a codespace
 * outlives its TTL by at most a tenth of it (or a minute); null when nothing expires.
 */
export function sweepEveryMs(policy: ExpiryPolicy): number | null {
  const ttls = [policy.ttlS, policy.tmpTtlS].filter((ttl) => ttl > 0);
  if (ttls.length === 0) return null;
  return Math.min(60_000, Math.max(1_000, Math.floor((Math.min(...ttls) * 1000) / 10)));
}
