// Process and polling helpers for the end-to-end test: the real `dragoman` server and `dragoman-bot`
// participants as child processes, bounded waits, and `/metrics` scraping. Everything runs on 127.0.0.1.
/* global fetch, AbortSignal */
import { execFileSync, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { join } from "node:path";

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
