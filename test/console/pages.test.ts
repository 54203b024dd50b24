/**
 * The console's pages in a real browser (Debian's chromium via puppeteer-core), against
 * an in-process broker: rendered text, the record browser's paging, live updates, a
 * chart's data growing, creating and deleting a topic through the UI, errors shown on
 * the page. Screenshots of each page go to docs/console/ with UPDATE_SCREENSHOTS=1
 * (a temporary directory otherwise, so a test run leaves the tree as it was).
 */
import anyTest, { type TestFn } from 'ava';
import type { Browser } from 'puppeteer-core';
import { Consumer } from '../../src/net/client/consumer.js';
import { Producer } from '../../src/net/client/producer.js';
import { encodeAssignment, encodeSubscription } from '../../src/net/groups/consumer-protocol.js';
import { clickLink, closeBrowser, launchBrowser, mainText, newPage, open, rendered, runBrowserTests, screenshot, startStack, type Stack } from './helpers.js';

const test = anyTest as TestFn;
const browserTest = runBrowserTests ? test.serial : test.skip;

let shared: Promise<Browser> | undefined;
/** One chromium for the file: each test opens its own pages. */
function browser(_t: unknown): Promise<Browser> {
  shared ??= launchBrowser();
  return shared;
}
test.after.always(async () => {
  if (shared !== undefined) await closeBrowser(await shared);
});

async function stackWithData(t: Parameters<typeof startStack>[0]): Promise<Stack> {
  const s = await startStack(t);
  await s.log.createTopic('orders', { partitions: 3 });
  await s.log.createTopic('audit-log', { partitions: 1, retentionMs: 3_600_000 });
  for (let p = 0; p < 3; p++) {
    await s.log.append('orders', p, Array.from({ length: 25 }, (_, i) => ({ key: `p${p}-k${i}`, value: JSON.stringify({ order: i, partition: p }), headers: { source: 'test' }, timestamp: 1_750_000_000_000 + i * 60_000 })));
  }
  await s.log.append('audit-log', 0, [{ value: 'user alice logged in' }]);
  return s;
}

browserTest('overview lists the topics with partitions and records, and its chart grows while records arrive', async (t) => {
  const s = await stackWithData(t);
  const page = await newPage(t, await browser(t));
  await open(page, `${s.base}/`);
  const text = await mainText(page);
  t.regex(text, /orders\t3\t75\t/);
  t.regex(text, /audit-log\t1\t1\t/);
  t.is(await page.$eval('#stat-topics', (e) => e.textContent), '2');
  t.is(await page.$eval('#stat-partitions', (e) => e.textContent), '4');
  const points = (): Promise<number> => page.$eval('#chart-records', (e) => Number((e as HTMLElement).dataset.points));
  const before = await points();
  // Produce and consume over the network while the page is open: samples arrive over
  // SSE, the chart's series grow, records in and out and the connections show.
  const broker = `127.0.0.1:${s.broker.port}`;
  const producer = new Producer({ broker, lingerMs: 0 });
  const consumer = new Consumer({ broker, topic: 'orders', from: 'earliest', maxWaitMs: 100 });
  let consumed = 0;
  const reading = (async () => {
    for await (const _ of consumer) consumed++;
  })();
  const timer = setInterval(() => void producer.send('orders', { key: 'live', value: 'live' }).catch(() => undefined), 20);
  try {
    await page.waitForFunction((n) => Number((document.querySelector('#chart-records') as HTMLElement | null)?.dataset.points) >= n + 5, {}, before);
    await page.waitForFunction(() => [...document.querySelectorAll('#chart-records .legend-value')].every((e) => Number(e.textContent) > 0));
    await page.waitForFunction(() => Number(document.querySelector('#stat-connections')?.textContent) >= 2);
    await page.waitForFunction(() => /orders\t3\t(\d{2,}|\d,\d{3})\t/.test((document.querySelector('main') as HTMLElement).innerText) && !(document.querySelector('main') as HTMLElement).innerText.includes('orders\t3\t75\t'));
    await screenshot(page, 'overview');
  } finally {
    clearInterval(timer);
    await producer.close();
    await consumer.close();
    await reading.catch(() => undefined);
  }
  t.true(consumed >= 75, `consumed ${consumed}`);
  t.true((await points()) >= before + 5);
  t.is(await page.$eval('#live', (e) => e.textContent), 'live');
  t.is((await page.$$('#chart-records path.line')).length, 2);
});

