// The live page in headless Chromium against runs on the real node: figures move and match
// /status, pause and rate changes go through the control API, refusals show the API's text,
// a token is asked for and kept in the tab only, and no JavaScript error happens on the way.
// Ports 19467 and 19469: run under the integration-test lock (scripts/test does).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { OUT, startDaemon, launchBrowser, watchErrors, getJSON } from "./daemon.mjs";

const value = (page, id) => page.$eval(`#${id}`, (el) => el.dataset.value);
const number = async (page, id) => Number(await value(page, id));

// Waits until `#id`'s raw value satisfies `pred`; the message names what was expected.
async function until(page, id, pred, what, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await value(page, id);
    if (last !== undefined && last !== "" && pred(Number(last))) return Number(last);
    if (Date.now() > deadline) assert.fail(`#${id}: expected ${what}, still ${last} after ${timeout} ms`);
    await page.waitForTimeout(100);
  }
}

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test("the page follows a run and steers it", async (t) => {
  const daemon = await startDaemon({ name: "steer", port: 19467, rate: 200 });
  try {
    const page = await browser.context.newPage();
    const { errors, foreign } = watchErrors(page);
    // On a failure, a picture of what the page showed (a CI artefact).
    t.after(() => page.isClosed() || page.screenshot({ path: join(OUT, "live-page-failure.png"), fullPage: true }));
    await page.goto(`${daemon.base}/`);
    await page.waitForSelector("#link[data-ok=true]");

    // Identity, as /status has it.
    const status = (await getJSON(`${daemon.base}/status`)).body;
    assert.equal(await page.textContent("#workload"), status.workload);
    assert.equal(await page.textContent("#model"), status.model);
    assert.equal(await page.textContent("#spec-path"), status.spec_path);
    assert.equal(await page.textContent("#shard"), `${status.shard} of ${status.shard_count}`);
    assert.equal(await number(page, "target-rate"), status.target_rate);
    assert.equal(status.target_rate, 200);

    // The figures move: issued grows, and is at most a few seconds behind /status.
    const first = await number(page, "issued");
    const later = await until(page, "issued", (v) => v > first, "issued to grow");
    const now = (await getJSON(`${daemon.base}/status`)).body;
    assert.ok(now.issued >= later && now.issued - later <= 3 * 200,
      `page issued ${later} vs /status ${now.issued}`);
    await until(page, "achieved-rate", (v) => v > 0, "an achieved rate");

    // Exact percentiles: the page's worst p99 is one of the feed's last points'.
    await page.waitForSelector("#chart-op-1");
    const p99 = await until(page, "p99-service", (v) => v > 0, "a p99 service time");
    const feed = (await getJSON(`${daemon.base}/api/history`)).body;
    assert.deepEqual(feed.ops, ["insert", "read"]);
    const recent = feed.points.slice(-4).map((p) => Math.max(...p.ops.map((o) => o.service?.p99_ms ?? 0)));
    assert.ok(recent.includes(p99), `page p99 ${p99} not among the feed's ${recent}`);
    assert.equal(await page.locator("#ops-table tbody tr").count(), 2);

    // Pause: the target and then the achieved rate go to 0.
    await page.click("#pause");
    await until(page, "target-rate", (v) => v === 0, "target 0 after pause");
    await until(page, "achieved-rate", (v) => v === 0, "achieved rate 0 while paused");
    assert.equal(await page.textContent("#phase"), "paused");
    assert.equal(await page.textContent("#pause"), "Resume");
    const paused = (await getJSON(`${daemon.base}/status`)).body;
    assert.equal(paused.paused, true);
    assert.equal(paused.achieved_rate, 0);

    // Resume, then a new rate: the target changes here and in /status, and the run follows.
    await page.click("#pause");
    await until(page, "target-rate", (v) => v === 200, "target 200 after resume");
    await page.fill("#rate-input", "350");
    await page.click("#rate-set");
    await until(page, "target-rate", (v) => v === 350, "target 350");
    assert.equal((await getJSON(`${daemon.base}/status`)).body.target_rate, 350);
    assert.match(await page.textContent("#message"), /set rate: done/);
    // Running again (how close it gets to 350 depends on the machine: not asserted).
    await until(page, "achieved-rate", (v) => v > 0, "an achieved rate after resume");

    // A refusal shows the API's own error text.
    const refusal = await getJSON(`${daemon.base}/control/concurrency`, {
      method: "PUT", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ concurrency: 100000 }),
    });
    assert.equal(refusal.status, 400);
    await page.fill("#concurrency-input", "100000");
    await page.click("#concurrency-set");
    await page.waitForSelector("#message[data-ok=false]");
    assert.equal(await page.textContent("#message"),
      `set concurrency refused (HTTP 400): ${refusal.body.error}`);
    await page.fill("#concurrency-input", "4");
    await page.click("#concurrency-set");
    await page.waitForSelector("#message[data-ok=true]");
    assert.equal((await getJSON(`${daemon.base}/status`)).body.concurrency, 4);

    // Let the lines run on for a few more points, then keep a picture.
    await page.waitForTimeout(3000);
    await page.screenshot({ path: join(OUT, "live-page.png"), fullPage: true });

    // The one expected console error is the browser's note on the refused request.
    const unexpected = errors.filter((e) => !(e.url.endsWith("/control/concurrency") && /status of 400/.test(e.text)));
    assert.deepEqual(unexpected, [], "JavaScript errors on the page");
    assert.deepEqual(foreign, [], "requests to anything but the daemon");
    await page.close();
  } finally {
    const code = await daemon.stop();
    assert.equal(code, 0, `cqlpulse exit status on SIGTERM\n${daemon.output()}`);
  }
});

test("with a token, the page asks for it and keeps it in the tab only", async () => {
  const daemon = await startDaemon({
    name: "token", port: 19469, rate: 100, env: { CQLPULSE_CONTROL_TOKEN: "s3cret-token" },
  });
  try {
    const page = await browser.context.newPage();
    const { errors } = watchErrors(page);
    await page.goto(`${daemon.base}/`);
    await page.waitForSelector("#link[data-ok=true]");
    assert.equal(await page.isVisible("#token"), false, "no token field before one is needed");

    await page.click("#pause");
    await page.waitForSelector("#message[data-ok=false]");
    assert.equal(await page.textContent("#message"),
      "pause refused (HTTP 401): missing `Authorization: Bearer <token>` header");
    assert.equal(await page.isVisible("#token"), true);

    await page.fill("#token", "wrong");
    await page.click("#pause");
    await page.waitForFunction(() => /wrong bearer token/.test(document.querySelector("#message").textContent));
    assert.equal((await getJSON(`${daemon.base}/status`)).body.paused, false);

    await page.fill("#token", "s3cret-token");
    await page.click("#pause");
    await until(page, "target-rate", (v) => v === 0, "target 0 after an authorised pause");
    assert.equal((await getJSON(`${daemon.base}/status`)).body.paused, true);

    const stored = await page.evaluate(() => JSON.stringify([{ ...localStorage }, { ...sessionStorage }, document.cookie]));
    assert.ok(!stored.includes("s3cret"), `the token was stored: ${stored}`);

    const unexpected = errors.filter((e) => !(e.url.endsWith("/control/pause") && /status of 401/.test(e.text)));
    assert.deepEqual(unexpected, [], "JavaScript errors on the page");
    await page.close();
  } finally {
    await daemon.stop();
  }
});
