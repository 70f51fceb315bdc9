// Process and polling helpers for the end-to-end tests: the real `dragoman` server and `dragoman-bot`
// participants as child processes, bounded waits, `/metrics` scraping, and `Scenario`, the frame every
// test runs in (work dir, processes, browser, watchdog, teardown, steps, artifacts). Everything runs on
// 127.0.0.1.
/* global fetch, AbortSignal */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { launchChromium, newPage } from "./browser.mjs";

/** The repository root (web/e2e/../..). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Where the tests leave screenshots, logs and measurements: `artifacts/e2e/` in the repository. */
export const ARTIFACTS = join(REPO_ROOT, "artifacts", "e2e");

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `every` ms until it returns a value other than undefined/false; throws after `timeoutMs`. */
export async function waitUntil(what, timeoutMs, probe, every = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last !== undefined && last !== false) return last;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(every);
  }
}

/** Rejects after `ms` unless `promise` settles first. */
export function withTimeout(what, ms, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Child processes of one test run. Output goes line by line to `onLine` and to a log file; `killAll`
 * (for `finally`) SIGKILLs whatever is still running. A process 'exit' hook does the same in case the
 * test runner itself is torn down before `finally` runs.
 */
export class Processes {
  constructor(logDir) {
    this.logDir = logDir;
    this.children = new Set();
    this.exitHook = () => {
      for (const child of this.children) child.kill("SIGKILL");
    };
    process.on("exit", this.exitHook);
  }

  start(label, command, args, { cwd, onLine } = {}) {
    const child = spawn(command, args, {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    this.children.add(child);
    child.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.children.delete(child);
        resolve({ code, signal });
      });
      child.on("error", (error) => {
        this.children.delete(child);
        resolve({ code: null, signal: null, error });
      });
    });
    const log = createWriteStream(join(this.logDir, `${label}.log`));
    let buffer = "";
    const feed = (data) => {
      log.write(data);
      buffer += data;
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        onLine?.(line);
      }
    };
    child.stdout.on("data", feed);
    child.stderr.on("data", feed);
    child.on("exit", () => log.end());
    return child;
  }

  /** Sends `signal`, waits up to `ms` for the exit, then SIGKILLs. */
  async stop(child, signal = "SIGTERM", ms = 5000) {
    if (child.exitCode !== null || child.signalCode !== null) return child.exited;
    child.kill(signal);
    try {
      return await withTimeout(`process ${child.pid} to exit`, ms, child.exited);
    } catch {
      child.kill("SIGKILL");
      return withTimeout(`process ${child.pid} to exit after SIGKILL`, 2000, child.exited);
    }
  }

  async killAll() {
    await Promise.allSettled([...this.children].map((child) => this.stop(child, "SIGTERM", 3000)));
    process.off("exit", this.exitHook);
  }
}

export function binaries(repoRoot) {
  const dir = process.env.DRAGOMAN_BIN_DIR ?? join(repoRoot, "target", "debug");
  const bins = { dragoman: join(dir, "dragoman"), bot: join(dir, "dragoman-bot") };
  for (const path of Object.values(bins)) {
    if (!existsSync(path)) {
      throw new Error(`${path} is missing: run \`cargo build --bin dragoman --bin dragoman-bot\` first`);
    }
  }
  return bins;
}

/** A join token from `dragoman token`; `mode` (`consecutive` / `simultaneous`) is optional. */
export function mintToken(bin, secret, call, { id, role, name, languages, mode }) {
  const args = ["token", "--secret", secret, "--call", call, "--identity", id, "--role", role, "--name", name, "--languages", languages];
  if (mode !== undefined) args.push("--mode", mode);
  return execFileSync(bin, args, { encoding: "utf8", timeout: 10_000 }).trim();
}

/**
 * Starts `dragoman serve` on ephemeral 127.0.0.1 ports and resolves once it printed
 * `dragoman ready: http=ADDR media=ADDR`. `lines` collects everything it logs; `extraArgs` are
 * appended to the command line (e.g. `--history FILE`).
 */
