/** Types of scripts/build_pages.mjs, for the TypeScript that imports it (the test setup). */
export declare const PAGES: { key: string; entry: string; html: string; out: string }[];
export declare function buildPages(options?: { outdir?: string; minify?: boolean }): Promise<string[]>;
