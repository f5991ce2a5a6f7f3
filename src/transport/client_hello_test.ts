import assert from "node:assert/strict";
import { clientTakesEcdsa, ecdsaSchemesOf } from "./client_hello.ts";

/**
 * A ClientHello record with the given extensions (type, data) in order and
 * cipher suites (default: two TLS 1.3 suites).
 */
function clientHello(
  extensions: [number, number[]][],
  suites: number[] = [0x1302, 0x1301],
): Uint8Array {
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
    suites.length * 2,
    ...suites.flatMap((c) => [c >> 8, c & 0xff]), // cipher suites
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

/** supported_versions (RFC 8446 §4.2.1) with the given versions. */
const versions = (list: number[]): [number, number[]] => [
  43,
  [list.length * 2, ...list.flatMap((v) => [v >> 8, v & 0xff])],
];
const tls13 = versions([0x0304, 0x0303]);

Deno.test("a client that lists an ECDSA scheme takes the ECDSA chain; RSA-only ones do not", () => {
  const sni: [number, number[]] = [0, [0, 4, 0, 0, 1, 0x61]];
  assert.equal(clientTakesEcdsa(clientHello([sni, sigalgs([0x0804, 0x0403]), tls13])), true);
  assert.equal(clientTakesEcdsa(clientHello([tls13, sigalgs([0x0503])])), true); // P-384
  assert.equal(clientTakesEcdsa(clientHello([sni, sigalgs([0x0804, 0x0401, 0x0201])])), false);
  // No signature_algorithms (a TLS 1.2 client's default is RSA).
  assert.equal(clientTakesEcdsa(clientHello([sni])), false);
});

Deno.test("a TLS 1.2 client takes the ECDSA chain only when it offers an ECDHE_ECDSA suite", () => {
  const ecdsaRsa = sigalgs([0x0403, 0x0804, 0x0401]); // OpenSSL's default list names both
  const rsaSuites = [0xc030, 0xc02f, 0xcca8]; // ECDHE_RSA with AES-256/128-GCM, ChaCha20
  // `openssl s_client -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256`: the ECDSA
  // chain cannot serve any suite it offers.
  assert.equal(clientTakesEcdsa(clientHello([ecdsaRsa], rsaSuites)), false);
  assert.equal(clientTakesEcdsa(clientHello([ecdsaRsa, versions([0x0303])], rsaSuites)), false);
  // TLS 1.3 suites offered without TLS 1.3 in supported_versions: still TLS 1.2.
  assert.equal(clientTakesEcdsa(clientHello([ecdsaRsa], [0x1301, ...rsaSuites])), false);
  // TLS 1.3 in supported_versions but only TLS 1.2 suites: no TLS 1.3 either.
  assert.equal(clientTakesEcdsa(clientHello([ecdsaRsa, tls13], rsaSuites)), false);
  for (const suite of [0xc02b, 0xc02c, 0xcca9]) {
    assert.equal(clientTakesEcdsa(clientHello([ecdsaRsa], [...rsaSuites, suite])), true);
  }
  // An ECDHE_ECDSA suite without an ECDSA signature scheme is no use.
  assert.equal(clientTakesEcdsa(clientHello([sigalgs([0x0401])], [0xc02b])), false);
  // TLS 1.3 with a TLS 1.3 suite: the schemes decide.
  assert.equal(clientTakesEcdsa(clientHello([ecdsaRsa, tls13], [0x1301, ...rsaSuites])), true);
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

Deno.test("the ECDSA chain goes only to a client that lists its key's scheme (rustls signs with no other)", () => {
  const p256 = ecdsaSchemesOf("prime256v1");
  const p384 = ecdsaSchemesOf("secp384r1");
  const only384 = clientHello([tls13, sigalgs([0x0503, 0x0804])]);
  // `openssl s_client -sigalgs ECDSA+SHA384:RSA-PSS+SHA256` against a P-256 key.
  assert.equal(clientTakesEcdsa(only384, p256), false);
  assert.equal(clientTakesEcdsa(only384, p384), true);
  assert.equal(clientTakesEcdsa(clientHello([tls13, sigalgs([0x0403])]), p256), true);
  assert.equal(clientTakesEcdsa(clientHello([tls13, sigalgs([0x0403])]), p384), false);
  // TLS 1.2 too: the scheme, not only the suite.
  assert.equal(clientTakesEcdsa(clientHello([sigalgs([0x0503, 0x0401])], [0xc02b]), p256), false);
  assert.equal(ecdsaSchemesOf("prime256v1").size, 1);
  // A curve not known here: any ECDSA scheme, as before.
  assert.equal(ecdsaSchemesOf(undefined).size, 3);
});

Deno.test("crafted ClientHellos (lying lengths, cut extensions, long lists) never throw", () => {
  const whole = clientHello([sigalgs(new Array(2000).fill(0x0401)), versions([0x0304]), [43, [
    255,
  ]]]);
  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let round = 0; round < 3000; round++) {
    const b = whole.slice();
    for (let k = 0; k < 4; k++) {
      b[5 + Math.floor(rand() * (b.length - 5))] = Math.floor(rand() * 256);
    }
    const cut = b.subarray(0, 5 + Math.floor(rand() * (b.length - 4)));
    for (const bytes of [b, cut]) {
      const r = clientTakesEcdsa(bytes);
      assert.ok(r === true || r === false || r === "more" || r === undefined);
    }
  }
});
