// codes.mjs connects the official MCP TypeScript SDK client through
// `agentid proxy` to an MCP server, makes each call given on the command
// line, and prints how the SDK surfaced each answer, one JSON line per call:
// {"call":…, "ok":bool, "name":<error class>, "code":…, "data":…, "after":<ping ok>}
//
//   node codes.mjs '<proxy argv as JSON>' '<calls as JSON: [{"tool":…,"arguments":{…}}]>'
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [argv, calls] = [JSON.parse(process.argv[2]), JSON.parse(process.argv[3])];
const transport = new StdioClientTransport({ command: argv[0], args: argv.slice(1), stderr: "inherit" });
const client = new Client({ name: "agentid-sdk-codes", version: "1.0.0" });
await client.connect(transport);
for (const call of calls) {
  const out = { call: call.tool, ok: true };
  try {
    await client.callTool({ name: call.tool, arguments: call.arguments ?? {} });
  } catch (e) {
    out.ok = false;
    out.name = e?.name ?? typeof e;
    out.code = e?.code;
    out.data = e?.data;
    out.message = e?.message;
  }
  try {
    await client.ping();
    out.after = true;
  } catch {
    out.after = false;
  }
  console.log(JSON.stringify(out));
}
await client.close();
