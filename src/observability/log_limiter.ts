/**
 * A log for events anyone outside can cause (refused joins, refused upgrades): each is worth a
 * line at info, but a flood of them must not fill the disk. At most `perWindow` lines per event
 * per window; the next line after a window that dropped some says how many (`suppressed`).
 */
import type { LogFn } from './logger.ts';

export function limitedLog(log: LogFn, perWindow = 20, windowMs = 10_000, now: () => number = Date.now): LogFn {
  const windows = new Map<string, { start: number; logged: number; suppressed: number }>();
  return function logLimited(event, fields) {
    const at = now();
    let window = windows.get(event);
    if (!window || at - window.start >= windowMs) {
      const suppressed = window?.suppressed ?? 0;
      window = { start: at, logged: 0, suppressed: 0 };
      windows.set(event, window);
      if (suppressed > 0) fields = { ...fields, suppressed };
    }
    if (window.logged >= perWindow) {
      window.suppressed++;
      return;
    }
    window.logged++;
    log(event, fields);
  };
}
