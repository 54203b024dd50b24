/**
 * Mappings and V8's garbage collector (native/mapping.cc Mmap): a mapping's bytes are
 * not counted as V8 external memory (each large mapping used to start a full GC, which
 * made opening thousands of partitions quadratic), and a mapping nobody references is
 * still unmapped when its ArrayBuffer is collected.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as native from '../src/native.js';
import { tmpDir } from './helpers/tmp.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function mapsOf(file: string): number {
  return fs.readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.endsWith(file)).length;
}

test.serial('1,000 mappings of 1 GiB start no major garbage collection', async (t) => {
  const file = path.join(tmpDir(t), 'big.bin');
  const fd = fs.openSync(file, 'w+');
  t.teardown(() => fs.closeSync(fd));
  fs.ftruncateSync(fd, 2 ** 30);
  let majors = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (((e as unknown as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
  });
  observer.observe({ entryTypes: ['gc'] });
  const mappings: ArrayBuffer[] = [];
  for (let i = 0; i < 1000; i++) mappings.push(native.mmap(fd, 2 ** 30, 0, false, { path: file }));
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  t.is(mapsOf(file), 1000);
  // Before the fix: about 480 (one for most of the mmaps).
  t.true(majors <= 2, `${majors} major GCs`);
  for (const m of mappings) native.munmap(m);
  t.is(mapsOf(file), 0);
  t.true(mappings.every((m) => m.byteLength === 0));
});

test.serial('a mapping whose ArrayBuffer is collected is unmapped, and its bytes reached the file', async (t) => {
  const file = path.join(tmpDir(t), 'collected.bin');
  const fd = fs.openSync(file, 'w+');
  t.teardown(() => fs.closeSync(fd));
  fs.ftruncateSync(fd, 1 << 20);
  (() => {
    const m = native.mmap(fd, 1 << 20, 0, true, { path: file });
    new Uint8Array(m)[12345] = 0x42;
  })();
  t.is(mapsOf(file), 1);
  for (let i = 0; i < 10 && mapsOf(file) > 0; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.is(mapsOf(file), 0);
  t.is(fs.readFileSync(file)[12345], 0x42);
});
