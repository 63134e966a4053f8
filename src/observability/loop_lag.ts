/**
 * How often each thread samples its event-loop delay (monitorEventLoopDelay's timer). Every
 * sample wakes an idle thread: at 10 ms, the three threads of an idle server woke 300 times a
 * second, most of what 10,000 idle connections cost (issue 15). Sampled every 50 ms, the p99 of
 * a busy loop is still seen; an idle one pays a fifth.
 */
export const LAG_RESOLUTION_MS = 50;
