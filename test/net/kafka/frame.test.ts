import test from 'ava';
import fc from 'fast-check';
import { CommitLogError } from '../../../src/errors.js';
import { KafkaFrameSplitter } from '../../../src/net/kafka/index.js';

function framed(payloads: Buffer[]): Buffer {
  return Buffer.concat(payloads.flatMap((p) => {
    const h = Buffer.alloc(4);
    h.writeInt32BE(p.length);
    return [h, p];
  }));
}

test('frames come out whole however the stream is cut (several per chunk, split across chunks)', (t) => {
  fc.assert(fc.property(
    fc.array(fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)), { maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 30 }), { minLength: 1, maxLength: 20 }),
    (payloads, cuts) => {
      const stream = framed(payloads);
      const s = new KafkaFrameSplitter(64);
      const got: Buffer[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const n = cuts[i % cuts.length]!;
        got.push(...s.push(stream.subarray(at, at + n)));
        at += n;
      }
      t.deepEqual(got.map((b) => b.toString('hex')), payloads.map((b) => b.toString('hex')));
      t.is(s.buffered, 0);
    },
  ));
});

test('a frame inside one chunk is a view of it, not a copy', (t) => {
  const chunk = framed([Buffer.from('abc'), Buffer.from('de')]);
  const [a, b] = new KafkaFrameSplitter().push(chunk);
  t.is(a!.buffer, chunk.buffer);
  t.is(b!.toString(), 'de');
});

test('a size above the maximum is ERR_FRAME_TOO_LARGE before any allocation, and sticky', (t) => {
  const s = new KafkaFrameSplitter(1024);
  const err = t.throws(() => s.push(Buffer.from([0x7f, 0xff, 0xff, 0xff])), { instanceOf: CommitLogError });
  t.is(err!.code, 'ERR_FRAME_TOO_LARGE');
  t.throws(() => s.push(framed([Buffer.from('ok')])), { code: 'ERR_FRAME_TOO_LARGE' });
});

test('a negative size is ERR_KAFKA_BAD_REQUEST', (t) => {
  t.throws(() => new KafkaFrameSplitter().push(Buffer.from([0xff, 0xff, 0xff, 0xfe])), { code: 'ERR_KAFKA_BAD_REQUEST' });
});

test('a size prefix split over chunks is read whole', (t) => {
  const s = new KafkaFrameSplitter();
  const stream = framed([Buffer.from('hello')]);
  t.deepEqual(s.push(stream.subarray(0, 1)), []);
  t.deepEqual(s.push(stream.subarray(1, 3)), []);
  t.deepEqual(s.push(stream.subarray(3, 6)), []);
  t.deepEqual(s.push(stream.subarray(6)).map(String), ['hello']);
});

test('an empty frame (size 0) is returned as an empty buffer', (t) => {
  t.deepEqual(new KafkaFrameSplitter().push(Buffer.alloc(4)).map((b) => b.length), [0]);
});
