/**
 * vitest global setup: builds the pages once before any test file runs, so that the page and
 * route tests serve what the sources say now (as `make test` does through its `pages` target),
 * and no two test files rebuild dist/pages at the same time.
 */
import { buildPages } from '../../scripts/build_pages.mjs';

export default async function setup(): Promise<void> {
  await buildPages();
}
