/**
 * @module providers/registry
 * The adapter for each wire family.
 */
import { anthropic } from "./anthropic";
import { gemini } from "./gemini";
import { openAICompatible } from "./openai-compatible";
import type { ProviderAdapter, ProviderFamily } from "./types";

const adapters: Record<ProviderFamily, ProviderAdapter> = {
  openai: openAICompatible,
  anthropic,
  gemini,
};

export function adapterFor(family: ProviderFamily): ProviderAdapter {
  return adapters[family];
}
