// What the browser tests share: a cqlpulse daemon on the real node (a spec of its own, a
// keyspace of its own, dropped afterwards), headless Debian Chromium, and console-error capture.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const OUT = join(ROOT, "target", "browser");
const BIN = process.env.CQLPULSE_BIN ?? join(ROOT, "target", "debug", "cqlpulse");
const CHROMIUM = process.env.CQLPULSE_CHROMIUM ?? "/usr/bin/chromium";
// A host name the browser resolves to 127.0.0.1 (see launchBrowser).
export const REBOUND = "rebound.example";

export function spec({ keyspace, rate, listen }) {
  return `name = "live-page"
seed = 7

[cluster]
contact_points = ["127.0.0.1:9042"]
consistency = "one"

[schema]
keyspace = "${keyspace}"
mode = "recreate"
statements = ["CREATE TABLE IF NOT EXISTS kv (key bigint PRIMARY KEY, value text)"]

[data.key]
kind = "uniform"
min = 0
max = 10000

[data.value]
kind = "text"
size = 100

[[ops]]
name = "insert"
cql = "INSERT INTO kv (key, value) VALUES (?, ?)"
args = ["key", "value"]
weight = 3.0

[[ops]]
name = "read"
cql = "SELECT value FROM kv WHERE key = ?"
args = ["key"]

[load]
model = "chains"
chains = 8
max_in_flight = 64
rate = ${rate}

[metrics]
listen = "${listen}"
`;
}

// Starts `cqlpulse run` and resolves once /readyz says ready; fails with the daemon's own
// output when it exits first (no node, bad spec) or is not ready within a minute.
export async function startDaemon({ name, port, rate = 200, env = {} }) {
  mkdirSync(OUT, { recursive: true });
  const keyspace = `t_page_${name}_${process.pid}`;
  const listen = `127.0.0.1:${port}`;
  const path = join(OUT, `${name}-${process.pid}.toml`);
  writeFileSync(path, spec({ keyspace, rate, listen }));
  // One runtime thread: the least CPU per op beside a node on a small machine (README).
  const child = spawn(BIN, ["run", path, "--log-format", "text", "--threads", "1"], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => { output += d; });
  child.stderr.on("data", (d) => { output += d; });
  const exited = new Promise((res) => child.on("exit", (code, signal) => res({ code, signal })));
  const base = `http://${listen}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 200))]);
    if (done) throw new Error(`cqlpulse exited (${JSON.stringify(done)}) before it was ready:\n${output}`);
    try {
      const r = await fetch(`${base}/readyz`);
      if (r.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`cqlpulse not ready on ${base} within 60 s:\n${output}`);
    }
  }
  return {
    base, keyspace, child,
    output: () => output,
    async stop() {
      child.kill("SIGTERM");
      const { code } = await exited;
      dropKeyspace(keyspace);
      return code;
    },
  };
}

function dropKeyspace(keyspace) {
  try {
    execFileSync(join(ROOT, "scripts", "cassandra"), ["query", `DROP KEYSPACE IF EXISTS ${keyspace}`], { stdio: "pipe" });
  } catch (e) {
    console.error(`could not drop keyspace ${keyspace}: ${e.stderr ?? e.message}`);
  }
}

export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "cqlpulse-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 1100 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // DNS rebinding, simulated: a name of the attacker's that resolves to loopback.
      `--host-resolver-rules=MAP ${REBOUND} 127.0.0.1`],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Collects what counts as a failure of the page: uncaught exceptions and console errors.
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push({ text: `uncaught: ${e.message}`, url: "" }));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push({ text: m.text(), url: m.location().url ?? "" });
  });
  // Any request off this daemon would break the page's promise of no network access.
  const foreign = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!["127.0.0.1", "localhost"].includes(u.hostname) && u.protocol !== "data:") foreign.push(r.url());
  });
  return { errors, foreign };
}

export async function getJSON(url, init) {
  const r = await fetch(url, init);
  return { status: r.status, body: await r.json() };
}
