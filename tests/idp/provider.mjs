// Builds one oidc-provider instance (IAM- or Check-in-shaped) from a provider spec and its state.
import Provider, { errors } from 'oidc-provider';

import { adapterFactory } from './adapter.mjs';
import { errorPage } from './pages.mjs';

// Scope -> claims. Which of these claims lands in the ID token and which in userinfo is decided
// by the user records (users.json: `id_token` and `userinfo`), see findAccount below.
export const CLAIMS = {
  openid: ['sub'],
  profile: [
    'name', 'given_name', 'family_name', 'preferred_username', 'updated_at', 'groups',
    'organisation_name', 'eduperson_assurance',
  ],
  email: ['email', 'email_verified'],
  'wlcg.groups': ['wlcg.groups', 'wlcg.ver'],
  eduperson_entitlement: ['eduperson_entitlement', 'entitlements'],
  voperson_id: ['voperson_id'],
};

const TTL = {
  AccessToken: 3600,
  AuthorizationCode: 60,
  IdToken: 3600,
  RefreshToken: 14 * 24 * 3600,
  Interaction: 600,
  Session: 24 * 3600,
  Grant: 14 * 24 * 3600,
};

// Endpoint paths as the real services publish them (relative to the provider's mount).
export const ROUTES = {
  iam: {
    authorization: '/authorize', token: '/token', userinfo: '/userinfo', jwks: '/jwk',
    revocation: '/revoke', introspection: '/introspect', end_session: '/logout',
  },
  keycloak: {
    authorization: '/protocol/openid-connect/auth',
    token: '/protocol/openid-connect/token',
    userinfo: '/protocol/openid-connect/userinfo',
    jwks: '/protocol/openid-connect/certs',
    revocation: '/protocol/openid-connect/revoke',
    introspection: '/protocol/openid-connect/token/introspect',
    end_session: '/protocol/openid-connect/logout',
  },
};

export function flavourOf(spec) {
  return spec.flavour ?? (spec.name === 'iam' ? 'iam' : 'keycloak');
}

export function mountPrefix(mount) {
  return mount === '/' ? '' : mount.replace(/\/+$/, '');
}

function clientMetadata(client) {
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
    grant_types: client.grant_types ?? ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    ...(client.scope ? { scope: client.scope } : {}),
  };
}

// oidc-provider follows OIDC Core 11 literally and drops `offline_access` from an authorization
// request unless it also carries prompt=consent (actions/authorization/scopes.js). IAM and Check-in
// issue refresh tokens for `offline_access` alone, so put the scope back when the original request
// asked for it. The only configurable code that runs on every authorization request after that
// check is an extraParams validator (called even when the parameter is absent), so we register an
// otherwise unused parameter for it. The restored scope is saved with the interaction, granted and
// put on the authorization code, so the default issueRefreshToken policy then applies.
async function restoreOfflineAccess(ctx) {
  const { oidc } = ctx;
  if (oidc.route !== 'authorization') return;
  const original = (ctx.method === 'POST' ? oidc.body?.scope : ctx.query.scope) ?? '';
  const scopes = new Set(oidc.params.scope?.split(' ') ?? []);
  if (
    original.split(' ').includes('offline_access')
    && !scopes.has('offline_access')
    && oidc.params.response_type?.includes('code')
    && oidc.client.grantTypeAllowed('refresh_token')
  ) {
    oidc.params.scope = [...scopes, 'offline_access'].join(' ');
  }
}

// Skip the consent page: every authorization request is granted all OIDC scopes and claims it asks
// for (the login POST also records consent; this covers single sign-on with an existing session).
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (grant && grant.accountId !== oidc.session.accountId) grant = undefined;
  grant ??= new oidc.provider.Grant({
    clientId: oidc.client.clientId,
    accountId: oidc.session.accountId,
  });
  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  const claims = [...oidc.requestParamClaims ?? []];
  if (claims.length) grant.addOIDCClaims(claims);
  // Audiences (resource indicators, see audienceFeature): grant what was asked of each.
  for (const [indicator, server] of Object.entries(oidc.resourceServers ?? {})) {
    const scope = [...oidc.requestParamScopes].filter((s) => server.scopes.has(s));
    if (scope.length) grant.addResourceScope(indicator, scope.join(' '));
  }
  await grant.save();
  return grant;
}

