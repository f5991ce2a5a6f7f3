import assert from "node:assert/strict";
import { clientTakesEcdsa } from "./client_hello.ts";

/** A ClientHello record with the given extensions (type, data) in order. */
function clientHello(extensions: [number, number[]][]): Uint8Array {
  const ext = extensions.flatMap((
    [t, d],
  ) => [t >> 8, t & 0xff, d.length >> 8, d.length & 0xff, ...d]);
  const body = [
    3,
    3,
    ...new Array(32).fill(1), // random
    32,
    ...new Array(32).fill(2), // session id
    0,
    4,
    0x13,
    0x02,
    0x13,
    0x01, // cipher suites
    1,
    0, // compression
    ext.length >> 8,
    ext.length & 0xff,
    ...ext,
  ];
  const hs = [1, 0, body.length >> 8, body.length & 0xff, ...body];
  return new Uint8Array([22, 3, 1, hs.length >> 8, hs.length & 0xff, ...hs]);
}

const sigalgs = (schemes: number[]): [number, number[]] => {
  const list = schemes.flatMap((s) => [s >> 8, s & 0xff]);
  return [13, [list.length >> 8, list.length & 0xff, ...list]];
};

Deno.test("a client that lists an ECDSA scheme takes the ECDSA chain; RSA-only ones do not", () => {
  const sni: [number, number[]] = [0, [0, 4, 0, 0, 1, 0x61]];
  assert.equal(clientTakesEcdsa(clientHello([sni, sigalgs([0x0804, 0x0403])])), true);
  assert.equal(clientTakesEcdsa(clientHello([sigalgs([0x0503])])), true); // P-384
  assert.equal(clientTakesEcdsa(clientHello([sni, sigalgs([0x0804, 0x0401, 0x0201])])), false);
  // No signature_algorithms (a TLS 1.2 client's default is RSA).
  assert.equal(clientTakesEcdsa(clientHello([sni])), false);
});

Deno.test("a ClientHello cut short asks for more; what is not one is undefined", () => {
  const whole = clientHello([sigalgs([0x0403])]);
  for (const n of [0, 4, 5, whole.length - 1]) {
    assert.equal(clientTakesEcdsa(whole.subarray(0, n)), "more", `cut at ${n}`);
  }
  assert.equal(
    clientTakesEcdsa(new TextEncoder().encode("EHLO x\r\nMAIL FROM:<a@b>\r\n")),
    undefined,
  );
  const serverHello = whole.slice();
  serverHello[5] = 2;
  assert.equal(clientTakesEcdsa(serverHello), undefined);
  // A list length beyond the extension is read only as far as the extension goes.
  const lying = clientHello([[13, [0x7f, 0xff, 0x08, 0x04]]]);
  assert.equal(clientTakesEcdsa(lying), false);
});
