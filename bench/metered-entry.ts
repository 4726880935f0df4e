/**
 * @module bench/metered-entry
 * The gateway (src/index.ts) with meters and an optional distance to its ledger, for the
 * benchmark only: bench/run.mjs bundles it like the production Worker and serves it from its own
 * Miniflare. Nothing here changes what the gateway does, only what it costs and how far away its
 * ledger seems.
 *
 * Meters (module-global: in local workerd the Worker and its Durable Objects share one isolate,
 * which the benchmark checks by finding the objects' SQL rows in the Worker's counters):
 * - Worker invocations: one per request, the bench routes excepted.
 * - Durable Object requests: every method call on a stub from `env.LEDGER` / `env.LEDGER_SHARD`
 *   (each RPC call is one billed request), counted by the caller, including the calls a
 *   LedgerShard makes to its Ledger; plus `alarm()` invocations.
 * - Durable Object SQLite rows: every cursor `ctx.storage.sql.exec` returns is kept, and its
 *   `rowsRead` / `rowsWritten` are summed when the counters are read (a cursor counts the rows
 *   as it is consumed). Each `setAlarm()` is one more row written, as Cloudflare bills it.
 * - D1 rows: `meta.rows_read` / `rows_written` of every D1 answer. The public API returns `meta`
 *   only from `run()`, `all()` and `batch()`, not from `first()`, `raw()` (drizzle's selects) or
 *   `exec()`, so the meter sits one level lower, on the binding's session (`_send` and
 *   `_queryOrThrow` of workerd's `cloudflare-internal:d1-api`), through which all of them pass.
 *   If workerd changes those internals the Worker throws, so the smoke run fails loudly.
 * - The Health object's calls and rows, like the ledger's (`env.HEALTH` is metered the same way).
 * - Queue operations, as Cloudflare bills them (one per 64 KB written, read or deleted): every
 *   message sent through `env.TRACES` / `env.TRACE_DELIVERIES` (`send`, `sendBatch`) is a write
 *   — a TRACES message is a batch of traces, counted once by its size, not per trace; every
 *   message handed to this Worker's `queue()` a read, and a delete unless it is retried.
 *   Consumer invocations are counted apart (they are billed as Worker requests). The producer's
 *   batcher keys its windows by the queue binding object: `benchEnv` wraps each env once, so the
 *   metered TRACES binding is one object and batching works as deployed.
 * - R2 operations on the trace content bucket: `put` class A, `get`/`head` class B.
 *
 * Distance: `BENCH_LEDGER_DELAY_MS` delays every call on a ledger stub by that many ms before it
 * is made. `BENCH_LEDGER_DELAY_SCOPE` = `all` (default) delays both namespaces; `ledger` only
 * `env.LEDGER`, including the LedgerShard's own calls to its Ledger (its `env` is wrapped too),
 * which models shards placed near the traffic and one Ledger far away.
 *
 * Ledger off: after `POST /__bench/ledger/off` every ledger stub is replaced by one that answers
 * admit, settle and release in the Worker at once (ample balance, no limits, nothing stored), so
 * the same bundle in the same process measures a request without its ledger; `POST
 * /__bench/ledger/on` restores the objects. The difference is what admission and settlement add.
 *
 * Bench routes (this bundle is never deployed): `GET /__bench/meter`, `POST /__bench/meter/reset`,
 * `POST /__bench/ledger/off`, `POST /__bench/ledger/on`.
 */
import gateway, { Health as GatewayHealth, Ledger as GatewayLedger, LedgerShard as GatewayLedgerShard } from "../src/index";
import type { AdmitInput, AdmitResult, SettleInput, SettleOutcome, SettleResult } from "../src/billing/ledger-schema";

type BenchEnv = Env & { BENCH_LEDGER_DELAY_MS?: string; BENCH_LEDGER_DELAY_SCOPE?: string };
type Cursor = SqlStorageCursor<Record<string, SqlStorageValue>>;

