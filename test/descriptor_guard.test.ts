/** The descriptor guard: when the acceptor refuses new connections, and when it takes them again (pure logic, a counted table). */
import { describe, expect, it } from 'vitest';
import { DescriptorGuard, openFileCount, openFileLimit } from '../src/server/descriptors.ts';

describe('DescriptorGuard', () => {
  it('refuses within the reserve of the limit, counting only near it, and accepts again past the slack', () => {
    let open = 40;
    let counts = 0;
    const guard = new DescriptorGuard(200, { reserve: 24, slack: 4, minIntervalMs: 20, count: () => (counts++, open) });
    expect(counts).toBe(1); // at the start
    let now = 0;
    // Far from the limit: accepted, and nothing counted.
    for (; open < 99; open++) expect(guard.arrived((now += 1))).toBe(false);
    expect(counts).toBe(1);
    // Near it: counted, and refused from the one that would make 176 open.
    let refusedAt = -1;
    while (refusedAt < 0) {
      if (guard.arrived((now += 25))) refusedAt = open;
      else open++;
    }
    expect(refusedAt).toBe(175);
    expect(counts).toBeGreaterThan(2);
    expect(guard.refusing).toBe(true);
    // A refused connection holds nothing: still refused while closes free less than the slack.
    open -= 3;
    expect(guard.arrived((now += 25))).toBe(true);
    open -= 2;
    expect(guard.arrived((now += 25))).toBe(false);
    expect(guard.refusing).toBe(false);
  });

  it('sees what the rest of the process opened, once a second past half the limit', () => {
    let open = 40;
    const guard = new DescriptorGuard(200, { reserve: 24, slack: 4, minIntervalMs: 20, count: () => open });
    let now = 0;
    for (; open < 120; open++) expect(guard.arrived((now += 1))).toBe(false); // past half: counted
    open += 60; // descriptors the rest of the process opened, unseen by the guard
    expect(guard.arrived((now += 10))).toBe(false); // counted less than a second ago: the estimate stands
    open++;
    expect(guard.arrived((now += 1_000))).toBe(true);
  });

  it('reads the real limit and count on Linux', () => {
    const limit = openFileLimit();
    const count = openFileCount();
    if (process.platform !== 'linux') return;
    expect(count).toBeGreaterThan(3);
    if (limit !== null) expect(limit).toBeGreaterThanOrEqual(count!);
  });
});
