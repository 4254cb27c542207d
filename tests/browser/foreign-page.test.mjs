// Another web page cannot drive the daemon: a page served from another loopback port tries
// the control API by a "simple" fetch, by a JSON fetch and by an HTML form, and a page reached
// under a name that resolves to 127.0.0.1 (DNS rebinding) tries the daemon as its own origin.
// Each attempt reaches the daemon (its answers are seen) and none changes the run.
// Port 19467: run under the integration-test lock (scripts/test does).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { REBOUND, startDaemon, launchBrowser, getJSON } from "./daemon.mjs";

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test("a page of another origin cannot pause, retune or read the run", async () => {
  const daemon = await startDaemon({ name: "foreign", port: 19467, rate: 100 });
  const foreign = createServer((_, res) => {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end("<!doctype html><title>elsewhere</title><p>another site</p>");
  });
  await new Promise((r) => foreign.listen(0, "127.0.0.1", r));
  try {
    const page = await browser.context.newPage();
    // What the daemon answered, as the browser saw it (also for responses the page cannot read).
    const answers = [];
    page.on("response", (r) => {
      const u = new URL(r.url());
      if (u.port === "19467") answers.push(`${r.request().method()} ${u.pathname} ${r.status()}`);
    });
    await page.goto(`http://127.0.0.1:${foreign.address().port}/`);

    // A simple request: no preflight, the browser sends it and hides the answer.
    const simple = await page.evaluate(async (base) => {
      const r = await fetch(`${base}/control/pause`, {
        method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: "{}",
      });
      return r.type;
    }, daemon.base);
    assert.equal(simple, "opaque");
    // JSON from elsewhere needs a preflight, which the daemon does not approve.
    const json = await page.evaluate(async (base) => {
      try {
        await fetch(`${base}/control/rate`, {
          method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ rate: 5 }),
        });
        return "sent";
      } catch { return "blocked"; }
    }, daemon.base);
    assert.equal(json, "blocked");
    // A form, whose answer the browser shows as a page.
    const [formAnswer] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${daemon.base}/control/pause` && r.request().resourceType() === "document"),
      page.evaluate((base) => {
        const f = document.createElement("form");
        f.method = "POST";
        f.action = `${base}/control/pause`;
        f.enctype = "text/plain";
        const i = document.createElement("input");
        i.name = '{"x": "';
        i.value = '"}';
        f.append(i);
        document.body.append(f);
        f.submit();
      }, daemon.base),
    ]);
    assert.equal(formAnswer.status(), 403);
    assert.match(await formAnswer.text(), /is not this daemon's own/);
    assert.equal(answers.filter((a) => a === "POST /control/pause 403").length, 2, answers.join("\n"));
    assert.ok(!answers.some((a) => a.startsWith("PUT ")), `the JSON PUT was sent: ${answers}`);

    // DNS rebinding: the daemon under the attacker's name, same-origin to the browser.
    const rebound = `http://${REBOUND}:19467`;
    const landing = await page.goto(`${rebound}/`);
    assert.equal(landing.status(), 403);
    const tries = await page.evaluate(async () => {
      const pause = await fetch("/control/pause", { method: "POST" });
      const status = await fetch("/status");
      return [pause.status, status.status, (await status.json()).error];
    });
    assert.deepEqual(tries.slice(0, 2), [403, 403]);
    assert.match(tries[2], /not a loopback name/);

    const s = (await getJSON(`${daemon.base}/status`)).body;
    assert.equal(s.paused, false, "paused by another page");
    assert.equal(s.target_rate, 100, "retuned by another page");
    await page.close();
  } finally {
    foreign.close();
    const code = await daemon.stop();
    assert.equal(code, 0, `cqlpulse exit status on SIGTERM\n${daemon.output()}`);
  }
});