// ---------------------------------------------------------------------------------------------
// Token audiences, as INDIGO IAM: a token request (authorization_code or refresh_token grant)
// may name an audience (`audience`, `aud` or `resource`; server.mjs turns the first non-empty one
// into an RFC 8707 resource indicator, see audienceToResource); the access token is then a JWT
// with aud=<audience> and a `scope` claim, signed with the provider's key, as IAM issues and
// Rucio accepts. oidc-provider only issues a resource on a refresh when the grant already holds
// it (helpers/resolve_resource.js: model.resourceIndicators.has(resource)), whereas IAM lets any
// client ask for any audience. So every authorization defaults to all configured audiences
// (spec.audiences, default ['rucio']): they are recorded on the code and its refresh token, and
// the grant gets their scopes (loadExistingGrant). A token request WITHOUT an audience still gets
// the opaque, userinfo-capable access token it always did (openid in scope: no resource chosen).
// ---------------------------------------------------------------------------------------------
export const AUDIENCE_URN = 'urn:iris:audience:';
export const DEFAULT_AUDIENCES = ['rucio'];
// Scopes an audience token may carry (filtered by what the refresh token / request holds).
const AUDIENCE_SCOPES = [...Object.keys(CLAIMS), 'offline_access'].join(' ');

// IAM takes any string as audience; a resource indicator must be an absolute URI.
export function audienceToResource(audience) {
  return URL.parse(audience) ? audience : `${AUDIENCE_URN}${encodeURIComponent(audience)}`;
}

function resourceToAudience(resource) {
  return resource.startsWith(AUDIENCE_URN)
    ? decodeURIComponent(resource.slice(AUDIENCE_URN.length))
    : resource;
}

function audienceFeature(spec) {
  const audiences = spec.audiences ?? DEFAULT_AUDIENCES;
  const resources = audiences.map(audienceToResource);
  return {
    enabled: true,
    // Called with `oneOf` when a token request names no resource but the refresh token holds
    // several: issue the plain (opaque) token then, as before audiences existed.
    async defaultResource(ctx, client, oneOf) {
      if (oneOf) return undefined;
      return resources.length ? [...resources] : undefined;
    },
    async useGrantedResource() {
      return false;
    },
    async getResourceServerInfo(ctx, resource) {
      if (!resources.includes(resource)) {
        throw new errors.InvalidTarget(`unknown audience ${JSON.stringify(resourceToAudience(resource))}`);
      }
      return {
        audience: resourceToAudience(resource),
        scope: AUDIENCE_SCOPES,
        accessTokenFormat: 'jwt',
        accessTokenTTL: spec.ttl?.AccessToken ?? TTL.AccessToken,
        jwt: { sign: { alg: 'RS256' } },
      };
    },
  };
}

/**
 * spec: {name, mount, issuer, flavour?: 'iam'|'keycloak', end_session?: bool, ttl?: {AccessToken..}}
 * state: {store, cookieKeys, keys (private JWKs, signing key first), clients, userBySub(sub),
 *         onTokenResponse(body)}
 */
export function buildProvider(spec, state) {
  const prefix = mountPrefix(spec.mount);
  const { name } = spec;
  const flavour = flavourOf(spec);
  const provider = new Provider(spec.issuer, {
    adapter: adapterFactory(state.store),
    clients: state.clients.map(clientMetadata),
    jwks: { keys: state.keys },
    claims: CLAIMS,
    scopes: ['openid', 'offline_access'],
    responseTypes: ['code'],
    extraParams: { _restore_offline_access: restoreOfflineAccess },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    issueRefreshToken: async (ctx, client, code) => (
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access')
    ),
    rotateRefreshToken: spec.rotate_refresh_token ?? false, // spec option: rotate like some IdPs
    loadExistingGrant,
    ttl: { ...TTL, ...spec.ttl },
    cookies: {
      names: {
        session: `_${name}_session`,
        interaction: `_${name}_interaction`,
        resume: `_${name}_resume`,
      },
      keys: state.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    routes: ROUTES[flavour],
    interactions: { url: (ctx, interaction) => `${prefix}/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      resourceIndicators: audienceFeature(spec),
      revocation: { enabled: true },
      introspection: { enabled: true },
      userinfo: { enabled: true },
      // IAM advertises no end_session_endpoint; Check-in (Keycloak) does.
      rpInitiatedLogout: { enabled: spec.end_session ?? flavour !== 'iam' },
    },
    clientBasedCORS: (ctx, origin, client) => (
      client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin)
    ),
    async findAccount(ctx, sub) {
      if (!state.userBySub(sub)) return undefined;
      return {
        accountId: sub,
        // Read the record at call time so that /_test/users changes show up on refresh.
        async claims(use) {
          const user = state.userBySub(sub) ?? {};
          const claims = use === 'id_token' ? user.id_token : user.userinfo;
          return { ...claims, sub };
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = errorPage('Error', `${out.error}: ${out.error_description ?? ''}`);
    },
  });
  provider.use(async (ctx, next) => {
    await next();
    const { body } = ctx;
    if (ctx.oidc?.route === 'token' && ctx.status === 200 && body && typeof body === 'object') {
      state.onTokenResponse(body);
    }
  });
  provider.on('server_error', (ctx, err) => console.error(`[${name}] server_error`, err));
  return provider;
}
