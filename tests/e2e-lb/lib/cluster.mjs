// Starts and stops what the load-balancer test runs against, all on loopback:
// a private redis-server, N gateway nodes and nginx with the SAME http-level config
// that docker-compose uses (deploy/nginx/lms-realtime.conf). Only the two small
// include files (upstream servers, listen) and the main nginx.conf (pid, logs, temp
// paths: things a non-daemon test instance must own) are generated here.
//
// Every child is spawned by this module and killed by its pid in `stop()`; nothing
// is daemonized, so a crashed test leaves nothing behind that `stop()` did not know.

import { spawn, spawnSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync, readFileSync, chmodSync, existsSync, openSync, rmSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(here, "..", "..", "..");
export const NGINX_SHARED_CONF = process.env.LMS_NGINX_CONF || path.join(REPO, "deploy", "nginx", "lms-realtime.conf");

export const JWT_SECRET = "e2e-lb-secret-" + randomBytes(16).toString("hex");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- JWT (HS256)

const b64url = (buf) => Buffer.from(buf).toString("base64url");

export function signJwt(claims, secret = JWT_SECRET) {
  const now = Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ iat: now, exp: now + 3600, ...claims }));
  const sig = createHmac("sha256", secret).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${sig}`;
}

// PROTOCOL section 1 exempts only super_admin from tenantId, so a service token names
// the tenant it acts for.
export const serviceToken = (tenantId) => signJwt({ sub: "e2e-backend", role: "service", tenantId });

// ---------------------------------------------------------------- ports

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

// Ports handed out by this process, so two clusters in one run never collide.
const taken = new Set();

export async function freePort(lo, hi) {
  for (let p = lo; p <= hi; p++) {
    if (taken.has(p)) continue;
    if (await portFree(p)) {
      taken.add(p);
      return p;
    }
  }
  throw new Error(`no free port in ${lo}..${hi}`);
}

// ---------------------------------------------------------------- HTTP

export async function http(method, url, { token, body, timeoutMs = 5000 } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

export async function waitFor(what, fn, { timeoutMs = 20000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

// ---------------------------------------------------------------- the cluster

function gatewayCommand() {
  const target = process.env.LMS_E2E_TARGET || "binary";
  if (target === "baseline") {
    // Development only: the Node baseline (copied out of shared/ and `npm ci`-ed).
    const dir = process.env.LMS_BASELINE_DIR || "/tmp/lms-ops-baseline";
    return { target, cmd: process.execPath, args: [path.join(dir, "server.mjs")], cwd: dir };
  }
  const candidates = process.env.LMS_BIN
    ? [path.resolve(REPO, process.env.LMS_BIN)]
    : [path.join(REPO, "target", "release", "lms-realtime"), path.join(REPO, "target", "debug", "lms-realtime")];
  const bin = candidates.find((c) => existsSync(c));
  if (!bin) {
    throw new Error(`gateway binary not found (tried ${candidates.join(", ")}); build it with cargo build --release or set LMS_BIN`);
  }
  return { target, cmd: bin, args: [], cwd: REPO };
}

// Last resort if the test process dies without running its `after` hooks: no child of
// ours (nginx, nodes, redis-server) outlives it.
const live = new Set();
process.on("exit", () => {
  for (const c of live) if (!c.exitInfo) c.kill("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => process.exit(130));

export class Cluster {
  // embedded: nodes without REDIS_URL (the in-memory single-node mode), no redis-server.
  constructor({ nodes = 3, nginx = true, name = "lb", embedded = false, env = {} } = {}) {
    this.nodeCount = nodes;
    this.extraEnv = env; // settings every node of this cluster gets
    this.embedded = embedded;
    this.withNginx = nginx;
    this.dir = mkdtempSync(`/tmp/lms-ops-${name}-`);
    chmodSync(this.dir, 0o755); // nginx workers drop to `nobody` when run as root
    this.children = new Map(); // name -> ChildProcess
    this.nodes = []; // { id, port, url }
    this.gateway = gatewayCommand();
  }

  log(name) {
    return path.join(this.dir, `${name}.log`);
  }

  spawnChild(name, cmd, args, opts = {}) {
    const fd = openSync(this.log(name), "a");
    const child = spawn(cmd, args, { stdio: ["ignore", fd, fd], ...opts });
    child.exitInfo = null;
    live.add(child);
    child.on("exit", (code, signal) => {
      child.exitInfo = { code, signal };
      live.delete(child);
    });
    this.children.set(name, child);
    return child;
  }

  async start() {
    try {
      if (!this.embedded) await this.startRedis();
      for (let i = 1; i <= this.nodeCount; i++) await this.startNode(`node${i}`);
      await Promise.all(this.nodes.map((n) => this.waitReady(n)));
      if (this.withNginx) await this.startNginx();
    } catch (e) {
      await this.stop();
      throw e;
    }
    return this;
  }

  async startRedis() {
    this.redisPort = await freePort(6410, 6419);
    this.redisUrl = `redis://127.0.0.1:${this.redisPort}`;
    this.spawnRedisProcess();
    await waitFor("redis-server", async () => {
      const r = spawnSync("redis-cli", ["-p", String(this.redisPort), "ping"], { encoding: "utf8" });
      return r.stdout.trim() === "PONG";
    });
  }

  spawnRedisProcess() {
    this.spawnChild("redis", "redis-server", [
      "--port", String(this.redisPort), "--bind", "127.0.0.1",
      "--save", "", "--appendonly", "no", "--dir", this.dir,
    ]);
  }

  async stopRedis() {
    await this.kill("redis", "SIGKILL");
  }

  async restartRedis() {
    this.spawnRedisProcess();
    await waitFor("redis-server restart", async () => {
      const r = spawnSync("redis-cli", ["-p", String(this.redisPort), "ping"], { encoding: "utf8" });
      return r.stdout.trim() === "PONG";
    });
  }

  async startNode(id) {
    const port = await freePort(4200, 4299);
    const { cmd, args, cwd } = this.gateway;
    this.spawnChild(id, cmd, args, {
      cwd,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        PORT: String(port),
        HOST: "127.0.0.1",
        ...(this.embedded ? {} : { REDIS_URL: this.redisUrl }),
        NODE_ID: id,
        JWT_SECRET,
        DRAIN_TIMEOUT_SECS: "2",
        RUST_LOG: process.env.RUST_LOG || "info",
        // To show what a test owes to recovery: LMS_E2E_RECOVERY=false turns it off.
        ...(process.env.LMS_E2E_RECOVERY ? { RECOVERY_ENABLED: process.env.LMS_E2E_RECOVERY } : {}),
        ...this.extraEnv,
      },
    });
    const node = { id, port, url: `http://127.0.0.1:${port}` };
    this.nodes.push(node);
    return node;
  }

  async waitReady(node) {
    await waitFor(`${node.id} /readyz`, async () => {
      const child = this.children.get(node.id);
      if (child.exitInfo) {
        throw new Error(`${node.id} exited ${JSON.stringify(child.exitInfo)}; log:\n${this.tail(node.id)}`);
      }
      return (await http("GET", `${node.url}/readyz`, { timeoutMs: 1000 })).status === 200;
    }, { timeoutMs: 30000, intervalMs: 200 });
  }

  async startNginx() {
    this.lbPort = await freePort(4200, 4299);
    this.lbUrl = `http://127.0.0.1:${this.lbPort}`;
    this.accessLog = path.join(this.dir, "nginx-access.log");
    // The two environment-specific includes, resolved relative to the main conf's dir.
    writeFileSync(path.join(this.dir, "lms-listen.conf"), `listen 127.0.0.1:${this.lbPort};\n`);
    writeFileSync(
      path.join(this.dir, "lms-upstream-servers.conf"),
      this.nodes.map((n) => `server 127.0.0.1:${n.port} max_fails=1 fail_timeout=10s;`).join("\n") + "\n",
    );
    // The access log records which upstream served each request and the affinity
    // cookie, so the test can check stickiness from the balancer's own point of view.
    writeFileSync(path.join(this.dir, "nginx.conf"), `
worker_processes 1;
pid ${this.dir}/nginx.pid;
error_log ${this.dir}/nginx-error.log info;
events { worker_connections 1024; }
http {
    client_body_temp_path ${this.dir}/client_body;
    proxy_temp_path ${this.dir}/proxy;
    fastcgi_temp_path ${this.dir}/fastcgi;
    uwsgi_temp_path ${this.dir}/uwsgi;
    scgi_temp_path ${this.dir}/scgi;
    log_format lb '$upstream_addr|$cookie_lms_lb|$request_method|$request_uri|$status';
    access_log ${this.accessLog} lb;
    include ${NGINX_SHARED_CONF};
}
`);
    const nginxBin = process.env.NGINX_BIN || (existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx");
    const t = spawnSync(nginxBin, ["-t", "-e", path.join(this.dir, "nginx-error.log"), "-p", this.dir + "/", "-c", path.join(this.dir, "nginx.conf")], { encoding: "utf8" });
    if (t.status !== 0) throw new Error(`nginx -t failed:\n${t.stderr}`);
    this.spawnChild("nginx", nginxBin, ["-e", path.join(this.dir, "nginx-error.log"), "-p", this.dir + "/", "-c", path.join(this.dir, "nginx.conf"), "-g", "daemon off;"]);
    await waitFor("nginx", async () => (await http("GET", `${this.lbUrl}/lb-health`, { timeoutMs: 1000 })).status === 200);
  }

  // Parsed nginx access log: [{ upstream, cookie, method, uri, status, sid }]
  accessEntries() {
    if (!existsSync(this.accessLog)) return [];
    return readFileSync(this.accessLog, "utf8").split("\n").filter(Boolean).map((line) => {
      const [upstream, cookie, method, uri, status] = line.split("|");
      const sid = /[?&]sid=([^&]+)/.exec(uri)?.[1];
      return { upstream, cookie, method, uri, status: Number(status), sid: sid && decodeURIComponent(sid) };
    });
  }

  nodeByPort(port) {
    return this.nodes.find((n) => n.port === Number(port));
  }

  tail(name, lines = 30) {
    try {
      return readFileSync(this.log(name), "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  async kill(name, signal = "SIGTERM", timeoutMs = 10000) {
    const child = this.children.get(name);
    if (!child) return;
    this.children.delete(name);
    if (child.exitInfo) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(signal);
    const t = setTimeout(() => child.exitInfo || child.kill("SIGKILL"), timeoutMs);
    await exited;
    clearTimeout(t);
  }

  async stop() {
    // nginx first (clients see the LB go), then nodes, then Redis.
    await this.kill("nginx", "SIGQUIT", 3000);
    await Promise.all(this.nodes.map((n) => this.kill(n.id, "SIGTERM", 5000)));
    await this.kill("redis", "SIGTERM", 3000);
    for (const name of [...this.children.keys()]) await this.kill(name, "SIGKILL");
    // Logs, nginx's access log and configs stay for inspection with LMS_E2E_KEEP=1.
    if (!process.env.LMS_E2E_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}