export async function startServer(processes, bin, { secret, configPath, cwd, extraArgs = [] }) {
  const lines = [];
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  const child = processes.start(
    "server",
    bin,
    ["serve", "--config", configPath, "--http", "127.0.0.1:0", "--media", "127.0.0.1:0", "--secret", secret, ...extraArgs],
    {
      cwd,
      onLine: (line) => {
        lines.push(line);
        const m = /dragoman ready: http=(\S+) media=(\S+)/.exec(line);
        if (m) onReady({ http: m[1], media: m[2] });
      },
    },
  );
  const exited = child.exited.then(({ code, signal }) => {
    throw new Error(`dragoman serve exited before it was ready (code ${code}, signal ${signal}):\n${lines.join("\n")}`);
  });
  const addresses = await withTimeout("dragoman serve to print its ready line", 15_000, Promise.race([ready, exited]));
  exited.catch(() => {}); // later exits are the test's business (metrics scrapes fail)
  return { child, lines, ...addresses };
}

/** `/metrics` as a map from series (`name` or `name{labels}`) to value. */
export async function scrapeMetrics(http) {
  const response = await fetch(`http://${http}/metrics`, { signal: AbortSignal.timeout(3000) });
  if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
  const series = new Map();
  for (const line of (await response.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}

export async function metric(http, name) {
  const value = (await scrapeMetrics(http)).get(name);
  if (value === undefined) throw new Error(`/metrics has no series ${name}`);
  return value;
}

/**
 * One end-to-end test's frame, made by `runScenario`: it owns
 * - the artifacts: `wipeArtifacts` empties all of `artifacts/e2e/` (the call test, which runs first);
 *   otherwise only `logDir` (a subdirectory) and `ownFiles` plus the measurements file are replaced,
 *   since the tests share the directory;
 * - `work`, a temporary directory (the server's and bots' working directory and config), removed at
 *   the end;
 * - `processes` (logs to `logDir`, default `artifacts/e2e/` itself), the server, the bots and the browser;
 * - a watchdog that tears everything down after `watchdogMs`, so whatever the test awaits fails fast;
 * - `measured`, written as JSON to `artifacts/e2e/<measurements>` at the end, pass or fail
 *   (`beforeWrite(scenario)` may add to it after teardown);
 * - `pageProblems`, for the pages' uncaught errors (the test decides what goes in and asserts on it);
 * - `step(name, fn)`, a subtest that is skipped once an earlier step failed.
 */
export class Scenario {
  constructor(t, { watchdogMs, workPrefix, measurements, logDir, wipeArtifacts = false, ownFiles = [], beforeWrite }) {
    this.t = t;
    this.logDir = logDir === undefined ? ARTIFACTS : join(ARTIFACTS, logDir);
    this.measurementsPath = join(ARTIFACTS, measurements);
    this.beforeWrite = beforeWrite;
    if (wipeArtifacts) {
      rmSync(ARTIFACTS, { recursive: true, force: true });
      mkdirSync(ARTIFACTS, { recursive: true });
    } else {
      mkdirSync(ARTIFACTS, { recursive: true });
      if (logDir !== undefined) {
        rmSync(this.logDir, { recursive: true, force: true });
        mkdirSync(this.logDir, { recursive: true });
      }
      for (const file of [...ownFiles, measurements]) rmSync(join(ARTIFACTS, file), { force: true });
    }
    this.work = mkdtempSync(join(tmpdir(), workPrefix));
    this.processes = new Processes(this.logDir);
    this.measured = {};
    this.pageProblems = [];
    this.began = Date.now();
    this.browser = null;
    this.server = null;
    this.bin = null;
    this.tornDown = false;
    this.broken = null;
    // Closing the browser and killing the processes makes whatever the test is awaiting fail fast.
    this.watchdog = setTimeout(() => {
      t.diagnostic(`watchdog: still running after ${watchdogMs} ms, tearing down`);
      void this.teardown();
    }, watchdogMs);
  }

  /** A subtest of the scenario's test; once one step failed, the later ones are skipped. */
  step = (name, fn) =>
    this.t.test(name, async (st) => {
      if (this.broken !== null) {
        st.skip(`"${this.broken}" failed`);
        return;
      }
      try {
        await fn(st);
      } catch (e) {
        this.broken = name;
        throw e;
      }
    });

  /** Closes the browser and stops every process (once; also the watchdog's action). */
  async teardown() {
    if (this.tornDown) return;
    this.tornDown = true;
    if (this.browser !== null) await withTimeout("chromium to close", 15_000, this.browser.close()).catch(() => {});
    await this.processes.killAll();
  }

  /** The end of the test (pass or fail): teardown, then the measurements file, then the work dir goes. */
  async finish() {
    clearTimeout(this.watchdog);
    await this.teardown();
    this.beforeWrite?.(this);
    writeFileSync(this.measurementsPath, `${JSON.stringify(this.measured, null, 2)}\n`);
    rmSync(this.work, { recursive: true, force: true });
  }

  /**
   * Starts `dragoman serve` (see `startServer`) with a fresh token secret and a config in the work dir:
   * a random `operator_api_key` followed by `config` (more TOML lines). The server's working
   * directory is the work dir, so nothing it might write lands in the repo. Resolves to
   * `{ http, media, lines, child, secret, operatorKey }` (also `this.server`).
   */
  async startServer({ config = "", extraArgs = [] } = {}) {
    this.bin = binaries(REPO_ROOT);
    const secret = randomBytes(16).toString("hex");
    const operatorKey = randomBytes(16).toString("hex");
    const configPath = join(this.work, "dragoman.toml");
    writeFileSync(configPath, `operator_api_key = "${operatorKey}"\n${config}`);
    const server = await startServer(this.processes, this.bin.dragoman, { secret, configPath, cwd: this.work, extraArgs });
    assert.match(server.http, /^127\.0\.0\.1:\d+$/);
    this.server = { ...server, secret, operatorKey };
    return this.server;
  }

  /** A join token for `person` (`{ id, role, name, languages, mode? }`) in `call`, signed by the running server's secret. */
  token(call, person) {
    return mintToken(this.bin.dragoman, this.server.secret, call, person);
  }

  /**
   * Asserts the server serves its built page at `path` (it loads the module `script`): the binary
   * embeds the client built by build.rs, and when that build failed it serves an error page instead.
   */
  async assertServesPage(path, script, what) {
    const page = await (await fetch(`http://${this.server.http}${path}`, { signal: AbortSignal.timeout(3_000) })).text();
    const tag = new RegExp(`<script type="module" src="${script.replaceAll(".", "\\.")}">`);
    assert.match(page, tag, `the server serves the built ${what} at ${path}, not:\n${page.slice(0, 400)}`);
  }

  /**
   * Starts a `dragoman-bot` joining the running server with `token`, bound to 127.0.0.1, in the work
   * dir; its output goes to `<logDir>/<label>.log`, its JSON report to `report` (default
   * `<logDir>/<label>.report.json`). `publish`, `subscribe` and `duration` are the bot's options of
   * the same names; `channel` is the audio's language channel (omitted: the bot's default, the
   * floor); `extraArgs` are appended. Returns the child process (see `Processes.start`).
   */
  startBot(label, { token, publish, subscribe, duration, channel, report = join(this.logDir, `${label}.report.json`), extraArgs = [] }) {
    const args = [
      "--url", `ws://${this.server.http}/v1/signal`,
      "--token", token,
      "--publish", publish,
      "--subscribe", subscribe,
      "--duration", duration,
      "--bind", "127.0.0.1",
    ];
    if (channel !== undefined) args.push("--channel", channel);
    args.push("--report", report, ...extraArgs);
    return this.processes.start(label, this.bin.bot, args, { cwd: this.work });
  }

  /** Launches headless Chromium (closed by the teardown). */
  async launchBrowser() {
    this.browser = await launchChromium();
    return this.browser;
  }

  /** A new page in its own browser context (see `newPage` in browser.mjs). */
  newPage(options) {
    return newPage(this.browser, options);
  }
}

/**
 * Runs `body(scenario)` in a new `Scenario` (options: see there) for the `node:test` context `t`, and
 * finishes it whatever happens.
 */
export async function runScenario(t, options, body) {
  const scenario = new Scenario(t, options);
  try {
    await body(scenario);
  } finally {
    await scenario.finish();
  }
}
