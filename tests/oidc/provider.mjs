// The OpenID provider of the OIDC tests: node's oidc-provider (OpenID
// Certified), on 127.0.0.1:$OIDC_PORT, issuing JWT access tokens by client
// credentials. Each start makes a new RSA signing key (kid $OIDC_KID), so a
// restart on the same port is a key rotation. Clients (secret "secret"):
//   pyzeebe-app     client_secret_basic, audience waggle-api
//   sdk-app         client_secret_post,  audience waggle-api
//   short-lived     client_secret_post,  audience waggle-api, tokens live 1 s
//   other-audience  client_secret_post,  audience other-api
//   no-roles        client_secret_post,  audience waggle-api (the tests make
//                   no admin of it)
// With OIDC_UI_REDIRECTS (redirect URIs, comma-separated), also the public
// client waggle-ui (authorization code with PKCE, audience waggle-api), as
// Operate and Tasklist sign in: the provider's own login page takes any
// user name, and the grant needs no consent. Client credentials tokens carry
// an `app` claim naming their client, which user tokens lack (both carry
// client_id, as RFC 9068 has it).
// Prints "ready <issuer>" once it listens; ends on SIGTERM.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('OIDC_PORT must be a port number');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const kid = process.env.OIDC_KID || randomUUID();
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };

const audiences = {
  'pyzeebe-app': 'waggle-api',
  'sdk-app': 'waggle-api',
  'short-lived': 'waggle-api',
  'other-audience': 'other-api',
  'no-roles': 'waggle-api',
  'waggle-ui': 'waggle-api',
};
const uiRedirects = (process.env.OIDC_UI_REDIRECTS || '').split(',').filter(Boolean);
const uiClients = uiRedirects.length === 0 ? [] : [{
  client_id: 'waggle-ui',
  grant_types: ['authorization_code'],
  redirect_uris: uiRedirects,
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
}];
const client = (id, method) => ({
  client_id: id,
  client_secret: 'secret',
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: method,
});

const provider = new Provider(issuer, {
  clients: [
    client('pyzeebe-app', 'client_secret_basic'),
    client('sdk-app', 'client_secret_post'),
    client('short-lived', 'client_secret_post'),
    client('other-audience', 'client_secret_post'),
    client('no-roles', 'client_secret_post'),
    ...uiClients,
  ],
  jwks: { keys: [signingKey] },
  ttl: { ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? 600 },
  scopes: ['openid', 'api'],
  extraTokenClaims: async (_ctx, token) =>
    (token.kind === 'ClientCredentials' ? { app: token.clientId } : undefined),
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid api');
    grant.addResourceScope('urn:waggle:api', 'api');
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: uiClients.length > 0 },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf ?? 'urn:waggle:api',
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, _resource, c) => ({
        scope: 'api',
        audience: audiences[c.clientId],
        accessTokenTTL: c.clientId === 'short-lived' ? 1 : 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => console.log(`ready ${issuer} kid ${kid}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
