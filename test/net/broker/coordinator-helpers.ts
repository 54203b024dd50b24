/** Test helpers for the group coordinator: timers the test drives, and request builders. */
import { GroupCoordinator, type CoordinatorEvent, type CoordinatorTimers, type GroupCoordinatorOptions, type JoinGroupRequest } from '../../../src/net/broker/coordinator.js';

/** setTimeout/clearTimeout on a virtual clock: nothing fires until advance() passes its time. */
export class FakeTimers implements CoordinatorTimers {
  now = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Runs every timer due within ms, in time order (ties in creation order), the clock set to each one's time. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
    }
    this.now = end;
  }

  get pending(): number {
    return this.timers.size;
  }
}

export interface Harness {
  co: GroupCoordinator;
  timers: FakeTimers;
  events: CoordinatorEvent[];
}

export function harness(options: GroupCoordinatorOptions = {}): Harness {
  const timers = new FakeTimers();
  const events: CoordinatorEvent[] = [];
  const co = new GroupCoordinator({
    initialRebalanceDelayMs: 0, minSessionTimeoutMs: 1000, maxSessionTimeoutMs: 60_000,
    timers, observer: (e) => events.push(e), ...options,
  });
  return { co, timers, events };
}

export const meta = (s: string) => Buffer.from(s);

export function joinReq(over: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
  return {
    groupId: 'g', memberId: '', clientId: 'client', clientHost: '/127.0.0.1',
    sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 5_000, protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: meta('sub') }], ...over,
  };
}

/** A promise's outcome, readable synchronously once microtasks ran (await settle()). */
export interface Tracked<T> {
  done: boolean;
  value: T | undefined;
}

export function track<T>(p: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { done: false, value: undefined };
  void p.then((v) => { t.done = true; t.value = v; });
  return t;
}

export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
