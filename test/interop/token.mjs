// Interop driver for agentid's identity tokens, using the independent
// npm "jose" implementation. Reads one JSON request on stdin, writes one
// JSON answer on stdout. Used by identity/interop_test.go.
//
//   {"op":"verify","jwks":{…},"audience":"…","alg":"ES256","tokens":["…"]}
//     → {"results":[{"ok":true,"header":{…},"payload":{…}} | {"ok":false,"error":"…"}]}
//   {"op":"sign","jwk":{private JWK},"alg":"ES256","kid":"…","payload":{…}}
//     → {"token":"…"}
import { createLocalJWKSet, importJWK, jwtVerify, SignJWT } from 'jose';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));

async function main() {
  if (req.op === 'verify') {
    const keys = createLocalJWKSet(req.jwks);
    const results = [];
    for (const token of req.tokens) {
      try {
        const { payload, protectedHeader } = await jwtVerify(token, keys, {
          audience: req.audience,
          typ: 'aip+jwt',
          algorithms: [req.alg],
          requiredClaims: ['iss', 'sub', 'aud', 'iat', 'exp', 'jti'],
        });
        results.push({ ok: true, header: protectedHeader, payload });
      } catch (e) {
        results.push({ ok: false, error: `${e.code || e.name}: ${e.message}` });
      }
    }
    return { results };
  }
  if (req.op === 'sign') {
    const key = await importJWK(req.jwk, req.alg);
    const token = await new SignJWT(req.payload)
      .setProtectedHeader({ alg: req.alg, typ: 'aip+jwt', kid: req.kid })
      .sign(key);
    return { token };
  }
  throw new Error(`unknown op ${req.op}`);
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out)),
  (e) => {
    process.stderr.write(String(e && e.stack || e) + '\n');
    process.exit(2);
  },
);
