import test from 'ava';
import http from 'node:http';
import { encodeAssignment, encodeSubscription } from '../../src/net/groups/consumer-protocol.js';
import { getJson, send, startStack, type Stack } from './helpers.js';

async function stackWithOrders(t: Parameters<typeof startStack>[0]): Promise<Stack> {
  const s = await startStack(t);
  await s.log.createTopic('orders', { partitions: 2 });
  await s.log.append('orders', 0, Array.from({ length: 30 }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ n: i }), timestamp: 1_700_000_000_000 + i * 1000 })));
  await s.log.append('orders', 1, [{ key: null, value: 'plain text' }, { key: Buffer.from([0, 1, 0xff]), value: Buffer.from([0xde, 0xad, 0xbe, 0xef]), headers: { trace: 'abc', empty: null } }]);
  return s;
}

/** Every error answer: typed JSON, the status, and no stack trace anywhere in it. */
function assertError(t: Parameters<typeof startStack>[0], a: { status: number; body: any; contentType: string | null }, status: number, code: string): void {
  t.is(a.status, status, JSON.stringify(a.body));
  t.is(a.body?.error?.code, code);
  t.is(typeof a.body.error.message, 'string');
  t.true(a.body.error.message.length > 0);
  t.deepEqual(Object.keys(a.body.error).sort(), ['code', 'message']);
  t.false(/\n\s+at /.test(JSON.stringify(a.body)), 'no stack trace');
  t.regex(a.contentType ?? '', /^application\/json/);
}

test('overview and topic detail report topics, offsets, sizes and settings', async (t) => {
  const s = await stackWithOrders(t);
  const o = await getJson(`${s.base}/api/overview`);
  t.is(o.status, 200);
  t.deepEqual(o.body.topics.map((x: any) => [x.name, x.partitions, x.records]), [['orders', 2, 32]]);
  t.is(o.body.partitions, 2);
  t.is(o.body.broker.port, s.broker.port);
  t.true(o.body.diskBytes > 0);
  const d = await getJson(`${s.base}/api/topics/orders`);
  t.is(d.status, 200);
  t.deepEqual(d.body.partitionList.map((p: any) => [p.partition, p.earliestOffset, p.latestOffset, p.highWatermark, p.logEndOffset, p.segments]), [[0, 0, 30, 30, 30, 1], [1, 0, 2, 2, 2, 1]]);
  t.is(d.body.config.retentionMs, 7 * 24 * 3600 * 1000);
  t.is(d.body.config.retentionBytes, -1);
});