browserTest('a topic page shows each partition\'s earliest, latest and high watermark offsets, segments and settings', async (t) => {
  const s = await stackWithData(t);
  await s.log.append('orders', 2, [{ value: 'one more' }]);
  const page = await newPage(t, await browser(t));
  await open(page, `${s.base}/`);
  await clickLink(page, 'a[href="/topics/orders"]');
  await rendered(page);
  t.is(new URL(page.url()).pathname, '/topics/orders');
  const rows = await page.$$eval('#partitions-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 7).map((td) => td.textContent)));
  t.deepEqual(rows, [
    ['0', '0', '25', '25', '25', '25', '1'],
    ['1', '0', '25', '25', '25', '25', '1'],
    ['2', '0', '26', '26', '26', '26', '1'],
  ]);
  const settings = await mainText(page);
  t.regex(settings, /retention\.ms\t604,800,000 \(7 d\)/);
  t.regex(settings, /retention\.bytes\tunlimited/);
  await screenshot(page, 'topic');
  await open(page, `${s.base}/topics/audit-log`);
  t.regex(await mainText(page), /retention\.ms\t3,600,000 \(60 min\)/);
});

browserTest('the record browser pages forward and back from an offset, by time, and its paths can be bookmarked', async (t) => {
  const s = await stackWithData(t);
  const page = await newPage(t, await browser(t));
  await open(page, `${s.base}/topics/orders/records?partition=1&offset=0&limit=10`);
  const offsets = (): Promise<number[]> => page.$$eval('#records .record', (els) => els.map((e) => Number((e as HTMLElement).dataset.offset)));
  t.deepEqual(await offsets(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const first = await page.$eval('#records .record .record-value', (e) => e.textContent);
  t.is(first, '{\n  "order": 0,\n  "partition": 1\n}');
  t.is(await page.$eval('#records .record .record-key', (e) => e.textContent), 'p1-k0');
  t.regex(await page.$eval('#records .record', (e) => (e as HTMLElement).innerText), /source\s+test/);
  t.true(await page.$eval('.rb-prev', (b) => (b as HTMLButtonElement).disabled));
  await page.click('.rb-next');
  await rendered(page);
  t.is(new URL(page.url()).search, '?partition=1&offset=10&limit=10');
  t.deepEqual(await offsets(), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  await page.click('.rb-next');
  await rendered(page);
  t.deepEqual(await offsets(), [20, 21, 22, 23, 24]);
  t.true(await page.$eval('.rb-next', (b) => (b as HTMLButtonElement).disabled), 'no page past the high watermark');
  await page.click('.rb-prev');
  await rendered(page);
  t.deepEqual(await offsets(), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  await page.goBack();
  await rendered(page);
  t.deepEqual(await offsets(), [20, 21, 22, 23, 24]);
  // The form: partition 2 from a time (the record at minute 7 is offset 7).
  await page.select('#rb-partition', '2');
  await page.select('#rb-mode', 'time');
  await page.$eval('#rb-from', (e) => ((e as HTMLInputElement).value = ''));
  await page.type('#rb-from', new Date(1_750_000_000_000 + 7 * 60_000).toISOString());
  await page.click('#rb-go');
  await rendered(page);
  t.is(new URL(page.url()).searchParams.get('time'), new Date(1_750_000_420_000).toISOString());
  t.is((await offsets())[0], 7);
  t.is(await page.$eval('#records .record .record-key', (e) => e.textContent), 'p2-k7');
  // A bookmarked path opened fresh renders the same page.
  const bookmark = page.url();
  const other = await newPage(t, await browser(t));
  await open(other, bookmark);
  t.is(await other.$eval('#records .record .record-key', (e) => e.textContent), 'p2-k7');
  await open(page, `${s.base}/topics/orders/records?partition=0&offset=3&limit=5`);
  await screenshot(page, 'records');
});

browserTest('a group page shows committed offsets, lag per partition and its chart, and updates the lag live after a commit', async (t) => {
  const s = await stackWithData(t);
  await s.broker.offsets.commit('billing', [{ topic: 'orders', partition: 0, offset: 20 }, { topic: 'orders', partition: 1, offset: 5 }, { topic: 'orders', partition: 2, offset: 25 }]);
  const c = s.broker.coordinator;
  const join = await c.join({ groupId: 'billing', memberId: '', clientId: 'billing-app', clientHost: '/127.0.0.1', sessionTimeoutMs: 60_000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: encodeSubscription({ topics: ['orders'] }) }] });
  const sync = await c.sync({ groupId: 'billing', memberId: join.memberId, generationId: join.generationId, assignments: [{ memberId: join.memberId, assignment: encodeAssignment({ partitions: [{ topic: 'orders', partitions: [0, 1, 2] }] }) }] });
  t.deepEqual([join.error, sync.error], [null, null]);
  const page = await newPage(t, await browser(t));
  await open(page, `${s.base}/groups`);
  t.regex(await mainText(page), /billing\tStable\t1\torders\t25/);
  await clickLink(page, 'a[href="/groups/billing"]');
  await rendered(page);
  const lagRows = (): Promise<string[][]> => page.$$eval('#offsets-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].slice(0, 5).map((td) => td.textContent ?? '')));
  t.deepEqual(await lagRows(), [
    ['orders', '0', '20', '25', '5'],
    ['orders', '1', '5', '25', '20'],
    ['orders', '2', '25', '25', '0'],
  ]);
  t.is(await page.$eval('#total-lag', (e) => e.textContent), '25');
  t.deepEqual(await page.$$eval('#members-table tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent))), [[join.memberId, 'billing-app', '/127.0.0.1', 'orders [0, 1, 2]']]);
  t.deepEqual(await page.$$eval('#offsets-table tbody tr td:last-child', (tds) => tds.map((td) => td.textContent)), [join.memberId, join.memberId, join.memberId]);
  t.is(await page.$eval('#chart-lag', (e) => (e as HTMLElement).dataset.points), '3');
  // A commit while the page is open: the page shows the new lag without a reload.
  await s.broker.offsets.commit('billing', [{ topic: 'orders', partition: 1, offset: 24 }]);
  await page.waitForFunction(() => document.querySelector('#total-lag')?.textContent === '6');
  t.deepEqual((await lagRows())[1], ['orders', '1', '24', '25', '1']);
  await page.waitForFunction(() => Number((document.querySelector('#chart-lag-history') as HTMLElement | null)?.dataset.points) >= 2);
  await screenshot(page, 'group');
});

browserTest('a topic created and deleted through the UI, with a typed confirmation', async (t) => {
  const s = await stackWithData(t);
  const page = await newPage(t, await browser(t));
  await open(page, `${s.base}/`);
  await page.type('#create-name', 'payments');
  await page.$eval('#create-partitions', (e) => ((e as HTMLInputElement).value = '4'));
  await page.type('#create-retention', '2');
  await page.click('#create-submit');
  await page.waitForSelector('#create-result .ok');
  t.is(await page.$eval('#create-result', (e) => e.textContent), 'Created payments with 4 partition(s).');
  t.deepEqual(s.log.listTopics(), ['audit-log', 'orders', 'payments']);
  t.is(s.log.describeTopic('payments').config.retentionMs, 2 * 3_600_000);
  await page.waitForSelector('#topics-table tr[data-topic="payments"]');
  // The same name again: the API's error on the page.
  await page.type('#create-name', 'payments');
  await page.click('#create-submit');
  await page.waitForSelector('#create-result .error');
  t.regex(await page.$eval('#create-result .error', (e) => e.textContent ?? ''), /^ERR_TOPIC_EXISTS topic payments already exists$/);
  await open(page, `${s.base}/topics/payments`);
  await page.click('#delete-topic');
  t.true(await page.$eval('#delete-confirm-button', (b) => (b as HTMLButtonElement).disabled));
  await page.type('#delete-name', 'paymentz');
  t.true(await page.$eval('#delete-confirm-button', (b) => (b as HTMLButtonElement).disabled), 'a wrong name does not arm the button');
  t.deepEqual(s.log.listTopics(), ['audit-log', 'orders', 'payments']);
  await page.$eval('#delete-name', (e) => ((e as HTMLInputElement).value = ''));
  await page.type('#delete-name', 'payments');
  await page.click('#delete-confirm-button');
  await page.waitForFunction(() => location.pathname === '/' && document.querySelector('main')?.dataset.ready === 'true');
  t.deepEqual(s.log.listTopics(), ['audit-log', 'orders']);
  t.falsy(await page.$('#topics-table tr[data-topic="payments"]'));
  t.is(await page.$eval('#notice', (e) => e.textContent), 'Deleted topic payments.');
});

browserTest('bad paths and input show the API\'s error on the page, never a stack trace', async (t) => {
  const s = await stackWithData(t);
  const page = await newPage(t, await browser(t));
  await open(page, `${s.base}/topics/nope`);
  t.is(await page.$eval('.error', (e) => e.textContent), 'ERR_UNKNOWN_TOPIC unknown topic nope');
  await open(page, `${s.base}/topics/orders/records?partition=0&offset=999`);
  t.is(await page.$eval('.error', (e) => e.textContent), 'ERR_OFFSET_OUT_OF_RANGE offset 999 is out of range: partition 0 of orders holds offsets [0, 25)');
  await open(page, `${s.base}/topics/orders/records?partition=0&limit=99999`);
  t.regex(await page.$eval('.error', (e) => e.textContent ?? ''), /^ERR_INVALID_ARGUMENT limit must be an integer in \[1, 500\]/);
  await open(page, `${s.base}/topics/orders/records?partition=0&time=not-a-time`);
  t.regex(await page.$eval('.error', (e) => e.textContent ?? ''), /^ERR_INVALID_ARGUMENT time must be an ISO-8601/);
  await open(page, `${s.base}/groups/nobody`);
  t.regex(await page.$eval('.error', (e) => e.textContent ?? ''), /^ERR_UNKNOWN_GROUP /);
  t.false(/\bat .+\.(ts|js):\d+/.test(await mainText(page)));
});
