'use strict';
/*
 * @okta/jwt-verifier v4 (what the sample's todo0 MCP server verifies bearer tokens with) against a
 * todo0 access token minted by idp0 through the real Cross-App Access chain, over https.
 *
 * Run by crates/cli/tests/cli/node.rs with todo0.env's MCP_OKTA_ISSUER and MCP_EXPECTED_AUDIENCE,
 * the token in ACCESS_TOKEN, and NODE_EXTRA_CA_CERTS naming the local CA (the verifier fetches the
 * signing keys from `${issuer}/v1/keys` itself). The verifier is configured as the sample's todo0
 * configures it. Prints one JSON line (claims, never the token); any unexpected outcome exits
 * non-zero with the reason on stderr.
 */

const assert = require('node:assert/strict');
const OktaJwtVerifier = require('@okta/jwt-verifier');

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The error message a verification ends with, or fails the script if it passes. */
async function refusal(promise, what) {
  try {
    await promise;
  } catch (e) {
    return String(e && e.message ? e.message : e);
  }
  throw new Error(`${what}: the token was accepted`);
}

async function main() {
  const issuer = env('MCP_OKTA_ISSUER');
  const audience = env('MCP_EXPECTED_AUDIENCE');
  const token = env('ACCESS_TOKEN');

  // As the sample's todo0 (mcp-auth middleware) builds and calls it.
  const verifier = new OktaJwtVerifier({ issuer, assertClaims: { aud: audience } });
  const jwt = await verifier.verifyAccessToken(token, audience);
  assert.equal(jwt.claims.iss, issuer);
  assert.equal(jwt.claims.aud, audience);
  // The sample's scope check reads `scp` as an array.
  assert.ok(Array.isArray(jwt.claims.scp) && jwt.claims.scp.includes('mcp:connect'), `scp ${jwt.claims.scp}`);

  // Another audience: Okta's default one, and this MCP server's URL on another path.
  const otherAudiences = ['api://default', new URL('/not-mcp', audience).href];
  const wrongAudience = {};
  for (const other of otherAudiences) {
    wrongAudience[other] = await refusal(verifier.verifyAccessToken(token, other), `audience ${other}`);
  }
  // A verifier configured (as the sample would be) for another resource refuses it too.
  const elsewhere = new OktaJwtVerifier({ issuer, assertClaims: { aud: otherAudiences[0] } });
  const configuredElsewhere = await refusal(
    elsewhere.verifyAccessToken(token, otherAudiences[0]),
    'a verifier for api://default',
  );
  // A changed signature does not verify against idp0's keys.
  const [header, payload, signature] = token.split('.');
  const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
  const tampered = await refusal(
    verifier.verifyAccessToken([header, payload, flipped].join('.'), audience),
    'a tampered signature',
  );

  console.log(
    JSON.stringify({
      jwksUri: verifier.jwksUri,
      header: { alg: jwt.header.alg, kid: jwt.header.kid, typ: jwt.header.typ },
      claims: jwt.claims,
      wrongAudience,
      configuredElsewhere,
      tampered,
    }),
  );
}

const deadline = setTimeout(() => {
  console.error('verify_access_token.cjs: no result within 60 s');
  process.exit(2);
}, 60000);
deadline.unref();

main().catch((e) => {
  console.error(`verify_access_token.cjs failed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
