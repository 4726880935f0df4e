/**
 * @module api/validate
 * Request bodies: JSON parsing and zod validation that always end in a 400 with the exact field
 * and problem, never a 500.
 */
import type { z } from "zod";
import { GatewayError } from "../errors";

export async function readJsonBody(request: Request): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (type && !/^application\/(.+\+)?json\b/i.test(type)) {
    throw new GatewayError("bad_request", `Expected a JSON body (content-type application/json), got ${type}`);
  }
  const text = await request.text();
  if (!text.trim()) throw new GatewayError("bad_request", "Request body is empty; expected a JSON object");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new GatewayError("bad_request", `Request body is not valid JSON: ${error instanceof Error ? error.message : "parse error"}`);
  }
}

export function validate<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 10).map((issue) => ({
    path: issue.path.map(String).join("."),
    message: issue.message,
  }));
  const first = issues[0];
  const where = first?.path ? ` at \`${first.path}\`` : "";
  throw new GatewayError("bad_request", `Invalid request${where}: ${first?.message ?? "malformed body"}`, {
    metadata: { issues },
  });
}
