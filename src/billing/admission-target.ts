/**
 * @module billing/admission-target
 * Which Durable Object admits a request: the workspace's `Ledger`, or one of its `LedgerShard`s
 * when the workspace is sharded (`ledger_shards` > 1, docs/ledger-leases.md). The chosen target
 * admits, settles and releases the request, so its hold is always found where it was made.
 *
 * The Ledger keeps what only it can keep exact: keys with a credit limit (the limit is not leased)
 * and plans holding any BYOK candidate (the monthly BYOK allowance is a workspace-wide counter,
 * and a shard cannot settle a hold as BYOK). Everything else goes to the key's shard, chosen by a
 * stable hash of the key id, so a key's own rate limits live on one object.
 *
 * Both come from the workspace's resident namespaces (residency/bindings): for an `eu` workspace
 * they are restricted to the `eu` jurisdiction, so its ledger and shards are created and kept in
 * the EU, and the same workspace name names different objects in different jurisdictions.
 */
import type { KeyContext } from "../auth/api-keys";
import type { Candidate } from "../routing/plan";
import type { AdmitInput, AdmitResult, SettleInput, SettleOutcome, SettleResult } from "./ledger-schema";
import { shardForKey, shardName } from "./ledger-shard-policy";
import type { ShardAdmitInput } from "./ledger-shard-schema";

/** The most shards a workspace may have (the admin API's bound; the shard accepts up to 256). */
export const MAX_LEDGER_SHARDS = 64;

/** One request's admission object: the same stub answers admit, settle and release. */
export interface AdmissionTarget {
  /** `ledger`, or the shard's Durable Object name (`<workspace>#shard-<n>`). */
  readonly name: string;
  /**
   * Names the object among every workspace's, in every jurisdiction: requests whose settlements
   * share it may share a `settleBatch` call (billing/settlement-window).
   */
  readonly objectKey: string;
  admit(input: AdmitInput): Promise<AdmitResult>;
  settle(input: SettleInput): Promise<SettleResult>;
  /**
   * Several settlements in one call. Gets a stub of its own when called, so any request of the
   * isolate may make the call for the others (a stub belongs to the request that got it).
   */
  settleBatch(inputs: SettleInput[]): Promise<SettleOutcome[]>;
  release(holdId: string): Promise<boolean>;
}

/** The RPC surface of a Ledger (and, with the shard's admission input, of a LedgerShard) used here. */
interface AdmissionRpc<Input> {
  admit(input: Input): Promise<AdmitResult>;
  settle(input: SettleInput): Promise<SettleResult>;
  settleBatch(inputs: SettleInput[]): Promise<SettleOutcome[]>;
  release(holdId: string): Promise<boolean>;
}

/**
 * Where a workspace's admission objects come from: its jurisdiction's namespaces
 * (`DurableObjectNamespace<Ledger>` and `<LedgerShard>` have this shape; tests pass doubles).
 */
export interface LedgerNamespaces {
  ledger: { getByName(name: string): AdmissionRpc<AdmitInput> };
  ledgerShard: { getByName(name: string): AdmissionRpc<ShardAdmitInput> };
}

/** Whether a request must be admitted by the workspace Ledger rather than a shard. */
export function needsLedger(shards: number, auth: KeyContext, candidates: readonly Candidate[]): boolean {
  return shards <= 1 || auth.key.limitMicros !== null || candidates.some((c) => c.byok);
}

/** The admission object for a request of `auth`'s key that may be served by `candidates`. */
export function admissionTarget(namespaces: LedgerNamespaces, auth: KeyContext, candidates: readonly Candidate[]): AdmissionTarget {
  const workspaceId = auth.workspace.id;
  const count = Math.min(auth.workspace.ledgerShards, MAX_LEDGER_SHARDS);
  if (needsLedger(count, auth, candidates)) {
    const ledger = namespaces.ledger.getByName(workspaceId);
    return {
      name: "ledger",
      objectKey: `${namespaceId(namespaces.ledger)}:${workspaceId}`,
      admit: (input) => ledger.admit(input),
      settle: (input) => ledger.settle(input),
      settleBatch: (inputs) => namespaces.ledger.getByName(workspaceId).settleBatch(inputs),
      release: (holdId) => ledger.release(holdId),
    };
  }
  const index = shardForKey(auth.key.id, count);
  const name = shardName(workspaceId, index);
  const shard = namespaces.ledgerShard.getByName(name);
  return {
    name,
    objectKey: `${namespaceId(namespaces.ledgerShard)}:${name}`,
    // The shard learns its workspace, index and count from each admission (its alarm has no input).
    admit: (input) => shard.admit({ ...input, shard: { workspaceId, index, count } }),
    settle: (input) => shard.settle(input),
    settleBatch: (inputs) => namespaces.ledgerShard.getByName(name).settleBatch(inputs),
    release: (holdId) => shard.release(holdId),
  };
}

/**
 * A number per namespace object (the `eu` and the unrestricted namespace of a class name objects
 * of the same name), stable for the isolate's life since `env` is.
 */
const namespaceIds = new WeakMap<object, number>();
let namespacesSeen = 0;
function namespaceId(namespace: object): number {
  const known = namespaceIds.get(namespace);
  if (known !== undefined) return known;
  namespaceIds.set(namespace, ++namespacesSeen);
  return namespacesSeen;
}