test('records pages: from an offset, by time, next and previous, rendered as JSON, text and hex with headers', async (t) => {
  const s = await stackWithOrders(t);
  const p1 = await getJson(`${s.base}/api/topics/orders/records?partition=0&offset=5&limit=10`);
  t.is(p1.status, 200);
  t.deepEqual(p1.body.records.map((r: any) => r.offset), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
  t.is(p1.body.nextOffset, 15);
  t.is(p1.body.prevOffset, 0);
  t.deepEqual(p1.body.records[0].key, { encoding: 'text', text: 'k5', sizeBytes: 2, truncated: false });
  t.deepEqual(p1.body.records[0].value, { encoding: 'json', text: '{\n  "n": 5\n}', sizeBytes: 7, truncated: false });
  t.is(p1.body.records[0].time, new Date(1_700_000_005_000).toISOString());
  const next = await getJson(`${s.base}/api/topics/orders/records?partition=0&offset=${p1.body.nextOffset}&limit=10`);
  t.deepEqual(next.body.records.map((r: any) => r.offset), [15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
  const prev = await getJson(`${s.base}/api/topics/orders/records?partition=0&offset=${next.body.prevOffset}&limit=10`);
  t.is(prev.body.records[0].offset, 5);
  // Last page: without an offset, the last `limit` records.
  const last = await getJson(`${s.base}/api/topics/orders/records?partition=0&limit=4`);
  t.deepEqual(last.body.records.map((r: any) => r.offset), [26, 27, 28, 29]);
  t.is(last.body.nextOffset, 30);
  // By time: the first record at or after 1_700_000_012_500 is offset 13.
  const byTime = await getJson(`${s.base}/api/topics/orders/records?partition=0&time=${encodeURIComponent(new Date(1_700_000_012_500).toISOString())}&limit=2`);
  t.deepEqual(byTime.body.records.map((r: any) => r.offset), [13, 14]);
  t.is(byTime.body.offset, 13);
  // A time past the last record: an empty page at the latest offset.
  const late = await getJson(`${s.base}/api/topics/orders/records?partition=0&time=2099-01-01T00:00:00Z`);
  t.deepEqual([late.body.records.length, late.body.offset], [0, 30]);
  const p = await getJson(`${s.base}/api/topics/orders/records?partition=1&offset=0`);
  t.deepEqual(p.body.records[0].key, { encoding: 'null', text: '', sizeBytes: 0, truncated: false });
  t.deepEqual(p.body.records[0].value, { encoding: 'text', text: 'plain text', sizeBytes: 10, truncated: false });
  t.deepEqual(p.body.records[1].key, { encoding: 'hex', text: '00 01 ff', sizeBytes: 3, truncated: false });
  t.deepEqual(p.body.records[1].value, { encoding: 'hex', text: 'de ad be ef', sizeBytes: 4, truncated: false });
  t.deepEqual(p.body.records[1].headers, [
    { key: 'trace', value: { encoding: 'text', text: 'abc', sizeBytes: 3, truncated: false } },
    { key: 'empty', value: { encoding: 'null', text: '', sizeBytes: 0, truncated: false } },
  ]);
});

test('create and delete a topic; deleting drops its committed offsets', async (t) => {
  const s = await startStack(t);
  const created = await send(s.base, 'POST', '/api/topics', { name: 'payments', partitions: 3, retentionMs: 3_600_000 });
  t.is(created.status, 201);
  t.is(created.body.partitions.length, 3);
  t.is(s.log.describeTopic('payments').config.retentionMs, 3_600_000);
  assertError(t, await send(s.base, 'POST', '/api/topics', { name: 'payments' }), 409, 'ERR_TOPIC_EXISTS');
  await s.broker.offsets.commit('g', [{ topic: 'payments', partition: 0, offset: 0 }]);
  const deleted = await send(s.base, 'DELETE', '/api/topics/payments');
  t.deepEqual([deleted.status, deleted.body], [200, { deleted: 'payments' }]);
  t.deepEqual(s.log.listTopics(), []);
  t.is(s.broker.offsets.describe('g'), null);
  assertError(t, await send(s.base, 'DELETE', '/api/topics/payments'), 404, 'ERR_UNKNOWN_TOPIC');
});

test('bad input gets a typed JSON error with its HTTP status and no stack trace', async (t) => {
  const s = await stackWithOrders(t);
  const b = s.base;
  assertError(t, await getJson(`${b}/api/topics/nope`), 404, 'ERR_UNKNOWN_TOPIC');
  assertError(t, await getJson(`${b}/api/topics/nope/records?partition=0`), 404, 'ERR_UNKNOWN_TOPIC');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=7`), 404, 'ERR_UNKNOWN_PARTITION');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=0&offset=31`), 416, 'ERR_OFFSET_OUT_OF_RANGE');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=0&offset=-1`), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=0&offset=abc`), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=0&limit=100000`), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=0&limit=0`), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=0&time=yesterday`), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await getJson(`${b}/api/topics/orders/records?partition=0&time=2024-01-01T00:00:00Z&offset=1`), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await getJson(`${b}/api/topics/%E0%A4%A`), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await getJson(`${b}/api/groups/nobody`), 404, 'ERR_UNKNOWN_GROUP');
  assertError(t, await getJson(`${b}/api/nothing-here`), 404, 'ERR_NOT_FOUND');
  assertError(t, await getJson(`${b}/no/such/page`), 404, 'ERR_NOT_FOUND');
  assertError(t, await getJson(`${b}/assets/../package.json`), 404, 'ERR_NOT_FOUND');
  assertError(t, await getJson(`${b}/assets/..%2Fpackage.json`), 404, 'ERR_NOT_FOUND');
  assertError(t, await send(b, 'PUT', '/api/overview', {}), 405, 'ERR_METHOD_NOT_ALLOWED');
  assertError(t, await send(b, 'POST', '/api/topics/orders/records', {}), 405, 'ERR_METHOD_NOT_ALLOWED');
  // Malformed bodies.
  assertError(t, await getJson(`${b}/api/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": "x",' }), 400, 'ERR_BAD_BODY');
  assertError(t, await send(b, 'POST', '/api/topics', ['x']), 400, 'ERR_BAD_BODY');
  assertError(t, await send(b, 'POST', '/api/topics', { name: 'x', colour: 'red' }), 400, 'ERR_BAD_BODY');
  assertError(t, await send(b, 'POST', '/api/topics', { name: 'x', partitions: '3' }), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await send(b, 'POST', '/api/topics', { name: 'x', partitions: 0 }), 400, 'ERR_INVALID_ARGUMENT');
  assertError(t, await send(b, 'POST', '/api/topics', { name: '../etc' }), 400, 'ERR_INVALID_TOPIC');
  assertError(t, await send(b, 'POST', '/api/topics', { name: 'x'.repeat(70 * 1024) }), 413, 'ERR_BODY_TOO_LARGE');
  assertError(t, await getJson(`${b}/api/topics`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"name":"x"}' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
  assertError(t, await getJson(`${b}/api/topics/orders`, { method: 'DELETE' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE');
  t.deepEqual(s.log.listTopics(), ['orders'], 'no call above changed anything');
});

test('mutating calls from another origin are refused; same-origin ones pass', async (t) => {
  const s = await stackWithOrders(t);
  const host = new URL(s.base).host;
  assertError(t, await send(s.base, 'POST', '/api/topics', { name: 'evil' }, { origin: 'http://attacker.example' }), 403, 'ERR_CROSS_ORIGIN');
  assertError(t, await send(s.base, 'DELETE', '/api/topics/orders', undefined, { origin: 'http://localhost:1' }), 403, 'ERR_CROSS_ORIGIN');
  assertError(t, await send(s.base, 'POST', '/api/topics', { name: 'evil' }, { origin: 'null' }), 403, 'ERR_CROSS_ORIGIN');
  assertError(t, await send(s.base, 'DELETE', '/api/topics/orders', undefined, { 'sec-fetch-site': 'cross-site' }), 403, 'ERR_CROSS_ORIGIN');
  assertError(t, await send(s.base, 'DELETE', '/api/topics/orders', undefined, { 'sec-fetch-site': 'same-site' }), 403, 'ERR_CROSS_ORIGIN');
  t.deepEqual(s.log.listTopics(), ['orders']);
  const ok = await send(s.base, 'POST', '/api/topics', { name: 'fine' }, { origin: `http://${host}`, 'sec-fetch-site': 'same-origin' });
  t.is(ok.status, 201);
  t.deepEqual(s.log.listTopics(), ['fine', 'orders']);
});

test('groups: committed offsets and lag, members and assignments from the coordinator', async (t) => {
  const s = await stackWithOrders(t);
  await s.broker.offsets.commit('billing', [{ topic: 'orders', partition: 0, offset: 12 }, { topic: 'orders', partition: 1, offset: 2 }]);
  const c = s.broker.coordinator;
  const join = await c.join({ groupId: 'billing', memberId: '', clientId: 'app', clientHost: '/127.0.0.1', sessionTimeoutMs: 30_000, protocolType: 'consumer', protocols: [{ name: 'range', metadata: encodeSubscription({ topics: ['orders'] }) }] });
  t.is(join.error, null);
  const sync = await c.sync({ groupId: 'billing', memberId: join.memberId, generationId: join.generationId, assignments: [{ memberId: join.memberId, assignment: encodeAssignment({ partitions: [{ topic: 'orders', partitions: [0, 1] }] }) }] });
  t.is(sync.error, null);
  const g = await getJson(`${s.base}/api/groups/billing`);
  t.is(g.status, 200);
  t.true(g.body.membersTracked);
  t.is(g.body.state, 'Stable');
  t.deepEqual(g.body.members.map((m: any) => [m.memberId, m.clientId, m.assignment]), [[join.memberId, 'app', [{ topic: 'orders', partitions: [0, 1] }]]]);
  t.deepEqual(g.body.partitions.map((p: any) => [p.topic, p.partition, p.committedOffset, p.latestOffset, p.lag, p.memberId]), [
    ['orders', 0, 12, 30, 18, join.memberId],
    ['orders', 1, 2, 2, 0, join.memberId],
  ]);
  t.is(g.body.totalLag, 18);
  const list = await getJson(`${s.base}/api/groups`);
  t.deepEqual(list.body.groups, [{ name: 'billing', state: 'Stable', members: 1, topics: ['orders'], totalLag: 18 }]);
  // A group known only from its offsets.
  await s.broker.offsets.commit('audit', [{ topic: 'orders', partition: 0, offset: 30 }]);
  const audit = await getJson(`${s.base}/api/groups/audit`);
  t.deepEqual([audit.body.state, audit.body.members, audit.body.totalLag], [null, [], 0]);
});

test('server-sent events deliver samples whose rates follow appends; /metrics and the pages are served', async (t) => {
  const s = await stackWithOrders(t);
  const samples: any[] = [];
  const req = http.get(`${s.base}/api/events`);
  const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
  t.is(res.headers['content-type'], 'text/event-stream');
  let buffer = '';
  const gotOne = new Promise<void>((resolve) => {
    res.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
        const event = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const data = /^data: (.*)$/m.exec(event);
        if (/^event: sample$/m.test(event) && data !== null) samples.push(JSON.parse(data[1]!));
        if (samples.some((x) => x.topics.orders?.recordsInPerSec > 0)) resolve();
      }
    });
  });
  // Keep appending until a sample has seen some.
  const timer = setInterval(() => void s.log.append('orders', 0, [{ value: 'more' }]), 50);
  await gotOne;
  clearInterval(timer);
  req.destroy();
  const withData = samples.find((x) => x.topics.orders?.recordsInPerSec > 0);
  t.true(withData.recordsInPerSec >= withData.topics.orders.recordsInPerSec);
  t.true(withData.flushes > 0, 'sync appends flush');
  const metrics = await fetch(`${s.base}/metrics`);
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /commitlog_partition_log_end_offset\{topic="orders",partition="1"\} 2/);
  for (const p of ['/', '/topics/orders', '/topics/orders/records?partition=0&offset=3', '/groups', '/groups/billing']) {
    const page = await fetch(s.base + p);
    t.is(page.status, 200, p);
    t.regex(await page.text(), /<script type="module" src="\/assets\/app.js">/);
  }
  const js = await fetch(`${s.base}/assets/app.js`);
  t.is(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
});

