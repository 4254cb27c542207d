// A picture of the live page of a running daemon (for the README): node screenshot.mjs URL FILE
import { launchBrowser, watchErrors } from "./daemon.mjs";

const [url, file] = process.argv.slice(2);
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  const { errors } = watchErrors(page);
  await page.goto(url);
  await page.waitForSelector("#link[data-ok=true]");
  await page.waitForSelector("#chart-op-0");
  await page.waitForTimeout(3000);
  await page.screenshot({ path: file, fullPage: true });
  if (errors.length) throw new Error(`page errors: ${JSON.stringify(errors)}`);
} finally {
  await browser.close();
}
