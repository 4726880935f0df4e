/**
 * @module billing/estimate
 * Token estimates for when an upstream never reported usage (a stream cut short, a provider that
 * omits it). Roughly four characters a token; used only to charge for what was delivered.
 */
import { contentText, type ChatRequest } from "../schemas/openai";

export function estimateTokensFromChars(chars: number): number {
  return Math.ceil(chars / 4);
}

export function estimatePromptTokens(req: ChatRequest): number {
  let chars = 0;
  for (const message of req.messages) chars += contentText(message.content).length + 4;
  for (const tool of req.tools ?? []) chars += JSON.stringify(tool.function).length;
  return estimateTokensFromChars(chars);
}
