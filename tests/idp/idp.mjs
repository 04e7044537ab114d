// A real OpenID Connect provider for the tests (node `oidc-provider` 9).
//
//   node tests/idp/idp.mjs CONFIG.json
//
// Run from the repository root (node_modules/ resolves from there). Everything
// comes from CONFIG.json, written by tests/harness/idp.py:
//
//   port, issuer                 http://127.0.0.1:PORT, bound to 127.0.0.1 only
//   clients                      [{client_id, client_secret, redirect_uris,
//                                  token_endpoint_auth_method?}] (default client_secret_post;
//                                  oidc-provider 9 takes the credentials in the body or in
//                                  an HTTP Basic header for either of the two)
//   accounts                     {username: {sub?, email?, name?, preferred_username?,
//                                  "wlcg.groups"?, groups?, eduperson_entitlement?}}
//   jwks                         a private JWKS {"keys": [...]}; the first key signs
//   access_token_ttl, refresh_token_ttl, id_token_ttl   seconds
//   rotate_refresh_tokens        (optional, default false: a refresh token stays valid
//                                  when used, as INDIGO IAM's do)
//
// Log in with the built-in development forms (devInteractions): a login form
// (`login` = the username, `password` = anything), then a consent form. A
// username that is not in `accounts` ends the authorization with access_denied.
// The `sub` of an account defaults to its username.
//
// Logs go to stdout; no token, code or secret is ever logged.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

const log = (...args) => console.log(new Date().toISOString(), '[idp]', ...args);

// username -> account, and sub -> username (session accountIds are subs)
const accounts = config.accounts || {};
const subToUser = new Map();
for (const [username, account] of Object.entries(accounts)) {
  subToUser.set(account.sub || username, username);
}

const CLAIMS = [
  'email', 'email_verified', 'name', 'preferred_username',
  'wlcg.groups', 'groups', 'eduperson_entitlement',
];

async function findAccount(ctx, sub) {
  const username = subToUser.get(sub);
  if (username === undefined) {
    return undefined;
  }
  const account = accounts[username];
  return {
    accountId: sub,
    async claims() {
      const claims = { sub };
      for (const name of CLAIMS) {
        if (account[name] !== undefined) {
          claims[name] = account[name];
        }
      }
      if (claims.email !== undefined && claims.email_verified === undefined) {
        claims.email_verified = true;
      }
      return claims;
    },
  };
}

const clients = (config.clients || []).map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  redirect_uris: c.redirect_uris,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_post',
  id_token_signed_response_alg: 'RS256',
}));

const ttl = (seconds, fallback) => (Number.isSafeInteger(seconds) && seconds > 0 ? seconds : fallback);

const provider = new Provider(config.issuer, {
  clients,
  jwks: config.jwks,
  findAccount,
  scopes: ['openid', 'offline_access', 'profile', 'email', 'wlcg.groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups', 'eduperson_entitlement'],
    'wlcg.groups': ['wlcg.groups'],
  },
  // the scope-requested claims go into the ID token too, not only to userinfo
  conformIdTokenClaims: false,
  // a refresh token for every authorization-code login of a client allowed the
  // refresh_token grant (by default only with offline_access, which oidc-provider
  // drops from the request unless it also has prompt=consent; oauthenticator
  // sends no prompt)
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  // refresh tokens outlive the IdP's browser session (offline tokens, as IAM's)
  expiresWithSession: async () => false,
  rotateRefreshToken: () => Boolean(config.rotate_refresh_tokens),
  features: {
    devInteractions: { enabled: true },
    revocation: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
    },
    userinfo: { enabled: true },
  },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  clientBasedCORS: () => false,
  // expired means expired (the default tolerates 15 s of clock skew, which would
  // hide whether the hub really refreshed a short-lived token)
  clockTolerance: 0,
  ttl: {
    AccessToken: ttl(config.access_token_ttl, 3600),
    AuthorizationCode: 60,
    IdToken: ttl(config.id_token_ttl, 3600),
    RefreshToken: ttl(config.refresh_token_ttl, 86400),
    Interaction: 600,
    Session: 86400,
    Grant: 30 * 86400,
  },
});
provider.proxy = false;

// devInteractions log in any `login` typed into its form: map the username to
// the account's sub, and deny the authorization for a username we do not know.
const interactionResult = provider.interactionResult.bind(provider);
provider.interactionResult = async (req, res, result, options) => {
  if (result?.login) {
    const username = result.login.accountId;
    if (Object.hasOwn(accounts, username)) {
      log(`login of ${JSON.stringify(username)}`);
      result = { ...result, login: { ...result.login, accountId: accounts[username].sub || username } };
    } else {
      log(`login of unknown user ${JSON.stringify(username)} denied`);
      result = { error: 'access_denied', error_description: 'unknown user' };
      return interactionResult(req, res, result, { ...options, mergeWithLastSubmission: false });
    }
  }
  return interactionResult(req, res, result, options);
};

// one line per request: method, path without the query string, status
provider.use(async (ctx, next) => {
  await next();
  log(ctx.method, ctx.path, ctx.status);
});

for (const event of [
  'authorization.error', 'grant.error', 'userinfo.error', 'revocation.error',
  'introspection.error', 'end_session.error', 'jwks.error', 'discovery.error',
]) {
  provider.on(event, (ctx, err) => log(event, err.name, err.message, err.error_description || ''));
}
provider.on('server_error', (ctx, err) => log('server_error', err.stack || String(err)));
provider.on('grant.success', (ctx) => log('grant.success', ctx.oidc.params?.grant_type || ''));
provider.on('grant.revoked', () => log('grant.revoked'));

const server = provider.listen(config.port, '127.0.0.1', () => {
  log(`listening on ${config.issuer} (signing key ${config.jwks.keys[0].kid})`);
});

const shutdown = (signal) => {
  log(`${signal}, shutting down`);
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
