// http.mjs drives the official MCP TypeScript SDK client over Streamable
// HTTP (StreamableHTTPClientTransport) against an MCP endpoint, runs one
// scenario that touches every feature of server-everything, and prints what
// the client observed as one JSON object. agentid's tests run it once
// against the server directly and once through `agentid gateway`, and
// compare.
//
//   node http.mjs URL [TOKEN_URL CREDENTIAL_FILE]
//
// With TOKEN_URL, every request carries a fresh single-use AIP token in
// Authorization: Bearer, obtained from TOKEN_URL (agentid's POST /v1/token)
// with the credential in CREDENTIAL_FILE, continuing one AIP session.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const [url, tokenURL, credentialFile] = process.argv.slice(2);
let aipSession = "";
async function tokenFetch(input, init = {}) {
  if (!tokenURL) return fetch(input, init);
  const credential = readFileSync(credentialFile, "utf8").trim();
  const body = { binding: { process_id: process.pid, hostname: "sdk-client", policy_path: "/agent/policy.yaml" } };
  if (aipSession) body.session_id = aipSession;
  const r = await fetch(tokenURL, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${credential}` },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`token endpoint answered ${r.status}: ${await r.text()}`);
  const tok = await r.json();
  aipSession = tok.session_id;
  const headers = new Headers(init.headers ?? {});
  headers.set("Authorization", `Bearer ${tok.token}`);
  return fetch(input, { ...init, headers });
}

const out = { logged: 0 };
const client = new Client(
  { name: "agentid-sdk-http", version: "1.0.0" },
  { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
);
client.setRequestHandler(CreateMessageRequestSchema, async () => ({
  role: "assistant",
  model: "test-model",
  content: { type: "text", text: "sampled reply" },
}));
client.setRequestHandler(ElicitRequestSchema, async () => ({ action: "accept", content: { name: "ada" } }));
client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: "file:///work", name: "work" }] }));
client.setNotificationHandler(LoggingMessageNotificationSchema, () => {
  out.logged++;
});

const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: tokenFetch });
await client.connect(transport);
out.sessionId = Boolean(transport.sessionId);

const text = (res) => (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(" ");
async function call(name, args, opts) {
  try {
    return text(await client.callTool({ name, arguments: args }, undefined, opts));
  } catch (e) {
    return `error ${e?.code ?? e?.message}`;
  }
}

out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
out.echo = await call("echo", { message: "hi" });
out.sum = await call("get-sum", { a: 1, b: 2 });
out.env = await call("get-env", {});
let progress = 0;
out.longRunning = await call("trigger-long-running-operation", { duration: 1, steps: 3 }, { onprogress: () => progress++ });
out.progress = progress;
out.sampling = (await call("trigger-sampling-request", { prompt: "hello", maxTokens: 5 })).includes("sampled reply");
out.elicitation = (await call("trigger-elicitation-request", {})).includes("ada");
out.roots = (await call("get-roots-list", {})).includes("file:///work");
const resources = await client.listResources();
out.resources = resources.resources.length > 0;
const first = resources.resources[0];
const read = await client.readResource({ uri: first.uri });
out.read = read.contents.length;
const prompts = (await client.listPrompts()).prompts.map((p) => p.name).sort();
out.prompts = prompts;
const simple = await client.getPrompt({ name: "simple-prompt" });
out.prompt = simple.messages.length;
try {
  const c = await client.complete({
    ref: { type: "ref/prompt", name: "completable-prompt" },
    argument: { name: "department", value: "E" },
  });
  out.completion = c.completion.values;
} catch (e) {
  out.completion = `error ${e?.code ?? e?.message}`;
}
await client.setLoggingLevel("debug");
await client.ping();
out.ping = true;
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
