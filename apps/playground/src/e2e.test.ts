// End-to-end: build the playground with Vite, serve it on 127.0.0.1, drive Debian's Chromium with Playwright.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Flags from the machine notes: no sandbox as root, no GPU, and no background network (the machine is offline).
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

let server: PreviewServer;
let browser: Browser;
let url: string;

beforeAll(async () => {
  await build({ root, logLevel: 'error', configFile: join(root, 'vite.config.ts') });
  server = await preview({ root, configFile: join(root, 'vite.config.ts'), preview: { port: 0, host: '127.0.0.1' } });
  url = server.resolvedUrls!.local[0];
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('playground in Chromium', () => {
  it('generates text with the tiny M2-GPT, tokens streaming in one by one', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}?backend=wasm`);
    await expect.poll(() => page.isEnabled('#generate-button'), { timeout: 120_000 }).toBe(true);
    await page.fill('#max-tokens', '12');
    // Record the token count each time the output changes: streaming means we see 1, 2, 3, … not just the end.
    await page.evaluate(() => {
      const seen: number[] = [];
      (window as unknown as { seen: number[] }).seen = seen;
      new MutationObserver(() => seen.push(Number(document.getElementById('generation')!.dataset.tokens)))
        .observe(document.getElementById('generation')!, { childList: true, characterData: true, subtree: true, attributes: true });
    });
    await page.click('#generate-button');
    await expect.poll(() => page.textContent('#generation-stats'), { timeout: 120_000 }).toContain('12 tokens');
    const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
    expect(new Set(seen).size).toBeGreaterThanOrEqual(10); // many intermediate states, not one final write
    const text = (await page.textContent('#generation'))!;
    expect(text.startsWith('The Congress shall')).toBe(true);
    expect(text.length).toBeGreaterThan('The Congress shall'.length + 5);
    await page.screenshot({ path: join(screenshotDir(), 'playground-generate.png'), fullPage: true });
    await page.close();
  });

  it('fills a [MASK] with the tiny M2-BERT: five candidates with probabilities', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}?backend=wasm`);
    await expect.poll(() => page.isEnabled('#fill-button'), { timeout: 120_000 }).toBe(true);
    await page.click('#fill-button');
    await expect.poll(() => page.locator('#fill-results li').count(), { timeout: 60_000 }).toBe(5);
    const items = await page.locator('#fill-results li').allTextContents();
    const scores = items.map((t) => Number(t.match(/\(([\d.]+)%\)/)![1]));
    expect(scores.every((s, i) => i === 0 || s <= scores[i - 1])).toBe(true); // sorted, best first
    expect(items[0]).toContain('the president of the united');
    await page.close();
  });

  it('draws a Monarch matrix with the right statistics', async () => {
    const page = await browser.newPage();
    await page.goto(`${url}?backend=wasm`);
    await expect.poll(() => page.textContent('#backend'), { timeout: 60_000 }).toBe('wasm');
    await expect.poll(() => page.textContent('#monarch-stats'), { timeout: 30_000 }).toContain('64 × 64');
    // The dense picture is not blank: some pixel is dark.
    const dark = await page.evaluate(() => {
      const c = document.getElementById('dense') as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++;
      return n;
    });
    expect(dark).toBeGreaterThan(100);
    await page.screenshot({ path: join(screenshotDir(), 'playground-monarch.png'), fullPage: true });
    await page.close();
  });
});

export function screenshotDir(): string {
  const dir = join(root, '..', '..', '.turbo', 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}
