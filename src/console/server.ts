/**
 * The web console's HTTP server (node:http): the pages, their static assets from the
 * package's `web/` folder, the JSON API (api.ts), server-sent events of the rate
 * sampler, and Prometheus `/metrics` when given the broker's metrics.
 *
 * Paths:
 *   /, /topics/NAME, /topics/NAME/records?..., /groups, /groups/NAME   the app's page (index.html)
 *   /assets/FILE                                                       a file of web/ (a fixed set read at start)
 *   /api/...                                                           api.ts; /api/events: SSE
 *   /metrics                                                           Prometheus text
 *
 * Safety: it binds to the broker's host (127.0.0.1 by default). Mutating calls (POST,
 * DELETE) must come from the console's own origin: a request whose Origin differs
 * from its Host, or whose Sec-Fetch-Site is cross-site/same-site, gets 403
 * ERR_CROSS_ORIGIN; they must also carry `Content-Type: application/json` (415
 * otherwise), which a cross-origin form or a simple fetch cannot send without a CORS
 * preflight, which this server never grants. Bodies are capped at 64 KiB. Bound to
 * a loopback address, it answers only requests whose Host is a loopback name (403
 * ERR_HOST_NOT_ALLOWED otherwise: DNS rebinding). No error
 * sends a stack trace; unexpected errors are logged and answered ERR_INTERNAL.
 *
 * close() ends the event streams and every open connection.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommitLog, Logger } from '../log/commit-log.js';
import { ApiError, CONSOLE_CODES, notFound, toApiError } from './api-error.js';
import { handleApi, type ApiContext } from './api.js';
import type { CoordinatorView } from './groups.js';
import type { RateSampler, Sample } from './rates.js';

const MAX_BODY_BYTES = 64 * 1024;
/** Event streams open at once (each a browser tab), and the unsent bytes one may hold. */
const MAX_STREAMS = 64;
const MAX_STREAM_BACKLOG_BYTES = 1024 * 1024;

export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface ConsoleOptions {
  log: CommitLog;
  broker: ApiContext['broker'] & { coordinator?: unknown };
  /** Attached to log and broker by startConsole (create it before CommitLog.open for its flush hooks). */
  sampler: RateSampler;
  /** Default: the broker's host. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Served at /metrics when given. */
  metrics?: MetricsSource;
  /** Default: `broker.coordinator` when it has listGroups and describeGroup. */
  coordinator?: CoordinatorView;
  logger?: Logger & { error?(fields: object, message: string): void };
  /** Extra facts for the overview (flush policy, ...). */
  info?: Record<string, string | number>;
}

export interface ConsoleServer {
  readonly host: string;
  readonly port: number;
  /** http://HOST:PORT/ */
  readonly url: string;
  close(): Promise<void>;
}

const PAGE = /^\/(?:topics\/[^/]+(?:\/records)?|groups(?:\/[^/]+)?)?\/?$/;

