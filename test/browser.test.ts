/**
 * /docs and /playground in a real browser: playwright-core driving Debian's chromium against a real
 * gateway process. "Try it out" is signed in the page (WebCrypto) and the gateway accepts it; a wrong
 * secret shows the 401 problem document; the playground runs OCR on a rendered image and draws it.
 * No page logs an error (a CSP violation is a console error in chromium). Screenshots of both pages
 * are written to test-output/browser/.
 *
 * Playground cases are a table (PLAYGROUND_CASES): a new kernel (face, detect) is one more entry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ALICE, BIN, startGateway, type TestGateway, type TestKeypair } from './helpers/gateway.js';
import sharp from 'sharp';
import { FACES, iou, photo } from './helpers/photos.js';
import { renderTextWithLayout } from './helpers/render-text.js';

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT = resolve(import.meta.dirname, '../test-output/browser');
const skip = existsSync(CHROMIUM) ? false : `no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) to run the browser tests`;

/** A page with every console error, page error and failed same-origin request recorded. */
interface WatchedPage {
  page: Page;
  errors: string[];
}

async function open(browser: Browser, url: string): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Generous: the suite shares two cores with other test files (the steps themselves take a second or two).
  page.setDefaultTimeout(60_000);
  page.setDefaultNavigationTimeout(60_000);
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  const res = await page.goto(url);
  assert.equal(res?.status(), 200);
  return { page, errors };
}

async function enterKeypair(page: Page, k: Pick<TestKeypair, 'accessKey' | 'secretKey'>): Promise<void> {
  await page.getByLabel('Access key', { exact: true }).fill(k.accessKey);
  await page.getByLabel('Secret key', { exact: true }).fill(k.secretKey);
  await page.getByRole('button', { name: 'Use in this tab' }).click();
  await page.getByText(`Requests are signed as ${k.accessKey}.`).waitFor();
}

/** Expands an operation, presses "Try it out", lets `fill` set parameters, executes, returns status and body. */
async function tryItOut(page: Page, opId: string, fill: (op: ReturnType<Page['locator']>) => Promise<void> = async () => {}, screenshot?: string) {
  const op = page.locator(`#${opId}`);
  if (!(await op.locator('.try-out__btn').isVisible())) await op.locator('.opblock-summary-control').click();
  const tryOut = op.locator('.try-out__btn');
  if ((await tryOut.textContent())?.includes('Try it out')) await tryOut.click();
  await fill(op);
  await op.locator('button.execute').click();
  const status = op.locator('.live-responses-table .response .response-col_status');
  await status.waitFor();
  const body = (await op.locator('.live-responses-table .response-col_description .microlight').first().textContent()) ?? '';
  const result = { status: Number((await status.textContent())?.trim()), body };
  if (screenshot !== undefined) await op.screenshot({ path: join(OUTPUT, screenshot) });
  const clear = op.locator('.btn-clear');
  if ((await clear.count()) > 0) await clear.click();
  return result;
}

interface PlaygroundCase {
  name: string;
  model: string;
  image(): Promise<{ png: Buffer; check(result: any, page: Page): Promise<void> }>;
}

/** Colour drawn on the canvas (not grey): the shapes' strokes and captions; the test images are grey/white. */
async function colouredPixels(page: Page, x0: number, y0: number, x1: number, y1: number): Promise<number> {
  return page.evaluate(
    ([a, b, c, d]) => {
      const canvas = document.getElementById('canvas') as HTMLCanvasElement;
      const data = canvas.getContext('2d')!.getImageData(a, b, Math.max(1, c - a), Math.max(1, d - b)).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, bl] = [data[i]!, data[i + 1]!, data[i + 2]!];
        if (Math.max(r, g, bl) - Math.min(r, g, bl) > 60) n++;
      }
      return n;
    },
    [x0, y0, x1, y1],
  );
}

