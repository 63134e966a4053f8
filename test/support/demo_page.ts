/** Driving the demo editor page in a real browser: its text as shown, typing, its state badge. */
import type { Page } from 'playwright-core';

/** The document as the editor shows it: every line's text, remote carets' name labels left out. */
export function editorText(page: Page): Promise<string> {
  return page.evaluate(() => Array.from(document.querySelectorAll('.cm-content .cm-line'), (line) => {
    const copy = line.cloneNode(true) as HTMLElement;
    for (const caret of copy.querySelectorAll('.cm-remote-caret')) caret.remove();
    return copy.textContent ?? '';
  }).join('\n'));
}

/** Clicks into the editor, moves with `key` (e.g. Control+End) and types, as a person would. */
export async function typeAt(page: Page, key: string, text: string): Promise<void> {
  await page.click('.cm-content');
  await page.keyboard.press(key);
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (i > 0) {
      // The Python mode offers completions (`shared St` → `StopAsyncIteration`), which Enter
      // would accept: a person dismisses them first.
      await page.keyboard.press('Escape');
      await page.keyboard.press('Enter');
    }
    if (lines[i]) await page.keyboard.type(lines[i], { delay: 5 });
  }
}

export function typeAtEnd(page: Page, text: string): Promise<void> {
  return typeAt(page, 'Control+End', text);
}

export async function waitForState(page: Page, state: 'connected' | 'offline' | 'reconnecting' | 'closed', timeoutMs = 45_000): Promise<void> {
  await page.waitForSelector(`#state[data-state="${state}"]`, { timeout: timeoutMs });
}

/** Polls until `condition` holds, naming what it waited for when it does not. */
export async function eventually(condition: () => Promise<boolean>, timeoutMs: number, what: string, describe?: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe ? `: ${await describe()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
