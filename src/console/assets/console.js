// The operator console: signs in with a pasted JWT (kept in sessionStorage only), polls
// the console API every two seconds and renders it with textContent only (no HTML from
// the server is ever parsed, so an id cannot inject markup).
'use strict';

const POLL_MS = 2000;
const WEBHOOK_EVERY = 5; // polls between webhook status checks
const MAX_WEBHOOK_TENANTS = 20;
const KEY = 'lms-console-token';

let timer = null;
let polls = 0;
let lastBody = '';
const webhook = new Map(); // tenant -> text shown in its webhook cell

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'onclick') e.addEventListener('click', v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c ?? '—'));
  return e;
}

function say(text) { $('#message').textContent = text || ''; }

async function api(method, path) {
  const token = sessionStorage.getItem(KEY);
  const res = await fetch('/api/v1' + path, {
    method,
    headers: { Authorization: 'Bearer ' + token },
    cache: 'no-store',
  });
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  return { status: res.status, body };
}

function errorText(r) {
  const e = r.body && r.body.error;
  return e ? `${e.code}: ${e.message}` : `HTTP ${r.status}`;
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  clearTimeout(timer);
  timer = null;
  lastBody = '';
  webhook.clear();
  $('#dashboard').hidden = true;
  $('#who').hidden = true;
  $('#sign-in').hidden = false;
  say(message);
}

async function poll() {
  timer = null;
  let r;
  try {
    r = await api('GET', '/console/overview');
  } catch (e) {
    say('The gateway did not answer: ' + e.message);
    schedule();
    return;
  }
  if (r.status === 401 || r.status === 403) {
    signOut('Refused: ' + errorText(r));
    return;
  }
  if (r.status !== 200) {
    say('Overview failed: ' + errorText(r));
    schedule();
    return;
  }
  $('#sign-in').hidden = true;
  $('#dashboard').hidden = false;
  $('#who').hidden = false;
  if ($('#message').dataset.sticky !== '1') say('');
  const unseen = r.body.tenants.filter((t) => !webhook.has(t.tenantId));
  if (polls % WEBHOOK_EVERY === 0) await checkWebhooks(r.body.tenants);
  else if (unseen.length > 0) await checkWebhooks(unseen);
  polls += 1;
  render(r.body);
  schedule();
}

function schedule() {
  if (sessionStorage.getItem(KEY)) timer = setTimeout(poll, POLL_MS);
}

// GET /tenants/{t}/webhook/status per visible tenant (a tenant new to the page at once,
// all of them every few polls): "not configured" on 404 or configured: false, "—" when it
// cannot be read.
async function checkWebhooks(tenants) {
  await Promise.all(tenants.slice(0, MAX_WEBHOOK_TENANTS).map(async (t) => {
    const id = t.tenantId;
    let text = '—';
    try {
      const r = await api('GET', `/tenants/${encodeURIComponent(id)}/webhook/status`);
      if (r.status === 404 || (r.status === 200 && r.body && r.body.configured === false)) {
        text = 'not configured';
      } else if (r.status === 200 && r.body) {
        text = `lag ${Number(r.body.lagSeconds).toFixed(1)} s, ${r.body.pending} pending, ${r.body.deadLetters} dead`;
      }
    } catch { text = '—'; }
    webhook.set(id, text);
  }));
}

