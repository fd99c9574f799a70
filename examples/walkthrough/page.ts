// The topology page as a reader of the walkthrough sees it: headless Chromium (Debian's, driven by
// playwright-core) opens the page, waits until it is live and lists the given container, saves a
// screenshot and prints what it saw as one JSON line. Run inside the host's network namespace:
//   nsenter --net=NS -- node --import=tsx examples/walkthrough/page.ts URL PNG NAME
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
// No sandbox as root, and no background connections (the walkthrough's namespace has no way out).
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** What the page showed: its summary line, each host block's text and each endpoint's text. */
export interface PageView {
  summary: string;
  status: string;
  hosts: string[];
  endpoints: string[];
}

async function main(url: string, png: string, name: string): Promise<PageView> {
  const profile = mkdtempSync(join(tmpdir(), 'tso-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1000, height: 300 }, timeout: 30_000 });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    page.setDefaultTimeout(15_000);
    await page.goto(url);
    await page.locator('#status.live').waitFor();
    await page.locator('[data-endpoint-id]', { hasText: name }).first().waitFor();
    await page.screenshot({ path: png, fullPage: true });
    return {
      summary: await page.locator('#summary').innerText(),
      status: await page.locator('#status').innerText(),
      hosts: await page.locator('[data-host-id]').allInnerTexts(),
      endpoints: await page.locator('[data-endpoint-id]').allInnerTexts(),
    };
  } finally {
    await ctx.close().catch(() => undefined);
    rmSync(profile, { recursive: true, force: true });
  }
}

const [url, png, name] = process.argv.slice(2);
if (!url || !png || !name) {
  process.stderr.write('usage: page.ts URL PNG CONTAINER-NAME\n');
  process.exit(2);
}
main(url, png, name).then(
  (view) => process.stdout.write(`${JSON.stringify(view)}\n`),
  (err: Error) => {
    process.stderr.write(`page: ${err.message}\n`);
    process.exitCode = 1;
  },
);
