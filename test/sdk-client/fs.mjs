// fs.mjs drives the official MCP TypeScript SDK client over Streamable HTTP
// against a gateway in front of server-filesystem, and prints what it saw:
//
//   node fs.mjs URL ROOT
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, root] = process.argv.slice(2);
const client = new Client({ name: "agentid-sdk-fs", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url));
await client.connect(transport);
const text = (res) => (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("");
async function call(name, args) {
  try {
    return text(await client.callTool({ name, arguments: args }));
  } catch (e) {
    return `error ${e?.code ?? e?.message}`;
  }
}
const out = {};
out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
out.read = await call("read_text_file", { path: `${root}/notes.txt` });
out.write = await call("write_file", { path: `${root}/written.txt`, content: "x" });
out.list = await call("list_directory", { path: root });
await transport.terminateSession();
await client.close();
console.log(JSON.stringify(out));