const PLAYGROUND_CASES: PlaygroundCase[] = [
  {
    name: 'OCR: a rendered text image shows its lines, drawn where the text is',
    model: 'ocr',
    async image() {
      const rendered = await renderTextWithLayout(['Quarterly report 2026', 'Revenue grew 18 percent'], { size: 30, padding: 40 });
      return {
        png: rendered.png,
        async check(result, page) {
          const texts = result.predictions.map((p: { text: string }) => p.text);
          assert.deepEqual(texts, ['Quarterly report 2026', 'Revenue grew 18 percent']);
          // The list and the canvas caption say the same.
          const listed = await page.locator('#predictions li').allTextContents();
          assert.ok(listed[0]!.startsWith('Quarterly report 2026'), listed.join(' | '));
          assert.equal(await page.locator('#canvas').evaluate((c: HTMLCanvasElement) => `${c.width}x${c.height}`), `${rendered.width}x${rendered.height}`);
          for (const [i, line] of rendered.lines.entries()) {
            const p = result.predictions[i];
            // The box the gateway found covers the line's ink...
            assert.ok(p.x_min <= line.left + 4 && p.x_max >= line.left + line.width - 4, JSON.stringify(p));
            // ...and the page drew on it: coloured pixels along the box and its caption, none in the blank margin.
            const drawn = await colouredPixels(page, p.x_min - 4, p.y_min - 40, p.x_max + 4, p.y_max + 4);
            assert.ok(drawn > (p.x_max - p.x_min), `only ${drawn} coloured pixels around line ${i}`);
          }
          assert.equal(await colouredPixels(page, rendered.width - 30, rendered.height - 30, rendered.width, rendered.height), 0);
        },
      };
    },
  },
  {
    name: 'face: a photograph shows its face box',
    model: 'face',
    async image() {
      // Greyscale, so that any colour on the canvas is the page's drawing, not the photo.
      const png = await sharp(photo('astronaut')).greyscale().toColourspace('srgb').png().toBuffer();
      return {
        png,
        async check(result, page) {
          assert.equal(result.predictions.length, 1, JSON.stringify(result));
          const p = result.predictions[0];
          assert.ok(iou(p, FACES.astronaut.box) > 0.5, `face box ${JSON.stringify(p)}`);
          const listed = await page.locator('#predictions li').allTextContents();
          assert.equal(listed.length, 1, listed.join(' | '));
          // The box is drawn: coloured pixels along its edges, none far from it.
          const drawn = await colouredPixels(page, p.x_min - 4, p.y_min - 4, p.x_max + 4, p.y_max + 4);
          assert.ok(drawn > 2 * (p.x_max - p.x_min), `only ${drawn} coloured pixels around the face`);
          assert.equal(await colouredPixels(page, 400, 400, 512, 512), 0);
        },
      };
    },
  },
];