const counters = {
  workerInvocations: 0,
  doRequests: 0,
  /** The part of `doRequests` made on ledger stubs (Ledger, LedgerShard). */
  ledgerRequests: 0,
  doAlarms: 0,
  /** Wall time callers waited on Durable Object calls: an upper bound for the objects' active time. */
  doCallMs: 0,
  doSetAlarms: 0,
  d1Queries: 0,
  /** Round trips to D1: a batch of statements is one call (and as many queries). */
  d1Calls: 0,
  d1RowsRead: 0,
  d1RowsWritten: 0,
  queueWrites: 0,
  queueReads: 0,
  queueDeletes: 0,
  queueInvocations: 0,
  r2ClassA: 0,
  r2ClassB: 0,
};
let cursors: Cursor[] = [];
/** When the meter was last reset: queue traffic of traces started before it is not counted. */
let windowStart = 0;

function readMeter() {
  let doRowsRead = 0;
  let doRowsWritten = counters.doSetAlarms;
  for (const cursor of cursors) {
    doRowsRead += cursor.rowsRead;
    doRowsWritten += cursor.rowsWritten;
  }
  return { ...counters, doRowsRead, doRowsWritten, queueOperations: counters.queueWrites + counters.queueReads + counters.queueDeletes };
}

function resetMeter(): void {
  windowStart = Date.now();
  for (const key of Object.keys(counters) as (keyof typeof counters)[]) counters[key] = 0;
  cursors = [];
}

let ledgerOff = false;
let offHolds = 0;

/** The ledger switched off: every request admitted with room to spare, settled as charged. */
const ledgerOffStub = {
  admit: async (input: AdmitInput): Promise<AdmitResult> => ({
    ok: true,
    holdId: `off-${++offHolds}`,
    reservedMicros: 0,
    maxTokens: input.requestedMaxTokens ?? input.modelMaxTokens,
    capped: false,
    rate: null,
    headroom: { freeMicros: Number.MAX_SAFE_INTEGER, ratesTight: false },
  }),
  settle: async (input: SettleInput): Promise<SettleResult> => ({ settled: true, chargedMicros: input.costMicros, balanceMicros: 0 }),
  settleBatch: async (inputs: SettleInput[]): Promise<SettleOutcome[]> => inputs.map((input) => ({ ok: true, result: { settled: true, chargedMicros: input.costMicros, balanceMicros: 0 } })),
  release: async (): Promise<boolean> => true,
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A stub whose method calls are counted, timed and, with a delay, made that much later. */
function meteredStub<S extends object>(stub: S, delayMs: number, ledger: boolean): S {
  return new Proxy(stub, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      // `then` stays as it is: a stub is not a thenable, and awaiting one must not call it.
      if (typeof prop !== "string" || prop === "then" || typeof value !== "function") return value;
      return async (...args: unknown[]): Promise<unknown> => {
        if (delayMs > 0) await sleep(delayMs);
        counters.doRequests++;
        if (ledger) counters.ledgerRequests++;
        const started = Date.now();
        try {
          return await Reflect.apply(value, target, args);
        } finally {
          counters.doCallMs += Date.now() - started;
        }
      };
    },
  });
}

/** `ledger`: a Ledger or LedgerShard namespace (delayed by the distance, replaced when the ledger is off). */
function meteredNamespace<T extends Rpc.DurableObjectBranded | undefined>(namespace: DurableObjectNamespace<T>, delayMs: number, ledger: boolean): DurableObjectNamespace<T> {
  return new Proxy(namespace, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "get" || prop === "getByName") {
        return (...args: unknown[]): unknown => {
          if (ledger && ledgerOff) return ledgerOffStub;
          const stub: unknown = Reflect.apply(value, target, args);
          return typeof stub === "object" && stub !== null ? meteredStub(stub, delayMs, ledger) : stub;
        };
      }
      return value.bind(target);
    },
  });
}

type Answer = { meta?: { rows_read?: unknown; rows_written?: unknown } };

function tallyD1(answer: unknown): void {
  if (Array.isArray(answer)) {
    for (const item of answer) tallyD1(item);
    return;
  }
  if (typeof answer !== "object" || answer === null) return;
  const meta = (answer as Answer).meta;
  counters.d1Queries++;
  if (typeof meta?.rows_read === "number") counters.d1RowsRead += meta.rows_read;
  if (typeof meta?.rows_written === "number") counters.d1RowsWritten += meta.rows_written;
}

