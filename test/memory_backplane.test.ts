import { describe, expect, it } from 'vitest';
import { MemoryBackplane } from '../src/backplane/memory_backplane.ts';
import { appendEntry, backplaneContract, CONTRACT_HISTORY, epochOf } from './backplane_contract.ts';

backplaneContract('memory', async () => ({
  backplane: new MemoryBackplane({ history: CONTRACT_HISTORY }),
  cleanup: async () => {},
}));

describe('MemoryBackplane expiry', () => {
  it('forgets a codespace idle beyond its TTL (tmp- ones sooner), never an open one', async () => {
    const backplane = new MemoryBackplane({ history: CONTRACT_HISTORY, ttlS: 100, tmpTtlS: 10 });
    for (const codespace of ['kept', 'tmp-gone', 'tmp-open']) await backplane.commit(codespace, appendEntry(1), await epochOf(backplane, codespace));
    const now = Date.now();
    expect(backplane.expire(now + 5_000, () => false)).toBe(0);
    expect(backplane.expire(now + 20_000, (codespace) => codespace === 'tmp-open')).toBe(1);
    expect(backplane.size).toBe(2);
    // Gone: a load starts it again, empty, in a new history.
    expect((await backplane.load('tmp-gone')).version).toBe(0);
    // Open at the last sweep counts as active then: its TTL runs from there. The empty tmp-gone
    // the load started again goes on its own TTL.
    expect(backplane.expire(now + 25_000, () => false)).toBe(1);
    expect(backplane.expire(now + 200_000, () => false)).toBe(2);
    expect(backplane.size).toBe(0);
  });

  it('keeps everything without a TTL', async () => {
    const backplane = new MemoryBackplane({ history: CONTRACT_HISTORY });
    await backplane.commit('tmp-x', appendEntry(1), await epochOf(backplane, 'tmp-x'));
    expect(backplane.expire(Date.now() + 10 ** 12, () => false)).toBe(0);
  });
});