describe('docs and playground in a real browser', { skip }, () => {
  let gw: TestGateway;
  let browser: Browser;
  /** A static API key of ALICE's ("apikey" is among the gateway's schemes, so the panel offers it). */
  let apiKey: string;
  before(async () => {
    mkdirSync(OUTPUT, { recursive: true });
    const { chromium } = await import('playwright-core');
    [gw, browser] = await Promise.all([
      startGateway({ keypairs: [ALICE], config: '[auth]\nschemes = ["backendai", "apikey"]\n' }),
      chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }),
    ]);
    const added = await promisify(execFile)(process.execPath, [BIN, 'keypair', 'apikey', 'add', ALICE.accessKey, '--dir', gw.keypairDir, '--json']);
    apiKey = JSON.parse(added.stdout).api_key;
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('/docs: "Try it out" is signed in the page for GET /auth/test, POST /session and a multipart infer; a wrong secret shows the 401 problem', async () => {
    const { page, errors } = await open(browser, `${gw.url}/docs`);
    const specRequests: Array<string | null> = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/openapi.json')) specRequests.push(r.headers().authorization ?? null);
    });
    await page.locator('#operations-auth-get_auth_test').waitFor();
    await enterKeypair(page, ALICE);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('kernelgate.credentials')?.includes('"secretKey"')), true);

    const echo = await tryItOut(page, 'operations-auth-get_auth_test', (op) => op.locator('tr[data-param-name="echo"] input').fill('from the browser'));
    assert.equal(echo.status, 200, echo.body);
    assert.deepEqual(JSON.parse(echo.body), { authorized: 'yes', echo: 'from the browser' });

    const created = await tryItOut(page, 'operations-session-post_session', (op) => op.locator('textarea.body-param__text').fill('{"name": "docs1", "image": "ocr"}'));
    assert.equal(created.status, 201, created.body);
    assert.equal(JSON.parse(created.body).sessionName, 'docs1');

    const rendered = await renderTextWithLayout(['Invoice 2026 total 431.50'], { size: 32 });
    const inferred = await tryItOut(
      page,
      'operations-session-post_session__name__infer',
      async (op) => {
        await op.locator('tr[data-param-name="name"] input').fill('docs1');
        await op.locator('.body-param-content-type select').selectOption('multipart/form-data');
        await op.locator('input[type="file"]').setInputFiles({ name: 'text.png', mimeType: 'image/png', buffer: rendered.png });
      },
      'docs-infer.png',
    );
    assert.equal(inferred.status, 200, inferred.body);
    assert.equal(JSON.parse(inferred.body).predictions[0].text, 'Invoice 2026 total 431.50');
    await page.locator('#operations-session-post_session__name__infer .opblock-summary-control').click();

    // The secret never left the page: the gateway's log has the access key (access lines), never the secret.
    assert.ok(!gw.output.join('\n').includes(ALICE.secretKey));
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: join(OUTPUT, 'docs.png'), fullPage: false });

    await enterKeypair(page, { accessKey: ALICE.accessKey, secretKey: 'wrongSecretKey000000000000000000000000XX' });
    const refused = await tryItOut(page, 'operations-auth-get_auth_test');
    assert.equal(refused.status, 401);
    const problem = JSON.parse(refused.body);
    assert.equal(problem.status, 401);
    assert.match(problem.type, /auth-failed$/);

    // The API key scheme is on, so the panel offers it: x-api-key instead of a signature.
    await page.getByLabel(/API key \(x-api-key\)/).check();
    await page.getByLabel('API key', { exact: true }).fill(apiKey);
    await page.getByRole('button', { name: 'Use in this tab' }).click();
    await page.getByText('Requests carry the saved API key.').waitFor();
    assert.equal(await page.getByLabel(/Bearer token \(OIDC\)/).isVisible(), false, 'oidc is not among the schemes');
    const withKey = await tryItOut(page, 'operations-auth-get_auth_test');
    assert.equal(withKey.status, 200, withKey.body);

    assert.ok(specRequests.length >= 1 && specRequests.every((a) => a === null), 'the spec fetch is not signed');
    // The 401 above is the only error chromium logs (a failed fetch); no CSP violation, no script error.
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
    // ...and a violation would have been seen: an inline script is refused by the CSP and reported.
    const ran = await page.evaluate(async () => {
      const s = document.createElement('script');
      s.textContent = 'window.inlineRan = true';
      document.body.append(s);
      await new Promise((r) => setTimeout(r, 100));
      return (window as unknown as { inlineRan?: boolean }).inlineRan ?? false;
    });
    assert.equal(ran, false);
    assert.ok(errors.some((e) => /Content Security Policy/.test(e)), errors.join('\n'));
    await page.context().close();
  });

  for (const c of PLAYGROUND_CASES) {
    it(`/playground: ${c.name}`, async () => {
      const { page, errors } = await open(browser, `${gw.url}/playground`);
      await enterKeypair(page, ALICE);
      await page.locator(`#model option[value="${c.model}"]`).waitFor({ state: 'attached' });
      await page.getByLabel('Model', { exact: true }).selectOption(c.model);
      const { png, check } = await c.image();
      await page.getByLabel(/Image: drop it here/).setInputFiles({ name: `${c.model}.png`, mimeType: 'image/png', buffer: png });
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.getByText(/^Done in \d+ ms\.$/).waitFor();
      const result = JSON.parse((await page.locator('#raw').textContent())!);
      await check(result, page);
      assert.match((await page.locator('#timing').textContent())!, /Round trip\d+ ms/);
      // A second run reuses the page's session (one POST /session per model).
      const posts: string[] = [];
      page.on('request', (r) => r.method() === 'POST' && posts.push(new URL(r.url()).pathname));
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.getByText(/^Done in \d+ ms\.$/).waitFor();
      assert.deepEqual(posts.filter((p) => p === '/session'), []);
      await page.screenshot({ path: join(OUTPUT, `playground-${c.model}.png`), fullPage: true });
      // Readable on a phone: one column, nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no horizontal scrolling at 390 px');
      await page.screenshot({ path: join(OUTPUT, `playground-${c.model}-phone.png`), fullPage: true });
      assert.deepEqual(errors, []);
      await page.context().close();
    });
  }
});