const meteredSessions = new WeakSet<object>();

/** Count the rows of every D1 query through `db` (see the module comment for why so low). */
function meterD1(db: D1Database): void {
  const session: unknown = Reflect.get(db, "alwaysPrimarySession");
  if (typeof session !== "object" || session === null) throw new Error("bench: the D1 binding has no alwaysPrimarySession; update bench/metered-entry.ts");
  if (meteredSessions.has(session)) return;
  for (const name of ["_send", "_queryOrThrow"]) {
    const original: unknown = Reflect.get(session, name);
    if (typeof original !== "function") throw new Error(`bench: the D1 session has no ${name}(); update bench/metered-entry.ts`);
    Object.defineProperty(session, name, {
      value: async function (this: unknown, ...args: unknown[]): Promise<unknown> {
        const answer: unknown = await Reflect.apply(original, this, args);
        counters.d1Calls++;
        tallyD1(answer);
        return answer;
      },
    });
  }
  meteredSessions.add(session);
}

/**
 * The `started_at` a queue message is counted by: its trace's (a bare trace, or a delivery of
 * one), or the latest of a batch's traces — a batch that carries any trace of this run is this
 * run's message, billed whole.
 */
function traceStartedAt(body: unknown): number | null {
  if (typeof body !== "object" || body === null) return null;
  const direct: unknown = Reflect.get(body, "started_at");
  if (typeof direct === "number") return direct;
  const traces: unknown = Reflect.get(body, "traces");
  if (Array.isArray(traces)) {
    const times = traces.map((t: unknown) => traceStartedAt(t)).filter((t): t is number => t !== null);
    return times.length > 0 ? Math.max(...times) : null;
  }
  const trace: unknown = Reflect.get(body, "trace");
  return typeof trace === "object" && trace !== null ? traceStartedAt(trace) : null;
}

/**
 * Billed units of one message: one per started 64 KB; zero for a message about requests from
 * before the last reset, so a run counts exactly its own requests' traces, however far behind
 * the consumers are when it starts or ends.
 */
function queueUnits(body: unknown): number {
  const startedAt = traceStartedAt(body);
  if (startedAt !== null && startedAt < windowStart) return 0;
  return Math.max(1, Math.ceil(new TextEncoder().encode(JSON.stringify(body) ?? "").byteLength / 65_536));
}

/** A producer binding whose sends are counted as queue writes. */
function meteredQueue<Body>(queue: Queue<Body>): Queue<Body> {
  return new Proxy(queue, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "send") {
        return (body: Body, options?: QueueSendOptions) => {
          counters.queueWrites += queueUnits(body);
          return Reflect.apply(value, target, [body, options]);
        };
      }
      if (prop === "sendBatch") {
        return (messages: Iterable<MessageSendRequest<Body>>, options?: QueueSendBatchOptions) => {
          const list = [...messages];
          for (const m of list) counters.queueWrites += queueUnits(m.body);
          return Reflect.apply(value, target, [list, options]);
        };
      }
      return value.bind(target);
    },
  });
}

/** An R2 bucket whose operations are counted by class. */
function meteredBucket(bucket: R2Bucket): R2Bucket {
  const classA = new Set(["put", "createMultipartUpload", "list", "delete"]);
  const classB = new Set(["get", "head"]);
  return new Proxy(bucket, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]): unknown => {
        if (typeof prop === "string" && classA.has(prop) && prop !== "delete") counters.r2ClassA++;
        if (typeof prop === "string" && classB.has(prop)) counters.r2ClassB++;
        return Reflect.apply(value, target, args);
      };
    },
  });
}

const benchEnvs = new WeakMap<BenchEnv, BenchEnv>();

