/**
 * Helpers of the console tests: an in-process stack (CommitLog + broker on 127.0.0.1:0
 * + console on 127.0.0.1:0, sampling every 200 ms), a JSON fetch, and Debian's
 * chromium through puppeteer-core. Everything started is stopped in the test's
 * teardown.
 *
 * Browser tests run when /usr/bin/chromium exists, and always under CI=true, where a
 * missing chromium makes them fail (the launch throws) instead of skipping.
 */
import type { ExecutionContext } from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { CommitLog } from '../../src/log/commit-log.js';
import { startBroker, type Broker } from '../../src/net/broker/server.js';
import { BrokerMetrics } from '../../src/ops/metrics.js';
import { RateSampler, combineFlushHooks, combineObservers } from '../../src/console/rates.js';
import { startConsole, type ConsoleServer } from '../../src/console/server.js';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = fs.existsSync(CHROMIUM);
/** Run browser tests here? (Under CI always: a missing browser must fail there.) */
export const runBrowserTests = haveChromium || process.env.CI === 'true';

export interface Stack {
  dir: string;
  log: CommitLog;
  broker: Broker;
  sampler: RateSampler;
  console: ConsoleServer;
  /** http://127.0.0.1:PORT (no trailing slash). */
  base: string;
}

export async function startStack(t: ExecutionContext, options: { intervalMs?: number } = {}): Promise<Stack> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-console-'));
  const sampler = new RateSampler(options.intervalMs ?? 200);
  const metrics = new BrokerMetrics();
  const log = await CommitLog.open({ dir, flush: 'sync', hooks: combineFlushHooks(metrics.flushHooks, sampler.flushHooks) });
  const broker = await startBroker({ log, host: '127.0.0.1', port: 0, observer: combineObservers(metrics.observer, sampler.observer), groups: { initialRebalanceDelayMs: 0 } });
  metrics.attach(log, broker);
  const server = await startConsole({ log, broker, sampler, port: 0, metrics, info: { flush: 'sync' } });
  t.teardown(async () => {
    await server.close();
    await broker.close();
    await log.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { dir, log, broker, sampler, console: server, base: server.url.replace(/\/$/, '') };
}

export interface JsonAnswer {
  status: number;
  body: any;
  contentType: string | null;
}

/** fetch() whose body is parsed as JSON (null when it is not JSON). */
export async function getJson(url: string, init: RequestInit = {}): Promise<JsonAnswer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  return { status: res.status, body, contentType: res.headers.get('content-type') };
}

/** A same-origin mutating call as the console's pages make it. */
export function send(base: string, method: string, p: string, body?: unknown, headers: Record<string, string> = {}): Promise<JsonAnswer> {
  return getJson(base + p, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
}

const profiles = new WeakMap<Browser, string>();

/** Debian's chromium, headless, with a fresh profile (closeBrowser removes it). */
export async function launchBrowser(): Promise<Browser> {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'commitlog-chromium-'));
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    userDataDir,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  profiles.set(browser, userDataDir);
  return browser;
}

/** Closes the browser (waiting for its process) and removes its profile. */
export async function closeBrowser(browser: Browser): Promise<void> {
  await browser.close();
  const dir = profiles.get(browser);
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}

/** A new page that fails the test on any script error, 1200 px wide, closed in the teardown. */
export async function newPage(t: ExecutionContext, browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  t.teardown(() => page.close().catch(() => undefined));
  page.on('pageerror', (err) => t.fail(`page error: ${String(err)}`));
  await page.setViewport({ width: 1200, height: 900 });
  return page;
}

/** Opens `url` and waits until the view has rendered (main[data-ready=true]). */
export async function open(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('main[data-ready="true"]');
}

/** Waits for a client-side navigation's view to render. */
export async function rendered(page: Page): Promise<void> {
  await page.waitForSelector('main[data-ready="true"]');
}

/**
 * Clicks a link inside the page in one step: live views re-render their tables on
 * every sample, so a query-then-click from outside could land on a replaced node.
 */
export async function clickLink(page: Page, selector: string): Promise<void> {
  await page.waitForSelector(selector);
  await page.$eval(selector, (a) => (a as HTMLElement).click());
}

/** The page's main text. */
export function mainText(page: Page): Promise<string> {
  return page.$eval('main', (el) => (el as HTMLElement).innerText);
}

/** Saves a screenshot of the page as docs/console/NAME.png with UPDATE_SCREENSHOTS=1, else in a temporary directory. */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(root, 'docs', 'console') : path.join(os.tmpdir(), 'commitlog-console-screenshots');
  fs.mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, `${name}.png`) as `${string}.png`, fullPage: true });
}
