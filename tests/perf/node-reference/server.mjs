// The benchmark's reference server: node oidc-provider 9 set up for the same service-to-service
// endpoints the provider serves, with production-like settings. Started by ../compare.py; not a test.
//
//   client_credentials  POST /token (client_secret_basic) -> an ES256 JWT access token (RFC 9068),
//                       through the resource indicators feature (the default resource is a JWT one)
//   introspection       POST /token/introspection (client_secret_basic); oidc-provider refuses to
//                       introspect its own JWT access tokens (unsupported_token_type), so the token
//                       introspected is an opaque client_credentials token, read from Redis
//   JWKS                GET /jwks
//   discovery           GET /.well-known/openid-configuration
//
// Production-like: NODE_ENV=production, no dev interactions, a Redis adapter (the in-memory one is
// for development only, and is per process), one JSON access line per request on stdout (as the
// provider writes one per request on stderr). WORKERS > 1: node's cluster module, that many
// processes sharing the port (one process, no cluster, when WORKERS is 1).
//
// Environment: PORT, ISSUER, WORKERS, REDIS_URL, REDIS_PREFIX, CLIENT_ID, CLIENT_SECRET.
// Prints "ready <port>" on stderr once every process listens.

import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

import Redis from 'ioredis';
import Provider, { errors } from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`environment variable ${name} is required`);
  return value;
};

const WORKERS = Number(env('WORKERS', '1'));
const JWT_API = 'https://api.bench.example/jwt';
const OPAQUE_API = 'https://api.bench.example/opaque';
const ACCESS_TOKEN_TTL = 600; // the provider's default access_token_lifetime

// Every process must sign with the same key: the first process makes it and hands it on.
if (!process.env.BENCH_SIGNING_JWK) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  process.env.BENCH_SIGNING_JWK = JSON.stringify({
    ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES256', use: 'sig',
  });
  process.env.BENCH_COOKIE_KEY = randomBytes(32).toString('base64url');
}

// ---------------------------------------------------------------- Redis adapter
// oidc-provider's storage interface (upsert, find, findByUid, findByUserCode, consume, destroy,
// revokeByGrantId), each model a JSON string that expires with it.
const redis = new Redis(env('REDIS_URL'), { keyPrefix: env('REDIS_PREFIX'), lazyConnect: true });

class RedisAdapter {
  constructor(name) { this.name = name; }

  key(id) { return `${this.name}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const multi = redis.multi();
    const value = JSON.stringify(payload);
    if (expiresIn) multi.set(this.key(id), value, 'EX', expiresIn);
    else multi.set(this.key(id), value);
    if (payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      multi.rpush(grantKey, this.key(id));
      if (expiresIn) multi.expire(grantKey, expiresIn, 'GT');
    }
    if (payload.uid) multi.set(`uid:${payload.uid}`, id, ...(expiresIn ? ['EX', expiresIn] : []));
    if (payload.userCode) multi.set(`userCode:${payload.userCode}`, id, ...(expiresIn ? ['EX', expiresIn] : []));
    await multi.exec();
  }

  async find(id) {
    const value = await redis.get(this.key(id));
    return value ? JSON.parse(value) : undefined;
  }

  async findByUid(uid) {
    const id = await redis.get(`uid:${uid}`);
    return id ? this.find(id) : undefined;
  }

  async findByUserCode(userCode) {
    const id = await redis.get(`userCode:${userCode}`);
    return id ? this.find(id) : undefined;
  }

  async consume(id) {
    // single use is enforced by oidc-provider on what find() returns; this records the consumption
    const stored = await this.find(id);
    if (!stored) return;
    const ttl = await redis.ttl(this.key(id));
    stored.consumed = Math.floor(Date.now() / 1000);
    await redis.set(this.key(id), JSON.stringify(stored), ...(ttl > 0 ? ['EX', ttl] : []));
  }

  async destroy(id) { await redis.del(this.key(id)); }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    const keys = await redis.lrange(grantKey, 0, -1);
    // the listed keys already carry the prefix-less model key; ioredis adds the prefix to each
    await redis.del(...keys, grantKey);
  }
}

// ---------------------------------------------------------------- the provider
function resourceServer(resource) {
  if (resource === JWT_API) {
    return {
      audience: JWT_API, scope: 'api', accessTokenFormat: 'jwt', accessTokenTTL: ACCESS_TOKEN_TTL,
      jwt: { sign: { alg: 'ES256' } },
    };
  }
  if (resource === OPAQUE_API) {
    return { audience: OPAQUE_API, scope: 'api', accessTokenFormat: 'opaque', accessTokenTTL: ACCESS_TOKEN_TTL };
  }
  throw new errors.InvalidTarget();
}

function makeProvider() {
  const provider = new Provider(env('ISSUER'), {
    adapter: RedisAdapter,
    clients: [{
      client_id: env('CLIENT_ID'),
      client_secret: env('CLIENT_SECRET'),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    jwks: { keys: [JSON.parse(process.env.BENCH_SIGNING_JWK)] },
    cookies: { keys: [process.env.BENCH_COOKIE_KEY] },
    scopes: ['openid', 'api'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // a client may introspect only its own tokens, as the provider allows
        allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf ?? JWT_API,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => resourceServer(resource),
      },
    },
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      ClientCredentials: ACCESS_TOKEN_TTL,
      AuthorizationCode: 60,
      IdToken: ACCESS_TOKEN_TTL,
      Grant: 28800,
      Interaction: 600,
      Session: 43200,
      RefreshToken: 28800,
    },
  });
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`${JSON.stringify({ level: 'ERROR', message: 'server_error', error: String(err?.stack ?? err) })}\n`);
  });
  // One access line per request, written when the response is ready, with the same fields as the
  // provider's (idp/logs.py): time, level, logger, pid, message, request_id, method, path, status, ms.
  provider.use(async (ctx, next) => {
    const started = performance.now();
    const requestId = randomBytes(16).toString('hex');
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      process.stdout.write(`${JSON.stringify({
        time: new Date().toISOString(), level: 'INFO', logger: 'idp.request', pid: process.pid,
        message: 'request', request_id: requestId, method: ctx.method, path: ctx.path, status: ctx.status,
        ms: Math.round((performance.now() - started) * 100) / 100,
      })}\n`);
    }
  });
  return provider;
}

async function serve() {
  await redis.connect();
  const provider = makeProvider();
  const port = Number(env('PORT'));
  await new Promise((resolve) => { provider.listen(port, '127.0.0.1', resolve); });
  return port;
}

if (WORKERS > 1 && cluster.isPrimary) {
  let listening = 0;
  cluster.on('listening', () => {
    listening += 1;
    if (listening === WORKERS) process.stderr.write(`ready ${env('PORT')}\n`);
  });
  cluster.on('exit', (worker, code, signal) => {
    process.stderr.write(`worker ${worker.process.pid} exited (${signal ?? code})\n`);
  });
  for (let i = 0; i < WORKERS; i += 1) cluster.fork();
  const stop = () => {
    for (const worker of Object.values(cluster.workers)) worker.kill('SIGTERM');
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  serve().then((port) => {
    if (cluster.isPrimary) process.stderr.write(`ready ${port}\n`);
  }, (err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
  process.on('SIGTERM', () => { redis.disconnect(); process.exit(0); });
}