/** The gateway's env with metered (and possibly distant) ledger namespaces and a metered D1. */
function benchEnv(env: BenchEnv): BenchEnv {
  const cached = benchEnvs.get(env);
  if (cached) return cached;
  meterD1(env.DB);
  const delayMs = Number(env.BENCH_LEDGER_DELAY_MS ?? 0) || 0;
  const shardDelayMs = env.BENCH_LEDGER_DELAY_SCOPE === "ledger" ? 0 : delayMs;
  const wrapped: BenchEnv = {
    ...env,
    LEDGER: meteredNamespace(env.LEDGER, delayMs, true),
    LEDGER_SHARD: meteredNamespace(env.LEDGER_SHARD, shardDelayMs, true),
    HEALTH: meteredNamespace(env.HEALTH, 0, false),
    TRACES: meteredQueue(env.TRACES),
    TRACE_DELIVERIES: meteredQueue(env.TRACE_DELIVERIES),
    TRACE_CONTENT: meteredBucket(env.TRACE_CONTENT),
  };
  benchEnvs.set(env, wrapped);
  return wrapped;
}

/** Keep every cursor the object's SQL returns, and count `setAlarm()` calls. */
function meterStorage(storage: DurableObjectStorage): void {
  const sql = storage.sql;
  const exec = sql.exec;
  Object.defineProperty(sql, "exec", {
    value: (query: string, ...bindings: unknown[]): Cursor => {
      const cursor = exec.call(sql, query, ...bindings);
      cursors.push(cursor);
      return cursor;
    },
  });
  const setAlarm = storage.setAlarm;
  Object.defineProperty(storage, "setAlarm", {
    value: (time: number | Date, options?: DurableObjectSetAlarmOptions): Promise<void> => {
      counters.doSetAlarms++;
      return setAlarm.call(storage, time, options);
    },
  });
}

export class Ledger extends GatewayLedger {
  constructor(ctx: DurableObjectState, env: BenchEnv) {
    meterStorage(ctx.storage);
    super(ctx, benchEnv(env));
  }

  override async alarm(): Promise<void> {
    counters.doAlarms++;
    await super.alarm();
  }
}

export class LedgerShard extends GatewayLedgerShard {
  constructor(ctx: DurableObjectState, env: BenchEnv) {
    meterStorage(ctx.storage);
    super(ctx, benchEnv(env));
  }

  override async alarm(): Promise<void> {
    counters.doAlarms++;
    await super.alarm();
  }
}

export class Health extends GatewayHealth {
  constructor(ctx: DurableObjectState, env: BenchEnv) {
    meterStorage(ctx.storage);
    super(ctx, benchEnv(env));
  }
}

/**
 * A consumer batch with its reads counted; `done()` counts a delete for every message the handler
 * did not retry (a handler that throws has every message retried: no delete).
 */
function meteredBatch(batch: MessageBatch): { batch: MessageBatch; done: () => void } {
  if (batch.messages.some((m) => queueUnits(m.body) > 0)) counters.queueInvocations++;
  const retried = new Set<Message>();
  for (const message of batch.messages) {
    counters.queueReads += queueUnits(message.body);
    const retry = message.retry.bind(message);
    Object.defineProperty(message, "retry", {
      value: (options?: QueueRetryOptions) => {
        retried.add(message);
        retry(options);
      },
    });
  }
  const retryAll = batch.retryAll.bind(batch);
  Object.defineProperty(batch, "retryAll", {
    value: (options?: QueueRetryOptions) => {
      for (const message of batch.messages) retried.add(message);
      retryAll(options);
    },
  });
  return { batch, done: () => void (counters.queueDeletes += batch.messages.filter((m) => !retried.has(m)).reduce((n, m) => n + queueUnits(m.body), 0)) };
}

export default {
  async fetch(request, env, ctx) {
    const { pathname } = new URL(request.url);
    if (pathname === "/__bench/meter" && request.method === "GET") return Response.json(readMeter());
    if (pathname === "/__bench/meter/reset" && request.method === "POST") {
      resetMeter();
      return Response.json(readMeter());
    }
    if ((pathname === "/__bench/ledger/off" || pathname === "/__bench/ledger/on") && request.method === "POST") {
      ledgerOff = pathname.endsWith("/off");
      return Response.json({ ledgerOff });
    }
    counters.workerInvocations++;
    return gateway.fetch(request, benchEnv(env), ctx);
  },
  async queue(batch, env, ctx) {
    const metered = meteredBatch(batch);
    await gateway.queue(metered.batch, benchEnv(env), ctx);
    metered.done();
  },
} satisfies ExportedHandler<BenchEnv>;
