/** Stylesheets imported by the pages' entries: esbuild bundles them into one CSS file per page. */
declare module '*.css';
