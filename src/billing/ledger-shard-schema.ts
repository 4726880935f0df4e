/**
 * @module billing/ledger-shard-schema
 * What a LedgerShard takes and answers beyond the Ledger's own shapes (ledger-schema): which
 * shard of which workspace an admission is for, and the shard's view of its books.
 */
import { z } from "zod";
import { admitInputSchema } from "./ledger-schema";

export const shardRefSchema = z
  .object({ workspaceId: z.string().min(1), index: z.number().int().nonnegative(), count: z.number().int().positive().max(256) })
  .refine((s) => s.index < s.count, "the shard index must be below the shard count");

/** The Ledger's admission input plus which shard of which workspace is asked. */
export const shardAdmitInputSchema = admitInputSchema.extend({ shard: shardRefSchema });
export type ShardAdmitInput = z.input<typeof shardAdmitInputSchema>;

/** The shard's books, for operators and tests. */
export interface ShardLeaseView {
  /** Credit the shard holds by its own books: granted − charged − returned, µ$. */
  leaseMicros: number;
  /** Reserved by the shard's live holds. */
  heldMicros: number;
  /** What admissions may still reserve without asking the ledger. */
  freeMicros: number;
  /** Charges and returns the ledger has not acknowledged yet. */
  unreportedChargesMicros: number;
  unreportedReturnsMicros: number;
}
