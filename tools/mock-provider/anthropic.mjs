// @ts-check
/**
 * @module mock-provider/anthropic
 * Anthropic Messages, direct (`…/messages`) and on Vertex AI (`…/models/{m}:rawPredict`,
 * `:streamRawPredict`): content blocks (thinking, text, tool_use), named SSE events in the order
 * Anthropic sends them, and Anthropic's error envelope.
 */
import { THINKING_SIGNATURE, contentText, isRecord, wordChunk } from "./plan.mjs";

/** @typedef {import("./plan.mjs").Plan} Plan */
/** @typedef {import("./family.mjs").Family} Family */

const STOP = { stop: "end_turn", length: "max_tokens", tool_calls: "tool_use" };

/**
 * @param {string} name
 * @param {unknown} data
 */
const sse = (name, data) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;

/** @param {number} status */
function errorType(status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

/**
 * Text and tool results of one message; tool_use inputs count towards the prompt size too.
 * @param {unknown} content
 */
function readContent(content) {
  if (typeof content === "string") return { text: content, chars: content.length, results: /** @type {string[]} */ ([]) };
  let text = "";
  let chars = 0;
  /** @type {string[]} */
  const results = [];
  if (Array.isArray(content)) {
    for (const block of content) {
      if (!isRecord(block)) continue;
      if (block.type === "text" && typeof block.text === "string") {
        text += text ? ` ${block.text}` : block.text;
        chars += block.text.length;
      } else if (block.type === "tool_result") {
        const result = contentText(block.content);
        results.push(result);
        chars += result.length;
      }
    }
  }
  return { text, chars, results };
}

/** @type {Family} */
export const anthropic = {
  name: "anthropic",

  authorized(headers) {
    const auth = headers.authorization;
    return typeof headers["x-api-key"] === "string" || (typeof auth === "string" && /^Bearer \S+/.test(auth));
  },

  read(body, route) {
    let promptChars = contentText(body.system).length;
    let lastUserText = "";
    /** @type {string[] | null} */
    let toolResults = null;
    const messages = Array.isArray(body.messages) ? body.messages.filter(isRecord) : [];
    messages.forEach((m, i) => {
      const { text, chars, results } = readContent(m.content);
      promptChars += chars;
      if (m.role !== "user") return;
      if (text) lastUserText = text;
      if (i === messages.length - 1 && results.length) toolResults = results;
    });
    const choice = isRecord(body.tool_choice) ? body.tool_choice : {};
    let tools = (Array.isArray(body.tools) ? body.tools : [])
      .filter((t) => isRecord(t) && typeof t.name === "string" && isRecord(t.input_schema))
      .map((t) => ({ name: t.name, schema: t.input_schema }));
    if (choice.type === "none") tools = [];
    else if (choice.type === "tool") tools = tools.filter((t) => t.name === choice.name);
    const thinking = isRecord(body.thinking) && (body.thinking.type === "enabled" || body.thinking.type === "adaptive");
    return {
      model: typeof body.model === "string" ? body.model : (route.model ?? "mock-model"),
      stream: route.stream ?? body.stream === true,
      lastUserText,
      toolResults,
      tools,
      parallelTools: choice.disable_parallel_tool_use !== true,
      promptChars,
      maxTokens: typeof body.max_tokens === "number" ? body.max_tokens : null,
      thinking,
    };
  },

  json(plan, seq) {
    /** @type {unknown[]} */
    const content = [];
    if (plan.thinking) content.push({ type: "thinking", thinking: plan.thinking, signature: THINKING_SIGNATURE });
    if (plan.words.length) content.push({ type: "text", text: plan.words.join(" ") });
    for (const call of plan.calls) {
      content.push({ type: "tool_use", id: toolUseId(call.id), name: call.name, input: JSON.parse(call.args) });
    }
    return JSON.stringify({
      id: `msg_mock_${seq}`,
      type: "message",
      role: "assistant",
      model: plan.model,
      content,
      stop_reason: STOP[plan.finish],
      stop_sequence: null,
      usage: {
        input_tokens: plan.promptTokens,
        output_tokens: plan.completionTokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    });
  },

  events(plan, seq) {
    const events = [
      sse("message_start", {
        type: "message_start",
        message: {
          id: `msg_mock_${seq}`,
          type: "message",
          role: "assistant",
          model: plan.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: plan.promptTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
        },
      }),
      sse("ping", { type: "ping" }),
    ];
    let index = 0;
    if (plan.thinking) {
      events.push(
        sse("content_block_start", { type: "content_block_start", index, content_block: { type: "thinking", thinking: "", signature: "" } }),
        sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: plan.thinking } }),
        sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "signature_delta", signature: THINKING_SIGNATURE } }),
        sse("content_block_stop", { type: "content_block_stop", index }),
      );
      index++;
    }
    let head = events.length + 1;
    if (plan.words.length) {
      events.push(sse("content_block_start", { type: "content_block_start", index, content_block: { type: "text", text: "" } }));
      const open = `event: content_block_delta\ndata: {"type":"content_block_delta","index":${index},"delta":{"type":"text_delta","text":`;
      for (let i = 0; i < plan.words.length; i++) events.push(`${open}${JSON.stringify(wordChunk(plan.words, i))}}}\n\n`);
      events.push(sse("content_block_stop", { type: "content_block_stop", index }));
      index++;
    }
    for (const call of plan.calls) {
      events.push(
        sse("content_block_start", {
          type: "content_block_start",
          index,
          content_block: { type: "tool_use", id: toolUseId(call.id), name: call.name, input: {} },
        }),
      );
      const half = Math.ceil(call.args.length / 2);
      for (const piece of [call.args.slice(0, half), call.args.slice(half)]) {
        events.push(sse("content_block_delta", { type: "content_block_delta", index, delta: { type: "input_json_delta", partial_json: piece } }));
      }
      events.push(sse("content_block_stop", { type: "content_block_stop", index }));
      index++;
    }
    events.push(
      sse("message_delta", {
        type: "message_delta",
        delta: { stop_reason: STOP[plan.finish], stop_sequence: null },
        usage: { output_tokens: plan.completionTokens },
      }),
      sse("message_stop", { type: "message_stop" }),
    );
    return { events, head };
  },

  error(status, message) {
    return JSON.stringify({ type: "error", error: { type: errorType(status), message } });
  },

  errorEvent(message) {
    return sse("error", { type: "error", error: { type: "overloaded_error", message } });
  },

  malformed: { json: '{"id":"msg_mock","type":"message","content":[', sse: 'event: message_start\ndata: {"type":"message_start","message":\n\n' },
};

/** Anthropic's ids look like `toolu_…`: `call_mock_0` becomes `toolu_mock_0`. */
const toolUseId = (/** @type {string} */ id) => id.replace("call_", "toolu_");