/** Starts the console; rejects with the listen error (EADDRINUSE, ...) when it cannot bind. */
export async function startConsole(o: ConsoleOptions): Promise<ConsoleServer> {
  const assets = loadAssets();
  const coordinator = o.coordinator ?? asCoordinator(o.broker.coordinator);
  const ctx: ApiContext = { log: o.log, broker: o.broker, sampler: o.sampler, coordinator, info: o.info ?? {} };
  const streams = new Set<http.ServerResponse>();
  const logger = o.logger;
  let loopbackOnly = true;
  o.sampler.attach(o.log, o.broker);

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const { error, internal } = toApiError(err);
      if (internal) logger?.warn({ err: err instanceof Error ? (err.stack ?? err.message) : String(err), url: req.url }, 'console request failed');
      if (!res.headersSent) sendJson(res, error.status, { error: { code: error.code, message: error.message } });
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (loopbackOnly) ensureLoopbackHost(req);
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const pathname = url.pathname;
    if (pathname.startsWith('/api/')) {
      const parts = pathname.slice('/api/'.length).split('/').filter((p) => p !== '').map(decodeSegment);
      if (parts.length === 1 && parts[0] === 'events') {
        if (method !== 'GET') throw new ApiError(405, CONSOLE_CODES.METHOD_NOT_ALLOWED, 'method not allowed here; allowed: GET');
        openStream(res);
        return;
      }
      let body: unknown;
      if (method === 'POST' || method === 'DELETE' || method === 'PUT' || method === 'PATCH') {
        ensureSameOrigin(req);
        body = await readJsonBody(req);
      }
      const answer = await handleApi(ctx, { method, parts, query: url.searchParams, body });
      sendJson(res, answer.status, answer.body, method === 'HEAD');
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError(405, CONSOLE_CODES.METHOD_NOT_ALLOWED, 'method not allowed here; allowed: GET, HEAD');
    if (pathname === '/metrics') {
      if (o.metrics === undefined) throw notFound('metrics are not collected by this process');
      const text = await o.metrics.metrics();
      res.writeHead(200, { 'content-type': o.metrics.contentType }).end(method === 'HEAD' ? undefined : text);
      return;
    }
    if (pathname.startsWith('/assets/')) {
      const asset = assets.get(pathname.slice('/assets/'.length));
      if (asset === undefined) throw notFound(`no asset ${pathname}`);
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }).end(method === 'HEAD' ? undefined : asset.bytes);
      return;
    }
    if (PAGE.test(pathname)) {
      const page = assets.get('index.html')!;
      res.writeHead(200, {
        'content-type': page.type,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
      }).end(method === 'HEAD' ? undefined : page.bytes);
      return;
    }
    throw notFound(`no page ${pathname}`);
  }

  function openStream(res: http.ServerResponse): void {
    if (streams.size >= MAX_STREAMS) throw new ApiError(503, 'ERR_LIMIT', `${MAX_STREAMS} event streams are open; close a console tab`);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(`retry: 2000\n\n`);
    streams.add(res);
    const unsubscribe = o.sampler.subscribe((s: Sample) => {
      // A reader that stopped reading is dropped rather than buffered for.
      if (res.writableLength > MAX_STREAM_BACKLOG_BYTES) res.destroy();
      else res.write(`event: sample\ndata: ${JSON.stringify(s)}\n\n`);
    });
    res.on('close', () => {
      unsubscribe();
      streams.delete(res);
    });
  }

  // A page keeps its connection (and its event stream) open; close() must not wait for it.
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, o.host ?? o.broker.host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger?.warn({ err: String(err) }, 'console server failed'));
  const address = server.address() as AddressInfo;
  const host = address.address;
  loopbackOnly = isLoopback(host);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/`;
  return {
    host,
    port: address.port,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        o.sampler.stop();
        for (const s of streams) s.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new ApiError(400, 'ERR_INVALID_ARGUMENT', `malformed percent-encoding in the path: ${JSON.stringify(s.slice(0, 40))}`);
  }
}

function isLoopback(host: string): boolean {
  return /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '::ffff:127.0.0.1' || host === 'localhost' || host.endsWith('.localhost');
}

/**
 * On a loopback address only loopback names are answered: a page whose DNS name was
 * rebound to 127.0.0.1 sends its own name as Host and is refused, so it cannot read
 * records through the visitor's browser.
 */
function ensureLoopbackHost(req: http.IncomingMessage): void {
  const raw = req.headers.host ?? '';
  const name = raw.startsWith('[') ? raw.slice(1, raw.indexOf(']')) : raw.replace(/:\d*$/, '');
  if (!isLoopback(name.toLowerCase())) throw new ApiError(403, CONSOLE_CODES.HOST_NOT_ALLOWED, `host ${JSON.stringify(raw.slice(0, 100))} not allowed: the console listens on a loopback address and answers only loopback names such as 127.0.0.1 or localhost`);
}

/** 403 unless the request comes from the console's own origin. */
function ensureSameOrigin(req: http.IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ApiError(403, CONSOLE_CODES.CROSS_ORIGIN, `cross-origin request refused (Sec-Fetch-Site: ${String(site)})`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let host: string | null = null;
    try {
      host = new URL(origin).host;
    } catch {
      // 'null' (a sandboxed frame, a file: page) or garbage: never our origin
    }
    if (host === null || host !== req.headers.host) throw new ApiError(403, CONSOLE_CODES.CROSS_ORIGIN, `cross-origin request refused (Origin: ${origin.slice(0, 100)})`);
  }
}

async function readJsonBody(req: http.IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    throw new ApiError(415, CONSOLE_CODES.UNSUPPORTED_MEDIA_TYPE, `mutating calls need Content-Type: application/json, got ${JSON.stringify(type || '(none)')}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      req.resume();
      throw new ApiError(413, CONSOLE_CODES.BODY_TOO_LARGE, `request body over ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, CONSOLE_CODES.BAD_BODY, `the body is not valid JSON: ${(err as Error).message}`);
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, head = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(head ? undefined : text);
}

function asCoordinator(c: unknown): CoordinatorView | undefined {
  if (c === null || typeof c !== 'object') return undefined;
  const v = c as Partial<CoordinatorView>;
  return typeof v.listGroups === 'function' && typeof v.describeGroup === 'function' ? (c as CoordinatorView) : undefined;
}

interface Asset {
  type: string;
  bytes: Buffer;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** The package's web/ folder: from src/console/ (tsx) or dist/src/console/ (built). */
export function webDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const dir = path.resolve(here, up, 'web');
    if (fs.existsSync(path.join(dir, 'index.html'))) return dir;
  }
  throw new Error(`the console's web/ folder is missing (looked above ${here})`);
}

/** Every file of web/ (flat), read once: the set of servable names is fixed at start. */
function loadAssets(): Map<string, Asset> {
  const dir = webDir();
  const out = new Map<string, Asset>();
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const type = TYPES[path.extname(e.name)];
    if (!e.isFile() || type === undefined) continue;
    out.set(e.name, { type, bytes: fs.readFileSync(path.join(dir, e.name)) });
  }
  return out;
}
