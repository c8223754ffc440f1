// card.mjs signs or verifies an A2A AgentCard with npm jose, independently
// of agentid's Go code: its own RFC 8785 canonicalization (JSON.stringify
// with keys sorted by UTF-16 code units is RFC 8785 for the values cards
// hold), its own base64 and its own JWS.
//
//   node card.mjs sign CARD.json CHAIN.pem KEY.pem ALG [KID]
//                                                        > signed card on stdout
//                                                        (KID: the signer's own
//                                                        kid; default the leaf's
//                                                        SHA-256 thumbprint)
//   node card.mjs verify CARD.json                        "ok" on stdout, or exit 1
//
// verify checks only the JWS against the x5c leaf key: chain and SPIFFE
// checks are the Go verifier's job.
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { FlattenedSign, flattenedVerify, importPKCS8, importX509, decodeProtectedHeader } from 'jose';

function canonicalize(value) {
  if (Array.isArray(value)) return '[' + value.map(canonicalize).join(',') + ']';
  if (value !== null && typeof value === 'object') {
    // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
    const keys = Object.keys(value).sort();
    return '{' + keys.map((k) => JSON.stringify(k) + ':' + canonicalize(value[k])).join(',') + '}';
  }
  return JSON.stringify(value);
}

function payloadOf(card) {
  const copy = { ...card };
  delete copy.signatures;
  return new TextEncoder().encode(canonicalize(copy));
}

function pemBlocks(text) {
  return [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) => m[1].replace(/\s+/g, ''));
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

async function sign(cardPath, chainPath, keyPath, alg, kid) {
  const card = JSON.parse(readFileSync(cardPath, 'utf8'));
  const x5c = pemBlocks(readFileSync(chainPath, 'utf8'));
  const thumb = b64url(createHash('sha256').update(Buffer.from(x5c[0], 'base64')).digest());
  const key = await importPKCS8(readFileSync(keyPath, 'utf8'), alg);
  const now = Math.floor(Date.now() / 1000);
  const jws = await new FlattenedSign(payloadOf(card))
    .setProtectedHeader({ alg, typ: 'JOSE', kid: kid ?? thumb, x5c, 'x5t#S256': thumb, iat: now - 5, exp: now + 600 })
    .sign(key);
  card.signatures = [...(card.signatures ?? []), { protected: jws.protected, signature: jws.signature }];
  process.stdout.write(JSON.stringify(card, null, 2) + '\n');
}

async function verify(cardPath) {
  const card = JSON.parse(readFileSync(cardPath, 'utf8'));
  const payload = payloadOf(card);
  for (const sig of card.signatures ?? []) {
    const header = decodeProtectedHeader({ protected: sig.protected, signature: sig.signature, payload: "" });
    const pem = '-----BEGIN CERTIFICATE-----\n' + header.x5c[0] + '\n-----END CERTIFICATE-----\n';
    const key = await importX509(pem, header.alg);
    await flattenedVerify({ protected: sig.protected, signature: sig.signature, payload: b64url(payload) }, key, {
      algorithms: ['ES256', 'ES384', 'ES512', 'RS256', 'PS256'],
    });
  }
  process.stdout.write('ok\n');
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === 'sign') await sign(...args);
  else if (cmd === 'verify') await verify(...args);
  else throw new Error('usage: card.mjs sign|verify ...');
} catch (err) {
  process.stderr.write(String(err?.stack ?? err) + '\n');
  process.exit(1);
}
