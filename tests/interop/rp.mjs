// Interop relying party: drives the provider end to end with the certified RP library
// openid-client v6 (https://github.com/panva/openid-client). Run by test_openid_client.py.
//
// Environment:
//   ISSUER         e.g. https://localhost:8443 (discovery is fetched from it and must match it)
//   CLIENT_ID, CLIENT_SECRET   a confidential client; openid-client's default client authentication
//                              (client_secret_post) is used, as most services would leave it
//   REDIRECT_URI   registered redirect URI; it is never fetched, only read from the Location header
//   EMAIL, PASSWORD            the person who signs in on the provider's HTML forms
//   TOTP_SECRET    optional: base32 secret of the person's authenticator app (second factor)
//   SCOPE          optional, default "openid profile email access offline_access"
//   NODE_EXTRA_CA_CERTS        the certificate (or CA) that signed the provider's TLS certificate
//   RP_ALLOW_HTTP=1            optional: allow a plain-http loopback issuer (never used by the test)
//   USE_PAR=1      optional: push the authorization request first (RFC 9126) and send the browser
//                  with only client_id and request_uri
//   USE_DPOP=1     optional: hold a DPoP key (RFC 9449) and prove it at every call to the provider
//                  (the pushed request, the token endpoint, userinfo); openid-client retries once when
//                  the provider answers use_dpop_nonce
//
// Prints one JSON line on stdout: {"ok": true, ...results} or {"ok": false, "step", "error", ...};
// exits 0 only if every step passed.

import { createHmac } from 'node:crypto';

import * as client from 'openid-client';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`environment variable ${name} is required`);
  return value;
};

let step = 'configuration';
const log = [];
const at = (name) => { step = name; log.push(`step: ${name}`); };

function fail(message, extra = {}) {
  const err = new Error(message);
  Object.assign(err, extra);
  throw err;
}

// ---------------------------------------------------------------- a tiny cookie jar
class CookieJar {
  constructor() { this.cookies = new Map(); }
  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a))
        || attrs.some((a) => /^\s*expires\s*=/i.test(a) && Date.parse(a.split('=').slice(1).join('=')) < Date.now());
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  names() { return [...this.cookies.keys()]; }
}

// One browser-like request: no automatic redirects, cookies sent and stored.
async function browse(jar, url, init = {}) {
  const headers = new Headers(init.headers ?? {});
  if (jar.cookies.size) headers.set('cookie', jar.header());
  headers.set('accept', 'text/html,application/xhtml+xml');
  headers.set('accept-language', 'en');
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(response);
  log.push(`${init.method ?? 'GET'} ${new URL(url).pathname} -> ${response.status}`);
  return response;
}

function decodeEntities(s) {
  return s.replace(/&quot;/g, '"').replace(/&#39;|&#x27;/g, "'").replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

const attrOf = (tag, name) => {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)')`, 'i'));
  return m ? decodeEntities(m[1] ?? m[2]) : undefined;
};

// RFC 6238 TOTP (SHA-1, 30 s, 6 digits), what an authenticator app shows.
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) throw new Error('TOTP_SECRET is not base32');
    value = ((value << 5) | i) & 0xfff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function totp(secret, now = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(now / 1000 / 30)));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

// The POST forms of a page, filled in the way a person would: hidden fields kept, the email
// address, the password or the authenticator-app code typed where a form asks for them. Works for a
// one-page sign-in form and for separate email / password / second-factor steps. Anything else
// (a passkey ceremony, consent) is reported, not guessed.
function fillForms(html, pageUrl, person) {
  const forms = [];
  for (const match of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)) {
    const formTag = match[0].match(/<form\b[^>]*>/i)[0];
    if ((attrOf(formTag, 'method') ?? 'get').toLowerCase() !== 'post') continue;
    const action = new URL(attrOf(formTag, 'action') ?? '', pageUrl);
    const body = new URLSearchParams();
    const typed = [];
    const unknown = [];
    for (const tag of match[1].match(/<input\b[^>]*>/gi) ?? []) {
      const name = attrOf(tag, 'name');
      const type = (attrOf(tag, 'type') ?? 'text').toLowerCase();
      if (name === undefined || ['submit', 'button', 'image', 'reset', 'checkbox', 'radio'].includes(type)) continue;
      if (type === 'hidden') body.append(name, attrOf(tag, 'value') ?? '');
      else if (type === 'password') { body.append(name, person.password); typed.push(name); }
      else if (type === 'email' || /^(email|username|login)$/i.test(name)) { body.append(name, person.email); typed.push(name); }
      else if (name === 'code' && person.totpSecret && /one-time-code/.test(attrOf(tag, 'autocomplete') ?? '')) {
        body.append(name, totp(person.totpSecret));
        typed.push('code (TOTP)');
      } else unknown.push(`${name} (${type})`);
    }
    const button = (match[1].match(/<button\b[^>]*>/gi) ?? []).find((b) => attrOf(b, 'name'));
    if (button) body.append(attrOf(button, 'name'), attrOf(button, 'value') ?? '');
    forms.push({ action, body, typed, unknown, tag: formTag });
  }
  return forms;
}

