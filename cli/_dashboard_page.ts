/**
 * The dashboard's page: one HTML document with its style and script inline.
 *
 * @module
 */

/** The page `memalloc dashboard` serves at `/`. */
export const DASHBOARD_PAGE: string =
  `<!doctype html><html lang="en"><title>memalloc</title></html>`;
