// A loopback OpenID Connect provider that plays IRIS IAM and EGI Check-in for tests and the demo.
//
//   node tests/idp/server.mjs <config.json>
//
// Prints `READY <base_url>` on stdout once listening. Several oidc-provider instances share one
// HTTP server and are routed by mount path (longest first). A JSON control API under /_test/ lets
// tests change users, inject failures, substitute ID tokens and rotate signing keys.
//
// Config (JSON): {host, port (0 = any), users_file, providers: [{name, mount, issuer?, jwks?,
//   title?, flavour?: 'iam'|'keycloak', end_session?, ttl?, audiences?}], clients: [{provider, client_id,
//   client_secret, redirect_uris, token_endpoint_auth_method?, strict_auth_method?}]}
// A provider without `issuer` gets <base>/ (root mount) or <base><mount>; issuers are used verbatim,
// so IAM's keeps its trailing slash. A provider without `jwks` gets a fresh RSA key.
// Endpoint paths follow the flavour: IAM (/authorize, /token, /userinfo, /jwk, ...) or Keycloak
// (<mount>/protocol/openid-connect/...). Discovery is <mount>/.well-known/openid-configuration.
// Token requests may name an audience as IAM does (`audience`, `aud` or `resource`, first non-empty
// wins; one of the provider's `audiences`, default ["rucio"]): the access token is then a JWT with
// that `aud` and a `scope` claim (see provider.mjs audienceFeature). `ttl.AccessToken` (seconds)
// sets every access token's lifetime.
//
// Control API (JSON; `provider` is a provider name):
//   POST /_test/users          {provider, user}           upsert a user (by login)
//   POST /_test/next-id-token  {provider, id_token}       replace id_token of the next token response
//   POST /_test/fail           {provider, endpoint, status, delay_ms, count}
//                              endpoint: token|userinfo|discovery|jwks|authorization; status 0 = delay
//   POST /_test/rotate-keys    {provider, jwk?, keep_old?} sign with jwk (generated if absent)
//   GET  /_test/requests?provider=NAME                    request log, oldest first
//   POST /_test/reset          {provider?}                clear failures, queued tokens, logs
// See devstack/idp.py for the Python side.
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { createStore } from './adapter.mjs';
import { errorPage, loginPage } from './pages.mjs';
import {
  ROUTES, audienceToResource, buildProvider, flavourOf, mountPrefix,
} from './provider.mjs';

const ENDPOINTS = ['token', 'userinfo', 'discovery', 'jwks', 'authorization'];
const BODY_LIMIT = 1024 * 1024;

function generateJwk() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(data);
}

function sendHtml(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > BODY_LIMIT) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---------------------------------------------------------------------------------------------
// Per-provider state: users, signing keys, queued ID tokens, injected failures, request log.
// ---------------------------------------------------------------------------------------------
class ProviderState {
  constructor(spec, clients, users) {
    this.spec = spec;
    this.prefix = mountPrefix(spec.mount);
    this.routes = ROUTES[flavourOf(spec)];
    this.clientAuthPaths = new Set(['token', 'revocation', 'introspection'].map((r) => this.routes[r]));
    this.store = createStore();
    this.cookieKeys = [randomBytes(32).toString('base64url')];
    this.keys = spec.jwks?.keys?.length ? spec.jwks.keys : [generateJwk()];
    this.clients = clients;
    this.users = new Map(users.map((u) => [u.login, u]));
    this.idTokenQueue = [];
    this.failures = new Map();
    this.log = [];
    this.rebuild();
  }

  rebuild() {
    this.provider = buildProvider(this.spec, {
      store: this.store,
      cookieKeys: this.cookieKeys,
      keys: this.keys,
      clients: this.clients,
      userBySub: (sub) => [...this.users.values()].find((u) => u.sub === sub),
      onTokenResponse: (body) => {
        if (this.idTokenQueue.length) body.id_token = this.idTokenQueue.shift();
      },
    });
    this.handler = this.provider.callback();
  }