// Follow the authorization request through the provider's sign-in pages, like a browser, and
// return the URL the provider finally redirects to (at the client's redirect URI, never fetched).
async function signInAndAuthorize(authorizationUrl, redirectUri, person) {
  const jar = new CookieJar();
  const steps = [];
  const isCallback = (u) => u.href === redirectUri || u.href.startsWith(redirectUri + '?');
  let url = authorizationUrl;
  let init = {};
  let formsPosted = 0;
  for (let hop = 0; hop < 20; hop++) {
    const response = await browse(jar, url, init);
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get('location');
      if (!location) fail(`${response.status} without Location from ${url}`);
      const next = new URL(location, url);
      if (isCallback(next)) return { callback: next, jar, steps };
      url = next;
      init = {};
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) {
      fail(`${init.method ?? 'GET'} ${url} answered ${response.status}`, { html: html.slice(0, 3000) });
    }
    const forms = fillForms(html, url, person);
    const form = forms.find((f) => f.typed.length && !f.unknown.length);
    if (!form) {
      const asked = forms.map((f) => f.unknown.join(', ') || f.tag).join(' | ') || 'no POST form';
      fail(`the page at ${url} asks for something this RP cannot give (${asked}): ` +
        'it signs in with email, password and an authenticator-app code only', { html: html.slice(0, 3000) });
    }
    steps.push(`${url.pathname}: ${form.typed.join(', ')}`);
    if (++formsPosted > 6) fail('more than 6 sign-in forms: giving up', { html: html.slice(0, 3000) });
    const referer = url.href;
    url = form.action;
    init = {
      method: 'POST', body: form.body,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin, referer },
    };
  }
  fail('too many redirects while authorizing');
}

async function expectRejected(promise) {
  try {
    await promise;
    return { rejected: false };
  } catch (err) {
    return { rejected: true, error: err.error ?? err.code ?? err.name, status: err.status };
  }
}

