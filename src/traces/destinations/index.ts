/**
 * @module traces/destinations
 * One entry point for every destination type: deliver a group of traces (already stripped or
 * filled with content for this destination) and get one outcome per trace, in order.
 */
import type { Target } from "../destination-config";
import type { Trace } from "../schema";
import type { DeliveryOutcome } from "./http";
import { deliverLangfuse } from "./langfuse";
import { deliverOtlp } from "./otlp";
import { deliverS3 } from "./s3";
import { deliverWebhook } from "./webhook";

export type { DeliveryOutcome } from "./http";

/** Bindings a delivery may use. */
export type DeliveryBindings = Partial<Pick<Env, "TRACE_ARCHIVE">>;

export function deliverTo(target: Target, traces: readonly Trace[], bindings: DeliveryBindings): Promise<DeliveryOutcome[]> {
  switch (target.type) {
    case "webhook":
      return deliverWebhook(target, traces);
    case "otlp":
      return deliverOtlp(target, traces);
    case "s3":
      return deliverS3(target, traces, bindings.TRACE_ARCHIVE);
    case "langfuse":
      return deliverLangfuse(target, traces);
  }
}
