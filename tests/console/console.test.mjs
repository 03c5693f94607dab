// The operator console in a real browser: Debian's chromium, headless, driven by
// playwright-core, against the built gateway binary (one node, in-memory store) with
// real socket.io-client sockets. Run with ./run.sh (LMS_BIN overrides the binary).

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.resolve(HERE, process.env.LMS_BIN ?? '../../target/debug/lms-realtime');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const SECRET = 'console-' + randomBytes(16).toString('hex');
const NODE_ID = 'console-node1';
/** A live change must show within a few polls (the page polls every 2 s). */
const LIVE_MS = 8000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sign(claims) {
  const now = Math.floor(Date.now() / 1000);
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ iat: now, exp: now + 3600, ...claims })}`;
  return `${input}.${createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

const tokens = {
  superAdmin: sign({ sub: 'root', role: 'super_admin' }),
  acmeAdmin: sign({ sub: 'boss', tenantId: 'acme', role: 'admin' }),
  acmeService: sign({ sub: 'lms', tenantId: 'acme', role: 'service' }),
  student: sign({ sub: 'u1', tenantId: 'acme', role: 'student' }),
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

let gateway; // { child, url, log }
let browser;
const sockets = new Set();

async function startGateway() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lms-console-'));
  const log = path.join(dir, 'gateway.log');
  const fd = openSync(log, 'a');
  const child = spawn(BIN, [], {
    stdio: ['ignore', fd, fd],
    env: {
      PATH: process.env.PATH,
      JWT_SECRET: SECRET,
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ID,
      RUST_LOG: process.env.CONSOLE_RUST_LOG ?? 'warn',
      DRAIN_TIMEOUT_SECS: '1',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`gateway exited: ${readFileSync(log, 'utf8')}`);
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return { child, url, log };
    } catch { /* not listening yet */ }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('gateway not ready in 20 s');
}

async function api(method, p, token, body) {
  const res = await fetch(gateway.url + p, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => null), headers: res.headers };
}

/** A connected socket of `sub` in `tenant`, or the connect_error it got. */
function connect(claims, { raw } = {}) {
  const s = io(gateway.url, {
    auth: { token: raw ?? sign(claims) },
    transports: ['websocket'],
    reconnection: false,
  });
  sockets.add(s);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no connect answer')), 5000);
    s.once('connect', () => { clearTimeout(t); resolve({ socket: s }); });
    s.once('connect_error', (err) => { clearTimeout(t); resolve({ socket: s, error: err.message }); });
  });
}

async function signIn(token) {
  const page = await browser.newPage();
  await page.goto(`${gateway.url}/console`);
  await page.fill('#token', token);
  await page.click('#sign-in-button');
  return page;
}

/** Waits until the element's text equals `want` (the page updates itself). */
async function textIs(page, selector, want, timeout = LIVE_MS) {
  try {
    await page.waitForFunction(
      ([sel, w]) => document.querySelector(sel)?.textContent === w,
      [selector, want],
      { timeout, polling: 100 },
    );
  } catch (e) {
    const got = await page.locator(selector).first().textContent().catch(() => '(absent)');
    throw new Error(`${selector}: wanted ${JSON.stringify(want)}, page shows ${JSON.stringify(got)}`, { cause: e });
  }
}

