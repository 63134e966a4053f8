/** An error's message and the top of its stack, for a log line (never the whole stack: it may be deep). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error).slice(0, 500);
  const stack = (error.stack ?? '').split('\n').slice(1, 5).map((line) => line.trim()).join(' | ');
  return `${error.name}: ${error.message.slice(0, 300)}${stack ? ` @ ${stack}` : ''}`;
}
