import { chromium } from 'playwright-core';
import { startGateway, ALICE } from '/work/wt-docs/test/helpers/gateway.ts';
const gw = await startGateway({ keypairs: [ALICE] });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log('console', m.type(), m.text()));
  page.on('pageerror', (e) => console.log('pageerror', e.message));
  const res = await page.goto(gw.url + '/docs');
  console.log(res?.status(), await res?.allHeaders());
  await page.waitForSelector('.opblock', { timeout: 15000 });
  console.log(await page.$$eval('.opblock', (els) => els.map((e) => e.id)));
  await page.screenshot({ path: '/tmp/kgdocs/docs.png', fullPage: false });
} finally {
  await browser.close();
  await gw.stop();
}
