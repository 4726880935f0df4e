// @ts-check
/**
 * @module mock-provider/gemini
 * Google Gemini `generateContent` and `streamGenerateContent` (SSE with `alt=sse`, otherwise one
 * JSON array sent in pieces), and Google's error envelope. Like the real API, SSE events end with
 * CRLF pairs, every stream event carries `usageMetadata` (the last one complete), and function
 * calls come whole in one event.
 */
import { THINKING_TEXT, contentText, isRecord } from "./plan.mjs";

/** @typedef {import("./plan.mjs").Plan} Plan */
/** @typedef {import("./family.mjs").Family} Family */

/** Words per stream event: Gemini streams a few tokens at a time. */
const WORDS_PER_EVENT = 3;
const THINKING_TOKENS = 2;

/** @param {number} status */
function statusName(status) {
  switch (status) {
    case 400:
      return "INVALID_ARGUMENT";
    case 401:
      return "UNAUTHENTICATED";
    case 403:
      return "PERMISSION_DENIED";
    case 404:
      return "NOT_FOUND";
    case 429:
      return "RESOURCE_EXHAUSTED";
    case 503:
      return "UNAVAILABLE";
    case 504:
      return "DEADLINE_EXCEEDED";
    default:
      return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
  }
}

/**
 * A function response as text: a lone string field (`{content:"…"}`, `{result:"…"}`) is unwrapped,
 * anything else is its JSON.
 * @param {unknown} response
 */
function responseText(response) {
  if (isRecord(response)) {
    const values = Object.values(response);
    if (values.length === 1 && typeof values[0] === "string") return values[0];
  }
  return JSON.stringify(response ?? null);
}

/** @param {Plan} plan */
function usageMetadata(plan) {
  const thoughts = plan.thinking ? THINKING_TOKENS : 0;
  /** @type {Record<string, number>} */
  const usage = {
    promptTokenCount: plan.promptTokens,
    candidatesTokenCount: plan.completionTokens - thoughts,
    totalTokenCount: plan.promptTokens + plan.completionTokens,
  };
  if (thoughts) usage.thoughtsTokenCount = thoughts;
  return usage;
}

/** @param {Plan} plan */
const finishReason = (plan) => (plan.finish === "length" ? "MAX_TOKENS" : "STOP");

/** @param {Plan} plan */
const callParts = (plan) => plan.calls.map((c) => ({ functionCall: { name: c.name, args: JSON.parse(c.args) } }));

/** @type {Family} */
export const gemini = {
  name: "gemini",

  authorized(headers, query) {
    const auth = headers.authorization;
    return (
      typeof headers["x-goog-api-key"] === "string" ||
      (typeof auth === "string" && /^Bearer \S+/.test(auth)) ||
      /(^|&)key=[^&]+/.test(query)
    );
  },

  read(body, route) {
    const contents = Array.isArray(body.contents) ? body.contents.filter(isRecord) : [];
    let promptChars = isRecord(body.systemInstruction) ? contentText(body.systemInstruction.parts).length : 0;
    let lastUserText = "";
    /** @type {string[] | null} */
    let toolResults = null;
    contents.forEach((c, i) => {
      const parts = Array.isArray(c.parts) ? c.parts.filter(isRecord) : [];
      const text = contentText(parts);
      promptChars += text.length;
      if (text && c.role !== "model") lastUserText = text;
      const results = parts.flatMap((p) => (isRecord(p.functionResponse) ? [responseText(p.functionResponse.response)] : []));
      for (const r of results) promptChars += r.length;
      if (i === contents.length - 1 && results.length) toolResults = results;
    });
    /** @type {import("./plan.mjs").ToolSpec[]} */
    let tools = [];
    for (const tool of Array.isArray(body.tools) ? body.tools : []) {
      if (!isRecord(tool) || !Array.isArray(tool.functionDeclarations)) continue;
      for (const fn of tool.functionDeclarations) {
        if (isRecord(fn) && typeof fn.name === "string") tools.push({ name: fn.name, schema: fn.parameters ?? fn.parametersJsonSchema });
      }
    }
    const calling = isRecord(body.toolConfig) && isRecord(body.toolConfig.functionCallingConfig) ? body.toolConfig.functionCallingConfig : {};
    if (calling.mode === "NONE") tools = [];
    else if (Array.isArray(calling.allowedFunctionNames)) {
      const allowed = calling.allowedFunctionNames;
      tools = tools.filter((t) => allowed.includes(t.name));
    }
    const config = isRecord(body.generationConfig) ? body.generationConfig : {};
    return {
      model: route.model ?? "mock-model",
      stream: route.stream === true,
      lastUserText,
      toolResults,
      tools,
      parallelTools: true,
      promptChars,
      maxTokens: typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : null,
      thinking: isRecord(config.thinkingConfig) && config.thinkingConfig.includeThoughts === true,
    };
  },

  json(plan, seq) {
    /** @type {unknown[]} */
    const parts = [];
    if (plan.thinking) parts.push({ text: THINKING_TEXT, thought: true });
    if (plan.words.length) parts.push({ text: plan.words.join(" ") });
    parts.push(...callParts(plan));
    return JSON.stringify({
      candidates: [{ content: { parts, role: "model" }, finishReason: finishReason(plan), index: 0 }],
      usageMetadata: usageMetadata(plan),
      modelVersion: plan.model,
      responseId: `mock-${seq}`,
    });
  },

  events(plan, seq, _body, route) {
    const tail = `,"modelVersion":${JSON.stringify(plan.model)},"responseId":"mock-${seq}"}`;
    const partial = JSON.stringify({ promptTokenCount: plan.promptTokens, totalTokenCount: plan.promptTokens });
    /** @type {string[]} */
    const bodies = [];
    /** @param {unknown[]} parts */
    const open = (parts) => `{"candidates":[{"content":{"parts":${JSON.stringify(parts)},"role":"model"}`;
    if (plan.thinking) bodies.push(`${open([{ text: THINKING_TEXT, thought: true }])},"index":0}],"usageMetadata":${partial}${tail}`);
    const head = bodies.length;
    /** @type {unknown[][]} */
    const groups = [];
    for (let i = 0; i < plan.words.length; i += WORDS_PER_EVENT) {
      const text = plan.words.slice(i, i + WORDS_PER_EVENT).join(" ");
      groups.push([{ text: i === 0 ? text : ` ${text}` }]);
    }
    if (plan.calls.length || groups.length === 0) groups.push(callParts(plan));
    groups.forEach((parts, i) => {
      const last = i === groups.length - 1;
      const end = last ? `,"finishReason":"${finishReason(plan)}"` : "";
      bodies.push(`${open(parts)}${end},"index":0}],"usageMetadata":${last ? JSON.stringify(usageMetadata(plan)) : partial}${tail}`);
    });
    if (route.sse) return { events: bodies.map((b) => `data: ${b}\r\n\r\n`), head };
    const events = bodies.map((b, i) => (i === 0 ? `[${b}` : `,\r\n${b}`));
    events.push("]");
    return { events, head };
  },

  error(status, message) {
    return JSON.stringify({ error: { code: status, message, status: statusName(status) } });
  },

  errorEvent(message) {
    return `data: ${JSON.stringify({ error: { code: 503, message, status: "UNAVAILABLE" } })}\r\n\r\n`;
  },

  malformed: { json: '{"candidates":[{"content":', sse: 'data: {"candidates":[{"content":\r\n\r\n' },
};
