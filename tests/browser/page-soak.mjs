// Memory with the page open: runs a daemon on the real node with the live page open in
// headless Chromium for a while (10 minutes by default), samples the daemon's resident memory
// every 10 s, and prints the samples and the growth after the first two minutes.
//   node page-soak.mjs [minutes] [port]        (scripts/page-soak runs it)
import { readFileSync } from "node:fs";
import { startDaemon, launchBrowser, watchErrors } from "./daemon.mjs";

const minutes = Number(process.argv[2] ?? 10);
const port = Number(process.argv[3] ?? 19467);
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);

const daemon = await startDaemon({ name: "soak", port, rate: 100 });
const browser = await launchBrowser();
let failed = false;
try {
  const page = await browser.context.newPage();
  const { errors } = watchErrors(page);
  await page.goto(`${daemon.base}/`);
  await page.waitForSelector("#link[data-ok=true]");
  const samples = [];
  const start = Date.now();
  console.log("seconds  daemon_rss_kib  feed_points  issued");
  while (Date.now() - start < minutes * 60_000) {
    const status = await (await fetch(`${daemon.base}/status`)).json();
    const feed = await (await fetch(`${daemon.base}/api/history`)).json();
    const s = { t: Math.round((Date.now() - start) / 1000), rss: rssKiB(daemon.child.pid), points: feed.points.length };
    samples.push(s);
    console.log(`${String(s.t).padStart(7)}  ${String(s.rss).padStart(14)}  ${String(s.points).padStart(11)}  ${status.issued}`);
    await page.waitForTimeout(10_000);
  }
  const after2 = samples.filter((s) => s.t >= 120);
  const base = after2[0] ?? samples[0];
  const last = samples[samples.length - 1];
  const max = Math.max(...samples.map((s) => s.rss));
  console.log(`rss at ${base.t}s: ${base.rss} KiB; at ${last.t}s: ${last.rss} KiB; ` +
    `growth ${last.rss - base.rss} KiB; max ${max} KiB; page errors: ${errors.length}`);
  if (errors.length) { console.log(errors); failed = true; }
} finally {
  await browser.close();
  await daemon.stop();
}
process.exit(failed ? 1 : 0);