function render(o) {
  const viewer = o.viewer.tenantId
    ? `${o.viewer.role} ${o.viewer.userId} of ${o.viewer.tenantId}`
    : `${o.viewer.role} ${o.viewer.userId}`;
  $('[data-testid=viewer]').textContent = viewer;
  $('[data-testid=answering-node]').textContent = o.node;
  $('[data-testid=updated]').textContent = 'updated ' + new Date(o.at).toLocaleTimeString();
  // Re-render only when something changed, so a button is not replaced under a click.
  const body = JSON.stringify({ ...o, at: null, hooks: [...webhook] });
  if (body === lastBody) return;
  lastBody = body;

  $('#partial').hidden = !o.partial;
  $('[data-testid=nodes] tbody').replaceChildren(...o.nodes.map((n) =>
    el('tr', { 'data-node': n.node },
      el('td', {}, n.node),
      el('td', { class: 'status-' + n.status, 'data-testid': 'node-status' }, n.status),
      el('td', {}, n.connections ?? '—'))));

  $('#tenants').replaceChildren(...o.tenants.map(tenantBlock));

  $('[data-testid=refusals] tbody').replaceChildren(...o.refusals.map((r) =>
    el('tr', { 'data-testid': 'refusal' },
      el('td', {}, new Date(r.at).toLocaleTimeString()),
      el('td', {}, r.kind),
      el('td', {}, r.what),
      el('td', {}, r.code),
      el('td', {}, r.client ?? '—'),
      el('td', {}, r.tenant ?? '—'))));
}

function tenantBlock(t) {
  const courses = t.courses.length === 0
    ? el('p', { class: 'muted' }, 'No course rooms on this node.')
    : el('table', { 'data-testid': 'courses' },
      el('thead', {}, el('tr', {}, el('th', {}, 'course'), el('th', {}, 'sockets'),
        el('th', {}, 'instructor sockets'), el('th', {}, 'online'))),
      el('tbody', {}, ...t.courses.map((c) =>
        el('tr', { 'data-course': c.courseId },
          el('td', {}, c.courseId), el('td', {}, c.sockets),
          el('td', {}, c.instructors), el('td', {}, c.online ?? '—')))));
  const users = t.users.length === 0
    ? el('p', { class: 'muted' }, 'No users connected to this node.')
    : el('table', { 'data-testid': 'users' },
      el('thead', {}, el('tr', {}, el('th', {}, 'user'), el('th', {}, 'role'),
        el('th', {}, 'sockets'), el('th', {}, ''))),
      el('tbody', {}, ...t.users.map((u) =>
        el('tr', { 'data-user': u.userId },
          el('td', {}, u.userId), el('td', {}, u.role), el('td', {}, u.sockets),
          el('td', {}, el('button', {
            type: 'button',
            'data-testid': 'kick',
            onclick: () => kick(t.tenantId, u.userId),
          }, 'Kick'))))));
  return el('div', { class: 'tenant', 'data-tenant': t.tenantId },
    el('h3', {}, 'Tenant ', el('span', { 'data-testid': 'tenant-id' }, t.tenantId)),
    el('p', {},
      'connections: ', el('strong', { 'data-testid': 'tenant-connections' }, t.connections),
      ' · online users: ', el('span', { 'data-testid': 'tenant-online' }, t.online ?? '—'),
      ' · webhook: ', el('span', { 'data-testid': 'webhook' }, webhook.get(t.tenantId) ?? '—')),
    el('h3', {}, 'Courses'), courses,
    el('h3', {}, 'Users', t.usersTruncated ? ' (busiest shown)' : ''), users);
}

async function kick(tenant, user) {
  const r = await api('DELETE',
    `/console/tenants/${encodeURIComponent(tenant)}/users/${encodeURIComponent(user)}/sockets`);
  if (r.status === 200) {
    say(`Kicked ${user} of ${tenant}: ${r.body.disconnected} socket(s) disconnected.`);
  } else {
    say(`Kick of ${user} failed: ${errorText(r)}`);
  }
  $('#message').dataset.sticky = '1';
  setTimeout(() => { $('#message').dataset.sticky = ''; }, 5000);
}

document.addEventListener('DOMContentLoaded', () => {
  $('#sign-in-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const token = $('#token').value.trim();
    if (!token) { say('Paste a token first.'); return; }
    sessionStorage.setItem(KEY, token);
    $('#token').value = '';
    polls = 0;
    say('Signing in…');
    clearTimeout(timer);
    poll();
  });
  $('#sign-out').addEventListener('click', () => signOut('Signed out.'));
  if (sessionStorage.getItem(KEY)) poll();
});