before(async () => {
  gateway = await startGateway();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  for (const s of sockets) s.disconnect();
  await browser?.close();
  if (gateway && gateway.child.exitCode === null) {
    gateway.child.kill('SIGTERM');
    await Promise.race([new Promise((r) => gateway.child.once('exit', r)), sleep(3000)]);
    if (gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
  }
});

describe('operator console', () => {
  test('the page is embedded and served with a strict CSP', async () => {
    for (const p of ['/console', '/console/console.js', '/console/console.css']) {
      const res = await fetch(gateway.url + p);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/, p);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', p);
    }
    assert.equal((await fetch(gateway.url + '/console/nope.js')).status, 404);
  });

  test('a super admin sees the node, live connection counts, courses, refusals, and kicks a user', async () => {
    const put = await api('PUT', '/api/v1/tenants/acme/courses/c1/members/u1', tokens.acmeService, { role: 'student' });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const page = await signIn(tokens.superAdmin);
    await textIs(page, '[data-testid=viewer]', 'super_admin root');
    await textIs(page, `[data-node="${NODE_ID}"] [data-testid=node-status]`, 'ready');

    const first = await connect({ sub: 'u1', tenantId: 'acme', role: 'student' });
    assert.equal(first.error, undefined);
    const acme = '[data-tenant="acme"]';
    await textIs(page, `${acme} [data-testid=tenant-connections]`, '1');
    await textIs(page, `${acme} [data-course="c1"] td:nth-child(2)`, '1');
    await textIs(page, `${acme} [data-course="c1"] td:nth-child(4)`, '1'); // presence
    await textIs(page, `${acme} [data-testid=webhook]`, 'not configured');

    const second = await connect({ sub: 'u1', tenantId: 'acme', role: 'student' });
    assert.equal(second.error, undefined);
    await textIs(page, `${acme} [data-testid=tenant-connections]`, '2');
    await textIs(page, `${acme} [data-user="u1"] td:nth-child(3)`, '2');

    const refused = await connect(null, { raw: 'not-a-jwt' });
    assert.equal(refused.error, 'INVALID_TOKEN');
    await textIs(page, '[data-testid=refusal] td:nth-child(2)', 'auth_failed');
    await textIs(page, '[data-testid=refusal] td:nth-child(3)', 'connect');
    await textIs(page, '[data-testid=refusal] td:nth-child(4)', 'INVALID_TOKEN');
    await textIs(page, '[data-testid=refusal] td:nth-child(5)', '127.0.0.1');
    assert.ok(!(await page.content()).includes('not-a-jwt'), 'the page never shows a token');

    // A webhook whose receiver is down: the student's progress waits, and the console
    // shows it pending with its lag.
    const hook = await api('PUT', '/api/v1/tenants/acme/webhook', tokens.acmeService,
      { url: 'http://127.0.0.1:9/hooks', secret: 'console-test-secret-0123456789', events: ['progress'] });
    assert.equal(hook.status, 200, JSON.stringify(hook.body));
    const ack = await first.socket.timeout(5000).emitWithAck('progress:content',
      { courseId: 'c1', contentId: 'l1', progress: 0.5, completed: false });
    assert.equal(ack?.error, undefined, JSON.stringify(ack));
    await page.waitForFunction(
      () => /^lag \d+\.\d s, 1 pending, 0 dead$/.test(
        document.querySelector('[data-tenant="acme"] [data-testid=webhook]')?.textContent ?? ''),
      null, { timeout: 20_000 });

    const gone = Promise.all([first, second].map(({ socket }) =>
      new Promise((r) => socket.once('disconnect', r))));
    await page.click(`${acme} [data-user="u1"] [data-testid=kick]`);
    const reasons = await Promise.race([gone, sleep(5000).then(() => 'timeout')]);
    assert.deepEqual(reasons, ['io server disconnect', 'io server disconnect']);
    await textIs(page, '[data-testid=message]', 'Kicked u1 of acme: 2 socket(s) disconnected.');
    await page.waitForSelector(acme, { state: 'detached', timeout: LIVE_MS });
    await page.close();
  });

  test('a tenant admin sees only its own tenant and can kick only there', async () => {
    const mine = await connect({ sub: 'a1', tenantId: 'acme', role: 'student' });
    const theirs = await connect({ sub: 'g1', tenantId: 'globex', role: 'student' });
    assert.equal(mine.error, undefined);
    assert.equal(theirs.error, undefined);
    const page = await signIn(tokens.acmeAdmin);
    await textIs(page, '[data-testid=viewer]', 'admin boss of acme');
    await textIs(page, '[data-tenant="acme"] [data-testid=tenant-connections]', '1');
    const tenants = await page.locator('[data-testid=tenant-id]').allTextContents();
    assert.deepEqual(tenants, ['acme']);
    assert.equal(await page.locator('[data-tenant="globex"]').count(), 0);
    // Platform figures stay with the super admin.
    assert.equal(await page.locator(`[data-node="${NODE_ID}"] td:nth-child(3)`).textContent(), '—');

    const across = await api('DELETE', '/api/v1/console/tenants/globex/users/g1/sockets', tokens.acmeAdmin);
    assert.equal(across.status, 403);
    assert.equal(across.body.error.code, 'TENANT_MISMATCH');
    assert.ok(theirs.socket.connected, 'the other tenant\'s socket is untouched');
    const overview = await api('GET', '/api/v1/console/overview', tokens.acmeAdmin);
    assert.ok(overview.body.refusals.length >= 1);
    assert.ok(overview.body.refusals.every((r) => r.tenant === 'acme'), JSON.stringify(overview.body.refusals));

    await page.click('[data-tenant="acme"] [data-user="a1"] [data-testid=kick]');
    await textIs(page, '[data-testid=message]', 'Kicked a1 of acme: 1 socket(s) disconnected.');
    await page.close();
  });

  test('a student token is refused and the dashboard stays hidden', async () => {
    const page = await signIn(tokens.student);
    await textIs(page, '[data-testid=message]',
      'Refused: FORBIDDEN: the console needs a super_admin or tenant admin token');
    assert.equal(await page.locator('#dashboard').isHidden(), true);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    const direct = await api('GET', '/api/v1/console/overview', tokens.student);
    assert.equal(direct.status, 403);
    await page.close();
  });
});