  // oidc-provider accepts client_secret_basic and client_secret_post interchangeably. Be strict
  // (as a client registration is) so tests prove the hub uses the registered method; a client
  // entry with "strict_auth_method": false gets oidc-provider's lenient behaviour.
  authMethodProblem(req, form) {
    const basic = /^basic /i.test(req.headers.authorization ?? '');
    const used = basic ? 'client_secret_basic' : form.client_secret && 'client_secret_post';
    let clientId = form.client_id;
    if (basic) {
      try {
        const userPass = Buffer.from(req.headers.authorization.slice(6), 'base64').toString();
        clientId = decodeURIComponent(userPass.split(':')[0].replace(/\+/g, ' '));
      } catch {
        return null; // malformed: let oidc-provider answer
      }
    }
    const client = this.clients.find((c) => c.client_id === clientId);
    const registered = client?.token_endpoint_auth_method ?? 'client_secret_basic';
    if (!used || !client || client.strict_auth_method === false || used === registered) return null;
    return `client ${clientId} is registered for ${registered}, not ${used}`;
  }

  // The endpoint name of a mount-relative path (routes names, 'discovery', 'resume', 'interaction').
  endpointOf(relPath) {
    if (relPath === '/.well-known/openid-configuration') return 'discovery';
    if (relPath.startsWith('/interaction/')) return 'interaction';
    if (relPath.startsWith(`${this.routes.authorization}/`)) return 'resume';
    const found = Object.entries(this.routes).find(([, route]) => route === relPath);
    return found?.[0] ?? null;
  }

  reset() {
    this.idTokenQueue = [];
    this.failures.clear();
    this.log = [];
  }
}

// ---------------------------------------------------------------------------------------------
// Login interaction pages (replace oidc-provider's devInteractions).
// ---------------------------------------------------------------------------------------------
async function grantEverything(provider, details, accountId) {
  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (grant && grant.accountId !== accountId) grant = undefined;
  grant ??= new provider.Grant({ accountId, clientId: details.params.client_id });
  if (details.params.scope) grant.addOIDCScope(details.params.scope);
  return grant.save();
}

