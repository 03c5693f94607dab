// Starts and stops what a test file runs against, all on loopback:
// - single mode (default): one lms-realtime node, embedded in-memory store;
// - cluster mode (E2E_MODE=cluster): a private redis-server on a free port (never 6379 or
//   6400-6419) and three nodes with REDIS_URL; clients are spread over the nodes.
//
// Every child is spawned here and killed by its pid in `stop()` (and, as a last resort,
// when the test process exits), so nothing outlives the run.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { JWT_SECRET } from "./jwt.js";

export type Mode = "single" | "cluster";

export const MODE: Mode = process.env.E2E_MODE === "cluster" ? "cluster" : "single";

/** tests/e2e, whether running from src/ (type-check) or dist/ (compiled). */
const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The gateway binary: `LMS_BIN` (relative to tests/e2e), default the debug build. */
export function gatewayBinary(): string {
  const bin = path.resolve(E2E_DIR, process.env.LMS_BIN ?? "../../target/debug/lms-realtime");
  if (!existsSync(bin)) {
    throw new Error(`gateway binary not found at ${bin}: run \`cargo build\` or set LMS_BIN`);
  }
  return bin;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long to wait before concluding that an event did NOT arrive. */
export const QUIET_MS = MODE === "cluster" ? 700 : 300;

/** How long to wait for an event that must arrive. */
export const EVENT_TIMEOUT_MS = 5000;

/** Polls `cond` until it holds; fails naming `what` after `ms`. */
export async function until(what: string, cond: () => boolean, ms = EVENT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------- ports

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** A port the kernel just handed out and released: free unless someone races us. */
function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === "object" ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

const FORBIDDEN_REDIS_PORTS = (p: number): boolean => p === 6379 || (p >= 6400 && p <= 6419);

/** A free port for redis-server: random in 20000-29999, never the shared ones. */
async function redisPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 10000);
    if (!FORBIDDEN_REDIS_PORTS(p) && (await listenable(p))) return p;
  }
  throw new Error("no free port for redis-server");
}

// ---------------------------------------------------------------- children

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

export interface Node {
  id: string;
  port: number;
  url: string;
  child: ChildProcess;
  log: string;
}

/** Thrown from a `waitFor` probe to stop waiting at once (e.g. the process exited). */
class Fatal extends Error {}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = e;
    }
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
}

export interface GatewayOptions {
  /** Extra environment for every node (e.g. PROGRESS_VIDEO_INTERVAL_MS). */
  env?: Record<string, string>;
  /** Variables the nodes must not get (e.g. JWT_SECRET, for a node keyed by a JWKS). */
  unset?: string[];
}

/** The gateway(s) one test file runs against. */
export class Gateway {
  readonly mode: Mode = MODE;
  readonly nodes: Node[] = [];
  readonly dir: string;
  redisUrl?: string;
  private redis?: ChildProcess;
  private readonly bin: string;

  private constructor(private readonly opts: GatewayOptions) {
    this.bin = gatewayBinary();
    this.dir = mkdtempSync(path.join(os.tmpdir(), "lms-e2e-"));
  }

  static async start(opts: GatewayOptions = {}): Promise<Gateway> {
    const gw = new Gateway(opts);
    try {
      if (gw.mode === "cluster") await gw.startRedis();
      const count = gw.mode === "cluster" ? 3 : 1;
      for (let i = 1; i <= count; i++) await gw.startNode(`e2e-node${i}`);
    } catch (e) {
      await gw.stop();
      throw e;
    }
    return gw;
  }

  /** The URL of node `i` (modulo the node count): tests spread clients with it. */
  url(i = 0): string {
    const n = this.nodes[i % this.nodes.length];
    if (!n) throw new Error("no gateway node is running");
    return n.url;
  }

  private spawnChild(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; log: string } {
    const log = path.join(this.dir, `${name}.log`);
    const fd = openSync(log, "a");
    const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], env });
    live.add(child);
    child.on("exit", () => live.delete(child));
    return { child, log };
  }

  private async startRedis(): Promise<void> {
    const port = await redisPort();
    const { child, log } = this.spawnChild(
      "redis",
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir],
      process.env,
    );
    this.redis = child;
    await waitFor("redis-server", async () => {
      if (child.exitCode !== null) throw new Fatal(`redis-server exited: ${tail(log)}`);
      const r = spawnSync("redis-cli", ["-p", String(port), "ping"], { encoding: "utf8" });
      return r.stdout.trim() === "PONG";
    });
    this.redisUrl = `redis://127.0.0.1:${port}`;
  }

  private async startNode(id: string): Promise<void> {
    // The kernel's ephemeral port can be raced between release and the node's bind:
    // retry on a fresh port when the node exits before it is ready.
    for (let attempt = 1; ; attempt++) {
      const port = await ephemeralPort();
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        JWT_SECRET,
        PORT: String(port),
        HOST: "127.0.0.1",
        NODE_ID: id,
        RUST_LOG: process.env.E2E_RUST_LOG ?? "warn",
        DRAIN_TIMEOUT_SECS: "3",
        ...(this.redisUrl ? { REDIS_URL: this.redisUrl } : {}),
        ...this.opts.env,
      };
      for (const name of this.opts.unset ?? []) delete env[name];
      const { child, log } = this.spawnChild(id, this.bin, [], env);
      const url = `http://127.0.0.1:${port}`;
      try {
        await waitFor(`${id} /readyz`, async () => {
          if (child.exitCode !== null) throw new Fatal(`${id} exited with ${child.exitCode}: ${tail(log)}`);
          const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
          return res.status === 200;
        });
      } catch (e) {
        const exited = child.exitCode !== null;
        child.kill("SIGKILL");
        if (exited && attempt < 3 && /cannot listen/.test(tail(log))) continue;
        throw e;
      }
      this.nodes.push({ id, port, url, child, log });
      return;
    }
  }

  /** The last lines every node logged (for failure messages). */
  logs(lines = 30): string {
    return this.nodes.map((n) => `--- ${n.id} ---\n${tail(n.log, lines)}`).join("\n");
  }

  /** Stops every node (SIGTERM, then SIGKILL) and redis-server. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => terminate(n.child, 5000)));
    if (this.redis) await terminate(this.redis, 2000);
    const crashed = this.nodes.filter((n) => n.child.exitCode !== null && n.child.exitCode !== 0);
    if (crashed.length > 0 || process.env.E2E_KEEP_LOGS) {
      process.stderr.write(`gateway logs kept in ${this.dir}\n`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
