/**
 * What the end-to-end tests share: clients pointed at the gateway started by the global setup,
 * the mock provider's control API, and the mock's deterministic answers.
 */
import OpenAI from "openai";
import { inject } from "vitest";

export const switchyard = inject("switchyard");

export const MODELS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4.5", "google/gemini-2.5-flash"] as const;

export function openaiClient(): OpenAI {
  return new OpenAI({ baseURL: `${switchyard.url}/api/v1`, apiKey: switchyard.apiKey, maxRetries: 0, timeout: 10_000 });
}

/** The mock's reply to a user message (directives such as `[[words:N]]` aside). */
export const mockReply = (userText: string) => `Mock reply to: ${userText}`;
export const mockToolAnswer = (results: string[]) => `Mock answer using tool result: ${results.join("; ")}`;
/** The mock counts one completion token per word it sends. */
export const wordCount = (text: string) => text.split(" ").length;
/** The mock counts prompt tokens as ceil(characters of all message text / 4). */
export const promptTokens = (...texts: string[]) => Math.max(1, Math.ceil(texts.join("").length / 4));

async function control(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${switchyard.mockUrl}/__mock${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`mock control ${method} ${path} → ${res.status}: ${await res.text()}`);
  return res.json();
}

/**
 * Forget every endpoint's health and sticky route in the gateway (admin API), so a test's faults
 * do not open a breaker for the next test.
 */
export async function resetRouting(): Promise<void> {
  const res = await fetch(`${switchyard.url}/admin/v1/health/reset`, { method: "POST", headers: { authorization: `Bearer ${switchyard.adminToken}` } });
  if (!res.ok) throw new Error(`health reset → ${res.status}: ${await res.text()}`);
}

/** The mock's control API (`/__mock/...`). */
export const mock = {
  fault: (prefix: string, fault: string, count?: number) => control("POST", "/faults", { prefix, fault, count }),
  clearFaults: () => control("DELETE", "/faults"),
  hits: () => control("GET", "/hits") as Promise<Record<string, number>>,
  reset: () => control("DELETE", ""),
};
