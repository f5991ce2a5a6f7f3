import assert from "node:assert/strict";
import {
  encodeAuth,
  encodeCancel,
  encodeCont,
  encodeHandshake,
  MAX_REQUEST_LINE,
  parseFields,
  parseHandshakeLine,
  parseServerReply,
  printable,
  printableName,
  RequestTooLongError,
  tabUnescape,
} from "./dovecot_protocol.ts";

Deno.test("encodeHandshake() sends VERSION 1.2 and our pid", () => {
  assert.equal(encodeHandshake(4242), "VERSION\t1\t2\nCPID\t4242\n");
});

Deno.test("parseHandshakeLine() reads VERSION, MECH with flags, SPID, DONE", () => {
  assert.deepEqual(parseHandshakeLine("VERSION\t1\t3"), { kind: "version", major: 1, minor: 3 });
  assert.deepEqual(parseHandshakeLine("VERSION\tx\t1"), {
    kind: "bad",
    what: "Protocol version error",
  });
  assert.deepEqual(parseHandshakeLine("VERSION"), { kind: "bad", what: "Protocol version error" });
  const mech = parseHandshakeLine("MECH\tcram-md5\tDictionary\tactive");
  assert.equal(mech.kind, "mech");
  if (mech.kind === "mech") {
    assert.equal(mech.mechanism.name, "CRAM-MD5");
    assert.deepEqual([...mech.mechanism.flags], ["dictionary", "active"]);
  }
  assert.equal(parseHandshakeLine("MECH\tBAD NAME").kind, "bad");
  assert.equal(parseHandshakeLine("MECH").kind, "bad");
  assert.deepEqual(parseHandshakeLine("SPID\t12"), { kind: "spid" });
  assert.deepEqual(parseHandshakeLine("DONE"), { kind: "done" });
  assert.deepEqual(parseHandshakeLine("COOKIE\tabc"), { kind: "other" });
});

Deno.test("encodeAuth() puts resp= last and skips facts that are not addresses or ports", () => {
  const info = {
    clientAddress: "2001:db8::1",
    clientPort: 4000,
    serverAddress: "192.0.2.1",
    serverPort: 587,
    tls: true,
  };
  assert.equal(
    encodeAuth(7, "PLAIN", { service: "smtp", info, initialResponse: "AGEAYg==" }),
    "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.1\trip=2001:db8::1\tlport=587\trport=4000\tsecured=tls\tresp=AGEAYg==\n",
  );
  assert.equal(
    encodeAuth(8, "LOGIN", {
      service: "smtp",
      info: { clientAddress: "x\tsecured", clientPort: 70000, tls: false },
    }),
    "AUTH\t8\tLOGIN\tservice=smtp\tnologin\n",
  );
  assert.equal(
    encodeAuth(9, "PLAIN", { service: "smtp", info: { tls: false }, initialResponse: "" }),
    "AUTH\t9\tPLAIN\tservice=smtp\tnologin\tresp=\n",
  );
  assert.throws(() =>
    encodeAuth(1, "PLAIN", { service: "smtp", info: { tls: false }, initialResponse: "a\tb" })
  );
  assert.throws(() => encodeAuth(1, "PL\tAIN", { service: "smtp", info: { tls: false } }));
  assert.throws(() => encodeAuth(1, "PLAIN", { service: "smtp\tx", info: { tls: false } }));
});

Deno.test("encodeCont() and encodeCancel()", () => {
  assert.equal(encodeCont(3, "YWxpY2U="), "CONT\t3\tYWxpY2U=\n");
  assert.equal(encodeCont(3, ""), "CONT\t3\t\n");
  assert.throws(() => encodeCont(3, "a\nAUTH"));
  assert.equal(encodeCancel(3), "CANCEL\t3\n");
});

Deno.test("parseServerReply() reads OK, CONT and FAIL; anything else is other", () => {
  const ok = parseServerReply("OK\t5\tuser=alice\tfoo");
  assert.equal(ok.kind, "ok");
  if (ok.kind === "ok") {
    assert.equal(ok.id, 5);
    assert.equal(ok.fields.get("user"), "alice");
    assert.equal(ok.fields.get("foo"), "");
  }
  assert.deepEqual(parseServerReply("CONT\t6\tVXNlcm5hbWU6"), {
    kind: "cont",
    id: 6,
    challenge: "VXNlcm5hbWU6",
  });
  assert.deepEqual(parseServerReply("CONT\t6\t"), { kind: "cont", id: 6, challenge: "" });
  const fail = parseServerReply("FAIL\t7\treason=Bad\x01tpass\ttemp");
  assert.equal(fail.kind, "fail");
  if (fail.kind === "fail") {
    assert.equal(fail.fields.get("reason"), "Bad\tpass");
    assert.ok(fail.fields.has("temp"));
  }
  for (
    const l of [
      "OK",
      "OK\tx",
      "CONT\t1",
      "CONT\t1\tno base64!",
      "NOTFOUND\t1",
      "",
      "OK\t99999999999",
    ]
  ) {
    assert.deepEqual(parseServerReply(l), { kind: "other" }, l);
  }
});

Deno.test("parseFields() keeps the first of a repeated name", () => {
  assert.deepEqual([...parseFields(["user=a", "user=b", "=x", "temp"])], [["user", "a"], [
    "temp",
    "",
  ]]);
});

Deno.test("tabUnescape() and printable()", () => {
  assert.equal(
    tabUnescape("a\x01tb\x01nc\x01rd\x010e\x011f\x01lg\x01xh"),
    "a\tb\nc\rd\0e\x01f\ngxh",
  );
  assert.equal(tabUnescape("plain"), "plain");
  assert.equal(printable("a\tb\u00e9c\x7f"), "a?b?c?");
  assert.equal(printable("x".repeat(300)).length, 100);
});

Deno.test("printableName() keeps a UTF-8 login, not a control character or line separator", () => {
  assert.equal(printableName("straße"), "straße");
  assert.equal(printableName("jörg😀"), "jörg😀");
  assert.equal(
    printableName("a\r\nX-Injected: 1\tb\x7f\x85c\u2028d\ufffd"),
    "a??X-Injected: 1?b??c?d?",
  );
  // Cut by characters, never between the halves of one.
  assert.equal(printableName("😀".repeat(300)), "😀".repeat(255));
  assert.equal(printableName("ab", 1), "a");
});

Deno.test("encodeCont() and encodeAuth() refuse a line Dovecot would not read (16 KiB with LF)", () => {
  const head = "CONT\t7\t".length;
  const fits = "A".repeat(MAX_REQUEST_LINE - head - 2);
  assert.equal(encodeCont(7, fits).length, MAX_REQUEST_LINE - 1);
  assert.throws(() => encodeCont(7, `${fits}A`), RequestTooLongError);
  const info = { tls: false };
  assert.throws(
    () => encodeAuth(1, "PLAIN", { service: "smtp", info, initialResponse: "QUFB".repeat(4096) }),
    RequestTooLongError,
  );
});