test('on a loopback address only loopback Host names are answered (DNS rebinding)', async (t) => {
  const s = await startStack(t);
  const port = s.console.port;
  const ask = (host: string): Promise<{ status: number; body: any }> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/api/overview', headers: { host } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      });
      req.on('error', reject);
    });
  const rebound = await ask(`rebound.example:${port}`);
  t.deepEqual([rebound.status, rebound.body.error.code], [403, 'ERR_HOST_NOT_ALLOWED']);
  t.is((await ask(`localhost:${port}`)).status, 200);
  t.is((await ask(`127.0.0.1:${port}`)).status, 200);
});

test('event streams are capped at 64; a closed one frees its place', async (t) => {
  const s = await startStack(t, { intervalMs: 60_000 });
  const agent = new http.Agent({ keepAlive: false, maxSockets: 100 });
  t.teardown(() => agent.destroy());
  const open = (): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> =>
    new Promise((resolve, reject) => {
      const req = http.get(`${s.base}/api/events`, { agent }, (res) => resolve({ req, res }));
      req.on('error', reject);
    });
  const streams = [];
  for (let i = 0; i < 64; i++) streams.push(await open());
  t.true(streams.every((x) => x.res.statusCode === 200));
  const refused = await getJson(`${s.base}/api/events`);
  t.deepEqual([refused.status, refused.body.error.code], [503, 'ERR_LIMIT']);
  streams[0]!.req.destroy();
  let again = await open();
  // The server sees the close a moment later: retry until the place is free.
  while (again.res.statusCode !== 200) {
    again.req.destroy();
    await new Promise((r) => setTimeout(r, 20));
    again = await open();
  }
  t.is(again.res.statusCode, 200);
  for (const x of [...streams, again]) x.req.destroy();
});