async function handleInteraction(state, req, res, relPath, entry) {
  const match = relPath.match(/^\/interaction\/([^/]+)(?:\/(login|abort))?$/);
  if (!match) return false;
  const [, uid, action] = match;
  const { provider } = state;
  const title = state.spec.title ?? state.spec.name;
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new HttpError(400, 'interaction does not match the cookie');
    const form = {
      title, mount: state.prefix, uid, clientId: details.params.client_id, scope: details.params.scope,
    };
    if (!action && req.method === 'GET' && details.prompt.name === 'consent') {
      // signed in already (prompt=consent): consent is implied, no page
      const grantId = await grantEverything(provider, details, details.session.accountId);
      await provider.interactionFinished(req, res, { consent: { grantId } });
      return true;
    }
    if (!action && req.method === 'GET') {
      sendHtml(res, 200, loginPage(form));
      return true;
    }
    if (req.method !== 'POST' || !action) throw new HttpError(405, 'method not allowed');
    const body = entry.form ?? {};
    if (action === 'abort') {
      await provider.interactionFinished(req, res, {
        error: 'access_denied', error_description: 'End-User aborted interaction',
      }, { mergeWithLastSubmission: false });
      return true;
    }
    const user = state.users.get(body.login ?? '');
    if (!user || user.password !== body.password) {
      sendHtml(res, 200, loginPage({ ...form, login: body.login, error: 'Invalid login' }));
      return true;
    }
    const grantId = await grantEverything(provider, details, user.sub);
    await provider.interactionFinished(req, res, {
      login: { accountId: user.sub },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  } catch (err) {
    const status = err.status ?? 400;
    sendHtml(res, status, errorPage('Login error', `${err.name}: ${err.message}`));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Test control API: /_test/...
// ---------------------------------------------------------------------------------------------
function stateFor(states, name) {
  const state = states.get(name);
  if (!state) throw new HttpError(404, `unknown provider ${JSON.stringify(name)}`);
  return state;
}

async function handleControl(states, req, res, url) {
  const route = `${req.method} ${url.pathname}`;
  if (route === 'GET /_test/requests') {
    sendJson(res, 200, stateFor(states, url.searchParams.get('provider')).log);
    return;
  }
  if (route === 'GET /_test/health') {
    sendJson(res, 200, { ok: true, providers: [...states.keys()] });
    return;
  }
  if (req.method !== 'POST') throw new HttpError(405, 'method not allowed');
  const raw = await readBody(req);
  let body;
  try {
    body = raw ? JSON.parse(raw) : {};
  } catch {
    throw new HttpError(400, 'body must be JSON');
  }
  switch (url.pathname) {
    case '/_test/reset': {
      const targets = body.provider ? [stateFor(states, body.provider)] : [...states.values()];
      targets.forEach((s) => s.reset());
      sendJson(res, 200, { ok: true });
      return;
    }
    case '/_test/users': {
      const state = stateFor(states, body.provider);
      const { user } = body;
      if (!user?.login || !user?.sub) throw new HttpError(400, 'user needs login and sub');
      state.users.set(user.login, { ...user, provider: body.provider });
      sendJson(res, 200, { ok: true });
      return;
    }
    case '/_test/next-id-token': {
      const state = stateFor(states, body.provider);
      if (typeof body.id_token !== 'string') throw new HttpError(400, 'id_token must be a string');
      state.idTokenQueue.push(body.id_token);
      sendJson(res, 200, { ok: true, queued: state.idTokenQueue.length });
      return;
    }
    case '/_test/fail': {
      const state = stateFor(states, body.provider);
      if (!ENDPOINTS.includes(body.endpoint)) {
        throw new HttpError(400, `endpoint must be one of ${ENDPOINTS.join(', ')}`);
      }
      state.failures.set(body.endpoint, {
        status: body.status ?? 502, delayMs: body.delay_ms ?? 0, remaining: body.count ?? 1,
      });
      sendJson(res, 200, { ok: true });
      return;
    }
    case '/_test/rotate-keys': {
      const state = stateFor(states, body.provider);
      const jwk = body.jwk ?? generateJwk();
      if (!jwk.kid || !jwk.d) throw new HttpError(400, 'jwk must be a private key with a kid');
      const previous = state.keys;
      state.keys = body.keep_old ? [jwk, ...previous.filter((k) => k.kid !== jwk.kid)] : [jwk];
      try {
        state.rebuild(); // a new Provider over the same storage: sessions and tokens survive
      } catch (err) {
        state.keys = previous;
        throw new HttpError(400, `invalid jwk: ${err.message}`);
      }
      sendJson(res, 200, { ok: true, kid: jwk.kid, kids: state.keys.map((k) => k.kid) });
      return;
    }
    default:
      throw new HttpError(404, `no control route ${route}`);
  }
}

// IAM takes a token audience as `audience`, `aud` or `resource` (the first non-empty one wins) on
// any grant. oidc-provider knows only RFC 8707 `resource` (an absolute URI, once): rewrite the form
// so it carries exactly that (provider.mjs maps plain audiences to urn:iris:audience:<name>).
// Returns the new body, or null when the request names no audience.
function iamAudienceBody(form) {
  const audience = ['audience', 'aud', 'resource'].map((k) => form[k]).find((v) => v);
  if (!audience) return null;
  const params = new URLSearchParams(form);
  ['audience', 'aud', 'resource'].forEach((k) => params.delete(k));
  params.set('resource', audienceToResource(audience));
  return params.toString();
}

// ---------------------------------------------------------------------------------------------
// Request dispatch
// ---------------------------------------------------------------------------------------------
async function dispatch(states, ordered, req, res) {
  const url = new URL(req.url, 'http://idp.invalid');
  if (url.pathname.startsWith('/_test/')) {
    await handleControl(states, req, res, url);
    return;
  }
  const state = ordered.find(({ prefix }) => (
    prefix === '' || url.pathname === prefix || url.pathname.startsWith(`${prefix}/`)
  ));
  if (!state) {
    sendJson(res, 404, { error: 'not_found' });
    return;
  }
  const relPath = url.pathname.slice(state.prefix.length) || '/';
  const endpoint = state.endpointOf(relPath);
  const entry = {
    method: req.method,
    path: url.pathname,
    endpoint,
    query: Object.fromEntries(url.searchParams),
    form: null,
    authorization: req.headers.authorization ?? null,
    status: null,
    time: new Date().toISOString(),
  };
  state.log.push(entry);
  res.on('finish', () => { entry.status = res.statusCode; });

  const failure = endpoint && state.failures.get(endpoint);
  if (failure && failure.remaining > 0) {
    failure.remaining -= 1;
    if (failure.delayMs > 0) await sleep(failure.delayMs);
    if (failure.status) {
      sendJson(res, failure.status, {
        error: 'temporarily_unavailable', error_description: `injected failure (${endpoint})`,
      });
      return;
    }
  }

  // Read form bodies here (for the log and the auth-method check); oidc-provider then uses req.body.
  const contentType = req.headers['content-type'] ?? '';
  if (req.method === 'POST' && /^application\/x-www-form-urlencoded/i.test(contentType)) {
    req.body = await readBody(req);
    entry.form = Object.fromEntries(new URLSearchParams(req.body));
    const problem = state.clientAuthPaths.has(relPath) && state.authMethodProblem(req, entry.form);
    if (problem) {
      sendJson(res, 401, { error: 'invalid_client', error_description: problem });
      return;
    }
    if (endpoint === 'token') req.body = iamAudienceBody(entry.form) ?? req.body;
  }

  if (await handleInteraction(state, req, res, relPath, entry)) return;

  // Mount the provider: it derives its endpoint URLs from req.baseUrl (see oidc_context urlFor).
  req.baseUrl = state.prefix;
  req.url = relPath + url.search;
  await state.handler(req, res);
}

function loadConfig(file) {
  const config = JSON.parse(readFileSync(file, 'utf8'));
  const usersFile = path.resolve(config.users_file ?? path.join(import.meta.dirname, 'users.json'));
  const users = JSON.parse(readFileSync(usersFile, 'utf8')).users ?? [];
  return { config, users };
}

function main() {
  const configFile = process.argv[2];
  if (!configFile) {
    process.stderr.write('usage: node tests/idp/server.mjs <config.json>\n');
    process.exit(2);
  }
  const { config, users } = loadConfig(configFile);
  const host = config.host ?? '127.0.0.1';
  const states = new Map();
  let ordered = [];

  const server = http.createServer((req, res) => {
    dispatch(states, ordered, req, res).catch((err) => {
      if (!(err instanceof HttpError)) console.error(err);
      if (!res.headersSent) sendJson(res, err.status ?? 500, { error: err.message });
      else res.destroy();
    });
  });

  server.listen(config.port ?? 0, host, () => {
    const { port } = server.address();
    const base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    for (const spec of config.providers) {
      const mount = spec.mount ?? '/';
      // The issuer string is used verbatim (IAM's keeps its trailing slash).
      const issuer = spec.issuer ?? (mount === '/' ? `${base}/` : `${base}${mountPrefix(mount)}`);
      const full = { ...spec, mount, issuer };
      states.set(spec.name, new ProviderState(
        full,
        (config.clients ?? []).filter((c) => (c.provider ?? spec.name) === spec.name),
        users.filter((u) => u.provider === spec.name),
      ));
    }
    ordered = [...states.values()].sort((a, b) => b.prefix.length - a.prefix.length);
    process.stdout.write(`READY ${base}\n`);
  });

  const shutdown = (signal) => {
    process.stderr.write(`received ${signal}, shutting down\n`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main();
