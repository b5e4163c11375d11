// An OpenID Connect provider for the demo's tests: panva/oidc-provider
// (OpenID Certified), in memory, on 127.0.0.1 only.
//
//   node server.mjs   with the settings in the environment:
//
//   OIDC_PORT            port to listen on (127.0.0.1)
//   OIDC_CLIENT_BASE     the demo's base URL, e.g. http://127.0.0.1:5000
//   OIDC_CLIENT_ID       the demo's client id
//   OIDC_CLIENT_SECRET   its secret (client_secret_basic)
//   OIDC_ACCOUNTS        JSON: {"username": {"password": ..., "sub": ...,
//                        "preferred_username": ...}, ...}
//
// The issuer is http://127.0.0.1:<port>. The sign-in page is a minimal one
// of our own that checks the accounts' passwords (the library's
// devInteractions accept any name and no password), and consent is implied:
// the demo is a first-party client. Once listening it prints "ready" on
// stdout.

import http from 'node:http';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const clientBase = process.env.OIDC_CLIENT_BASE;
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}');
const issuer = `http://127.0.0.1:${port}`;

function html(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function accountBySub(sub) {
  return Object.values(accounts).find((account) => account.sub === sub);
}

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [`${clientBase}/login/oidc/callback`],
      post_logout_redirect_uris: [`${clientBase}/login`],
      backchannel_logout_uri: `${clientBase}/backchannel-logout`,
      // Logout tokens name the session (sid), and ID tokens carry it.
      backchannel_logout_session_required: true,
    },
  ],
  async findAccount(ctx, sub) {
    const account = accountBySub(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        const claims = { sub };
        if (account.preferred_username) {
          claims.preferred_username = account.preferred_username;
        }
        return claims;
      },
    };
  },
  claims: { openid: ['sub'], profile: ['preferred_username'] },
  // The profile claims go into the ID token too, where the demo reads them.
  conformIdTokenClaims: false,
  cookies: { keys: [randomBytes(32).toString('hex')] },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  // oidc-provider refuses outgoing requests to special-use addresses
  // (loopback included) against SSRF; the demo under test listens on
  // 127.0.0.1, so its back-channel logout calls must be allowed there.
  fetch(url, options) {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<!DOCTYPE html><title>Error</title><h1>Error</h1>
      <pre id="error">${html(JSON.stringify(out))}</pre>`;
  },
});

provider.on('backchannel.error', (ctx, error, client, accountId, sid) => {
  console.error(`back-channel logout to ${client.clientId} failed: ${error}`);
});
provider.on('server_error', (ctx, error) => {
  console.error(error);
});

function loginPage(uid, error) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Provider sign-in</title></head>
<body>
<h1>Sign in to the identity provider</h1>
${error ? `<p id="error" role="alert">${html(error)}</p>` : ''}
<form method="post" action="/interaction/${html(uid)}">
  <label>Username <input name="login" id="login" autocomplete="username" required autofocus></label>
  <label>Password <input name="password" id="password" type="password" required></label>
  <button type="submit" id="provider-sign-in">Sign in</button>
</form>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

async function grantConsent(details) {
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  return grant.save();
}

// The interaction pages: /interaction/<uid>, GET shows, POST signs in.
async function interaction(req, res) {
  const uid = req.url.split('?')[0].split('/')[2];
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    res.writeHead(400).end('unknown interaction');
    return;
  }
  if (details.prompt.name === 'consent') {
    const consentGrant = await grantConsent(details);
    await provider.interactionFinished(
      req, res, { consent: { grantId: consentGrant } }, { mergeWithLastSubmission: true },
    );
    return;
  }
  if (req.method === 'POST') {
    const form = await readForm(req);
    const account = accounts[form.get('login') || ''];
    if (account && form.get('password') === account.password) {
      await provider.interactionFinished(
        req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false },
      );
      return;
    }
    res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(loginPage(uid, 'Wrong username or password.'));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(loginPage(uid));
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      console.error(error);
      if (!res.headersSent) res.writeHead(400);
      res.end(String(error.message || error));
    });
    return;
  }
  callback(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log('ready');
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
