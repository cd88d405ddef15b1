'use strict';
/*
 * openid-client v5 (the release line Okta's agent0 sample uses) against idp0 over https.
 *
 * Run by crates/cli/tests/cli/node.rs with the settings of agent0.env in the environment
 * (OKTA_DOMAIN, OKTA_CLIENT_ID, OKTA_CLIENT_SECRET, OKTA_REDIRECT_URI), a demo login (LOGIN_USERNAME,
 * LOGIN_PASSWORD) and NODE_EXTRA_CA_CERTS naming the local CA: nothing here turns certificate
 * checks off.
 *
 * As the sample does: Issuer.discover('https://' + OKTA_DOMAIN), a client with client_secret_basic,
 * an authorization URL with PKCE (S256) and state; plus a nonce. Then, as a person's browser would,
 * fetch drives idp0's login form (GET it, post back its hidden fields with the username and
 * password, cookies carried by hand) and reads the redirect to the redirect URI without following
 * it; client.callback() redeems the code. The script checks what it can itself and prints one JSON
 * line for the Rust test; any failure exits non-zero with the reason on stderr. No token is printed.
 */

const assert = require('node:assert/strict');
const { Issuer, custom, errors, generators } = require('openid-client');

// openid-client's default is 3.5 s per request; this runs on a loaded two-core CI machine.
custom.setHttpOptionsDefaults({ timeout: 20000 });

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function unescapeHtml(text) {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attribute(tag, name) {
  const match = tag.match(new RegExp(`\\s${name}="([^"]*)"`));
  return match ? unescapeHtml(match[1]) : undefined;
}

/** The first form of a login page: its action (resolved) and its hidden fields. */
function loginForm(html, pageUrl) {
  const form = html.match(/<form\b[^>]*>/);
  assert.ok(form, 'the login page has a form');
  const action = attribute(form[0], 'action');
  assert.ok(action, 'the login form has an action');
  const hidden = [];
  for (const [tag] of html.matchAll(/<input\b[^>]*>/g)) {
    if (attribute(tag, 'type') === 'hidden' && attribute(tag, 'name')) {
      hidden.push([attribute(tag, 'name'), attribute(tag, 'value') ?? '']);
    }
  }
  return { action: new URL(action, pageUrl).href, hidden };
}

/** A cookie jar just big enough for one login: name=value pairs, last one wins. */
class Cookies {
  constructor() {
    this.jar = new Map();
  }

  remember(response) {
    for (const cookie of response.headers.getSetCookie()) {
      const pair = cookie.split(';')[0];
      const at = pair.indexOf('=');
      this.jar.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
    }
  }

  header() {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

async function main() {
  const domain = env('OKTA_DOMAIN');
  const redirectUri = env('OKTA_REDIRECT_URI');
  const clientId = env('OKTA_CLIENT_ID');
  const username = env('LOGIN_USERNAME');

  // Exactly the sample's discovery call.
  const issuer = await Issuer.discover('https://' + domain);
  assert.equal(issuer.issuer, 'https://' + domain, 'the discovered issuer is the https root');
  const client = new issuer.Client({
    client_id: clientId,
    client_secret: env('OKTA_CLIENT_SECRET'),
    redirect_uris: [redirectUri],
    response_types: ['code'],
  });

  const codeVerifier = generators.codeVerifier();
  const state = generators.state();
  const nonce = generators.nonce();
  const authorizationUrl = client.authorizationUrl({
    scope: 'openid profile email',
    code_challenge: generators.codeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    redirect_uri: redirectUri,
  });
  assert.ok(authorizationUrl.startsWith(issuer.authorization_endpoint + '?'), authorizationUrl);

  // The browser's part: the login form over https, the redirect read, not followed.
  const cookies = new Cookies();
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  assert.equal(page.status, 200, `the authorization URL answered ${page.status}, not the login form`);
  cookies.remember(page);
  const form = loginForm(await page.text(), authorizationUrl);
  assert.equal(new URL(form.action).origin, new URL(issuer.issuer).origin, 'the form posts to idp0');
  const posted = await fetch(form.action, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      cookie: cookies.header(),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams([
      ...form.hidden,
      ['username', username],
      ['password', env('LOGIN_PASSWORD')],
    ]),
  });
  const location = posted.headers.get('location');
  assert.ok(
    posted.status >= 300 && posted.status < 400 && location,
    `the login answered ${posted.status} with no redirect`,
  );
  const callbackUrl = new URL(location, form.action).href;
  assert.ok(callbackUrl.startsWith(redirectUri + '?'), `redirected to ${callbackUrl}`);

  // The relying party's part, as the sample's callback handler does it (plus the nonce).
  const params = client.callbackParams(callbackUrl);
  const tokenSet = await client.callback(redirectUri, params, {
    code_verifier: codeVerifier,
    state,
    nonce,
    response_type: 'code',
  });
  const claims = tokenSet.claims();
  assert.equal(claims.iss, issuer.issuer);
  assert.ok([claims.aud].flat().includes(clientId), `aud ${claims.aud}`);
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.preferred_username, username);
  assert.ok(claims.sub, 'a subject');
  assert.equal(tokenSet.token_type.toLowerCase(), 'bearer');

  const userinfo = await client.userinfo(tokenSet.access_token);
  assert.equal(userinfo.sub, claims.sub, 'userinfo names the same person');

  // The code is single-use: a second redemption is an OAuth error openid-client understands.
  let reuse;
  try {
    await client.callback(redirectUri, params, { code_verifier: codeVerifier, state, nonce });
    reuse = { accepted: true };
  } catch (e) {
    reuse = { opError: e instanceof errors.OPError, error: e.error };
  }

  console.log(
    JSON.stringify({
      discovered: {
        issuer: issuer.issuer,
        authorization_endpoint: issuer.authorization_endpoint,
        token_endpoint: issuer.token_endpoint,
        jwks_uri: issuer.jwks_uri,
        code_challenge_methods_supported: issuer.code_challenge_methods_supported,
      },
      authorizationUrl: {
        code_challenge_method: new URL(authorizationUrl).searchParams.get('code_challenge_method'),
        hasState: new URL(authorizationUrl).searchParams.get('state') === state,
        hasNonce: new URL(authorizationUrl).searchParams.get('nonce') === nonce,
      },
      callback: { iss: params.iss, stateEchoed: params.state === state },
      idTokenAlg: JSON.parse(Buffer.from(tokenSet.id_token.split('.')[0], 'base64url')).alg,
      idToken: {
        iss: claims.iss,
        aud: claims.aud,
        sub: claims.sub,
        preferred_username: claims.preferred_username,
        email: claims.email,
        nonceMatched: claims.nonce === nonce,
      },
      scope: tokenSet.scope,
      userinfo: { sub: userinfo.sub, preferred_username: userinfo.preferred_username },
      codeReuse: reuse,
    }),
  );
}

const deadline = setTimeout(() => {
  console.error('oidc_login.cjs: no result within 90 s');
  process.exit(2);
}, 90000);
deadline.unref();

main().catch((e) => {
  console.error(`oidc_login.cjs failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