async function main() {
  const issuer = env('ISSUER');
  const clientId = env('CLIENT_ID');
  const clientSecret = env('CLIENT_SECRET');
  const redirectUri = env('REDIRECT_URI');
  const email = env('EMAIL');
  const password = env('PASSWORD');
  const scope = env('SCOPE', 'openid profile email access offline_access');
  const results = { ok: false, issuer };

  at('discovery');
  const options = process.env.RP_ALLOW_HTTP === '1' ? { execute: [client.allowInsecureRequests] } : undefined;
  // no client authentication named: openid-client's default for a secret (client_secret_post)
  const config = await client.discovery(new URL(issuer), clientId,
    { redirect_uris: [redirectUri], client_secret: clientSecret }, undefined, options);
  const meta = config.serverMetadata();
  if (meta.issuer !== issuer) fail(`discovery issuer ${meta.issuer} != ${issuer}`);
  results.discovery = {
    issuer: meta.issuer,
    iss_parameter_supported: meta.authorization_response_iss_parameter_supported === true,
    code_challenge_methods_supported: meta.code_challenge_methods_supported,
  };

  // one key for the whole session: the tokens are bound to it
  const DPoP = process.env.USE_DPOP === '1'
    ? client.getDPoPHandle(config, await client.randomDPoPKeyPair('ES256')) : undefined;
  const dpop = DPoP ? { DPoP } : undefined;
  results.dpop_algs = meta.dpop_signing_alg_values_supported ?? null;

  at('authorization request');
  const codeVerifier = client.randomPKCECodeVerifier();
  const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const parameters = {
    redirect_uri: redirectUri, scope, code_challenge: codeChallenge, code_challenge_method: 'S256', state, nonce,
  };
  const authorizationUrl = process.env.USE_PAR === '1'
    ? await client.buildAuthorizationUrlWithPAR(config, parameters, dpop)
    : client.buildAuthorizationUrl(config, parameters);
  results.authorization_params = [...authorizationUrl.searchParams.keys()].sort();
  results.par_endpoint = meta.pushed_authorization_request_endpoint ?? null;

  at('sign-in');
  const person = { email, password, totpSecret: process.env.TOTP_SECRET || undefined };
  const { callback, jar, steps } = await signInAndAuthorize(authorizationUrl, redirectUri, person);
  results.cookies = jar.names();
  results.sign_in_steps = steps;
  results.callback_params = [...callback.searchParams.keys()].sort();
  if (callback.searchParams.get('error')) {
    fail(`authorization error ${callback.searchParams.get('error')}: ${callback.searchParams.get('error_description')}`);
  }

  at('authorizationCodeGrant');
  // validates state, the iss parameter (RFC 9207), the code exchange with PKCE, and the ID token
  // (signature against jwks_uri, iss, aud, azp, exp, iat, nonce, at_hash where applicable)
  const tokens = await client.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  }, undefined, dpop);
  const idClaims = tokens.claims();
  if (!idClaims?.sub) fail('no ID token claims');
  if (!tokens.refresh_token) fail('no refresh_token in the token response');
  results.token_response = {
    token_type: tokens.token_type, expires_in: tokens.expiresIn(), scope: tokens.scope,
    has_refresh_token: Boolean(tokens.refresh_token), has_id_token: Boolean(tokens.id_token),
  };
  results.id_token = { header: JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url')), claims: idClaims };
  results.sub = idClaims.sub;
  results.access_token_cnf = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url')).cnf ?? null;

  at('fetchUserInfo');
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub, dpop);
  results.userinfo = userinfo;
  if (DPoP) {
    // the same token without a proof, as whoever copied it would send it: refused
    const stolen = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    results.userinfo_as_bearer = { status: stolen.status, challenge: stolen.headers.get('www-authenticate') };
  }

  at('tokenIntrospection (access token)');
  const introAccess = await client.tokenIntrospection(config, tokens.access_token);
  results.introspection_access = { active: introAccess.active, sub: introAccess.sub, client_id: introAccess.client_id };

  at('refreshTokenGrant');
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, dpop);
  const refreshedClaims = refreshed.claims();
  results.refresh = {
    new_refresh_token: Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token,
    new_access_token: Boolean(refreshed.access_token) && refreshed.access_token !== tokens.access_token,
    id_token_sub: refreshedClaims?.sub ?? null,
    scope: refreshed.scope,
  };
  at('fetchUserInfo (refreshed access token)');
  results.refresh.token_type = refreshed.token_type;
  results.refresh.userinfo_sub = (await client.fetchUserInfo(config, refreshed.access_token, idClaims.sub, dpop)).sub;

  at('tokenRevocation');
  // revoking the refresh token ends its whole grant (RFC 7009 §2.1): the refresh token and the
  // access tokens issued with it must stop working
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  const introAfter = await client.tokenIntrospection(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  const refreshAfter = await expectRejected(client.refreshTokenGrant(config, refreshed.refresh_token, undefined, dpop));
  const userinfoAfter = await expectRejected(client.fetchUserInfo(config, refreshed.access_token, idClaims.sub, dpop));
  results.revocation = {
    ok: true,
    introspection_active_after: introAfter.active,
    refresh_after: refreshAfter,
    userinfo_after: userinfoAfter,
  };

  at('refresh token reuse');
  // the first refresh token was rotated by the refresh above: presenting it again must fail
  results.reuse_of_rotated_refresh_token = await expectRejected(
    client.refreshTokenGrant(config, tokens.refresh_token, undefined, dpop));

  results.ok = true;
  results.steps = log;
  return results;
}

async function describeCause(cause) {
  if (cause === undefined || cause === null) return undefined;
  if (cause instanceof Response) {
    let body;
    try { body = (await cause.text()).slice(0, 2000); } catch { body = '(body already read)'; }
    return { http_status: cause.status, url: cause.url, body };
  }
  if (cause instanceof Error) return { message: cause.message, code: cause.code };
  try { return JSON.parse(JSON.stringify(cause)); } catch { return String(cause); }
}

try {
  const results = await main();
  process.stdout.write(JSON.stringify(results) + '\n');
} catch (err) {
  const out = {
    ok: false, step, error: err?.message ?? String(err), code: err?.code, name: err?.name,
    oauth_error: err?.error, error_description: err?.error_description, status: err?.status,
    cause: await describeCause(err?.cause), html: err?.html, steps: log,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
  process.stderr.write(`rp.mjs: FAILED at ${step}: ${err?.stack ?? err}\n`);
  process.exitCode = 1;
}
