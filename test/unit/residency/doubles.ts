/**
 * Test doubles for residency: Durable Object namespaces whose `jurisdiction()` works (as in
 * production, unlike local workerd) and records what was asked, and an environment whose
 * bindings record every use, so tests can prove which ledger, health object, D1 database, queue
 * and bucket a request touched.
 */

/** One use of a binding: which binding, in which jurisdiction (DO namespaces), what was done. */
export interface BindingUse {
  binding: string;
  /** The jurisdiction the namespace was restricted to; null: the plain namespace. */
  jurisdiction: string | null;
  op: string;
  /** The object name (DO), SQL (D1), or key (R2). */
  detail: string | null;
}

const NAMESPACE_OPS = new Set(["getByName", "idFromName", "idFromString", "get", "newUniqueId"]);

function call(target: object, prop: string | symbol, args: unknown[]): unknown {
  const fn: unknown = Reflect.get(target, prop);
  if (typeof fn !== "function") throw new Error(`${String(prop)} is not a function`);
  return Reflect.apply(fn, target, args);
}

function passThrough(target: object, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop);
  return typeof value === "function" ? value.bind(target) : value;
}

/**
 * `real` as a namespace whose `jurisdiction(j)` returns a recording view of `real` itself: the
 * objects are the local ones, but every use says which jurisdiction the code asked for.
 */
export function recordingNamespace<N extends object>(binding: string, real: N, uses: BindingUse[], jurisdiction: string | null = null): N {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "jurisdiction") {
        return (j: string) => {
          uses.push({ binding, jurisdiction: j, op: "jurisdiction", detail: null });
          return recordingNamespace(binding, target, uses, j);
        };
      }
      if (typeof prop === "string" && NAMESPACE_OPS.has(prop)) {
        return (...args: unknown[]) => {
          uses.push({ binding, jurisdiction, op: prop, detail: typeof args[0] === "string" ? args[0] : null });
          return call(target, prop, args);
        };
      }
      return passThrough(target, prop);
    },
  });
}

/** A D1 database, queue or bucket that records each operation (SQL for D1). */
export function recordingBinding<B extends object>(binding: string, real: B, uses: BindingUse[], ops: readonly string[]): B {
  return new Proxy(real, {
    get(target, prop) {
      if (typeof prop === "string" && ops.includes(prop)) {
        return (...args: unknown[]) => {
          uses.push({ binding, jurisdiction: null, op: prop, detail: typeof args[0] === "string" ? args[0] : null });
          return call(target, prop, args);
        };
      }
      return passThrough(target, prop);
    },
  });
}

const D1_OPS = ["prepare", "batch", "exec", "withSession", "dump"];
const QUEUE_OPS = ["send", "sendBatch"];
const R2_OPS = ["put", "get", "head", "delete", "list", "createMultipartUpload"];

/**
 * `base` with every residency-relevant binding recording its uses into `uses`: the Durable Object
 * namespaces (with working jurisdictions), both D1 databases, the trace queues and buckets.
 */
export function recordingEnv(base: Env, uses: BindingUse[]): Env {
  return {
    ...base,
    LEDGER: recordingNamespace("LEDGER", base.LEDGER, uses),
    LEDGER_SHARD: recordingNamespace("LEDGER_SHARD", base.LEDGER_SHARD, uses),
    HEALTH: recordingNamespace("HEALTH", base.HEALTH, uses),
    DB: recordingBinding("DB", base.DB, uses, D1_OPS),
    DB_EU: recordingBinding("DB_EU", base.DB_EU, uses, D1_OPS),
    TRACES: recordingBinding("TRACES", base.TRACES, uses, QUEUE_OPS),
    TRACES_EU: recordingBinding("TRACES_EU", base.TRACES_EU, uses, QUEUE_OPS),
    TRACE_DELIVERIES: recordingBinding("TRACE_DELIVERIES", base.TRACE_DELIVERIES, uses, QUEUE_OPS),
    TRACE_DELIVERIES_EU: recordingBinding("TRACE_DELIVERIES_EU", base.TRACE_DELIVERIES_EU, uses, QUEUE_OPS),
    TRACE_CONTENT: recordingBinding("TRACE_CONTENT", base.TRACE_CONTENT, uses, R2_OPS),
    TRACE_CONTENT_EU: recordingBinding("TRACE_CONTENT_EU", base.TRACE_CONTENT_EU, uses, R2_OPS),
  };
}

/**
 * A namespace double with working jurisdictions and no real objects: ids are `<jurisdiction or
 * "default">:<name>`, so the same name yields a different id in each jurisdiction, and every
 * lookup is recorded with the jurisdiction it was asked in. `stub(jurisdiction, name)` builds
 * what `getByName` returns.
 */
export class NamespaceDouble<S> {
  readonly asked: Array<{ jurisdiction: string | null; name: string }>;
  readonly #jurisdiction: string | null;
  readonly #stub: (jurisdiction: string | null, name: string) => S;

  constructor(stub: (jurisdiction: string | null, name: string) => S, jurisdiction: string | null = null, asked: Array<{ jurisdiction: string | null; name: string }> = []) {
    this.#stub = stub;
    this.#jurisdiction = jurisdiction;
    this.asked = asked;
  }

  jurisdiction(jurisdiction: DurableObjectJurisdiction): NamespaceDouble<S> {
    return new NamespaceDouble(this.#stub, jurisdiction, this.asked);
  }

  idFromName(name: string): string {
    return `${this.#jurisdiction ?? "default"}:${name}`;
  }

  getByName(name: string): S {
    this.asked.push({ jurisdiction: this.#jurisdiction, name });
    return this.#stub(this.#jurisdiction, name);
  }
}

/** A namespace whose `jurisdiction()` throws `error` (local workerd, or a failing platform). */
export function throwingNamespace<N extends object>(real: N, error: Error): N {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === "jurisdiction") {
        return () => {
          throw error;
        };
      }
      return passThrough(target, prop);
    },
  });
}
