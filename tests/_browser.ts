/**
 * A real browser for the dashboard's tests and screenshot: Debian's chromium, driven by
 * puppeteer-core from npm. {@linkcode browserMissing} says why there is none, for a skip.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import type { Browser } from "puppeteer-core";

/** Where Debian's `chromium` package puts the browser (or `$CHROMIUM`). */
export const CHROMIUM: string = (globalThis as { process?: { env: Record<string, string> } })
  .process?.env.CHROMIUM ?? "/usr/bin/chromium";

/** Why the browser tests cannot run here, or `undefined` when they can. */
export function browserMissing(): string | undefined {
  if (!existsSync(CHROMIUM)) {
    return `no chromium at ${CHROMIUM} (bash scripts/install_chromium.sh installs it)`;
  }
  try {
    createRequire(import.meta.url).resolve("puppeteer-core");
  } catch {
    return "puppeteer-core is not installed (npm ci installs it)";
  }
  return undefined;
}

/** Starts chromium, headless, with no network beyond the page's own server. */
export async function launchBrowser(): Promise<Browser> {
  const specifier = "puppeteer-core";
  const puppeteer = (await import(specifier)) as typeof import("puppeteer-core");
  return await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", // tests may run as root, which chromium's sandbox refuses
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--metrics-recording-only",
      "--disable-default-apps",
    ],
  });
}
