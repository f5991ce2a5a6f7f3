import assert from "node:assert/strict";
import { parseServerHello, suiteByIanaName } from "./server_hello.ts";

/** A ServerHello record: version, suite, and extensions as raw bytes. */
function serverHello(version: number, suite: number, extensions: number[] | undefined): Uint8Array {
  const body = [
    version >> 8,
    version & 0xff,
    ...new Array(32).fill(7), // random
    32,
    ...new Array(32).fill(9), // session id echo
    suite >> 8,
    suite & 0xff,
    0, // compression
    ...(extensions ? [extensions.length >> 8, extensions.length & 0xff, ...extensions] : []),
  ];
  const hs = [2, 0, body.length >> 8, body.length & 0xff, ...body];
  return new Uint8Array([22, 3, 3, hs.length >> 8, hs.length & 0xff, ...hs]);
}

Deno.test("TLS 1.3: the version comes from supported_versions, not legacy_version", () => {
  // key_share (51) first, then supported_versions (43) selecting 0x0304.
  const ext = [0, 51, 0, 4, 0, 29, 0, 0, 0, 43, 0, 2, 3, 4];
  assert.deepEqual(parseServerHello(serverHello(0x0303, 0x1302, ext)), {
    protocol: "TLSv1.3",
    cipher: "TLS_AES_256_GCM_SHA384",
    bits: 256,
  });
});

Deno.test("TLS 1.2: legacy_version and OpenSSL's suite name (as Postfix logs it)", () => {
  assert.deepEqual(parseServerHello(serverHello(0x0303, 0xc02f, [0xff, 0x01, 0, 1, 0])), {
    protocol: "TLSv1.2",
    cipher: "ECDHE-RSA-AES128-GCM-SHA256",
    bits: 128,
  });
  assert.deepEqual(parseServerHello(serverHello(0x0303, 0xcca8, undefined)), {
    protocol: "TLSv1.2",
    cipher: "ECDHE-RSA-CHACHA20-POLY1305",
    bits: 256,
  });
});

Deno.test("an unknown suite is named by its code", () => {
  const info = parseServerHello(serverHello(0x0303, 0x009c, undefined));
  assert.deepEqual(info, { protocol: "TLSv1.2", cipher: "0x009c", bits: 0 });
});

Deno.test("a record cut short asks for more; what is not a ServerHello is undefined", () => {
  const whole = serverHello(0x0303, 0x1301, [0, 43, 0, 2, 3, 4]);
  for (const n of [0, 3, 5, whole.length - 1]) {
    assert.equal(parseServerHello(whole.subarray(0, n)), "more", `cut at ${n}`);
  }
  assert.equal(parseServerHello(new Uint8Array([21, 3, 3, 0, 2, 2, 40])), undefined); // alert
  const notHello = whole.slice();
  notHello[5] = 11; // Certificate
  assert.equal(parseServerHello(notHello), undefined);
  // A handshake length beyond its record.
  const lying = whole.slice();
  lying[8] = 0xff;
  assert.equal(parseServerHello(lying), undefined);
  // Extensions whose lengths run past the end are not read past it.
  const bad = serverHello(0x0303, 0x1301, [0, 43, 0, 200, 3, 4]);
  assert.deepEqual(parseServerHello(bad), {
    protocol: "TLSv1.2",
    cipher: "TLS_AES_128_GCM_SHA256",
    bits: 128,
  });
});

Deno.test("node:tls's IANA suite names map to OpenSSL's, as Postfix logs them", () => {
  const suite = suiteByIanaName("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
  assert.equal(suite?.name, "ECDHE-RSA-AES256-GCM-SHA384");
  assert.equal(suite?.bits, 256);
  assert.equal(suiteByIanaName("TLS_AES_128_GCM_SHA256")?.name, "TLS_AES_128_GCM_SHA256");
  assert.equal(suiteByIanaName("TLS_RSA_WITH_RC4_128_MD5"), undefined);
});
