import assert from "node:assert/strict";
import { openTable, TableOpenError } from "./mod.ts";
import { retireAll } from "../../config/mod.ts";
import { runTableConformance } from "./table_test_suite.ts";
import { socketmapTable } from "./socketmap_table.ts";

/** Scratch directory for table files (git-ignored var/). */
const SCRATCH = new URL("../../../var/tests/", import.meta.url).pathname;

/**
 * Writes a table file, opens it as `type:path`, and removes the file (tables
 * are read once, at open).
 */
function openFileTable(type: string, text: string): ReturnType<typeof openTable> {
  const path = writeScratch(type, text);
  try {
    return openTable(`${type}:${path}`);
  } finally {
    Deno.removeSync(path);
  }
}

function writeScratch(type: string, text: string): string {
  Deno.mkdirSync(SCRATCH, { recursive: true });
  const path = Deno.makeTempFileSync({ dir: SCRATCH, prefix: `tables_test_${type}_` });
  Deno.writeTextFileSync(path, text);
  return path;
}

/** Like {@linkcode openFileTable}, but returns the TableOpenError and the file path. */
function openFileTableError(type: string, text: string): { err: TableOpenError; path: string } {
  const path = writeScratch(type, text);
  try {
    openTable(`${type}:${path}`);
  } catch (err) {
    assert.ok(err instanceof TableOpenError, `expected TableOpenError, got ${err}`);
    return { err, path };
  } finally {
    Deno.removeSync(path);
  }
  assert.fail(`expected ${type}:${path} to fail to open`);
}

function openError(spec: string): TableOpenError {
  try {
    openTable(spec);
  } catch (err) {
    assert.ok(err instanceof TableOpenError, `expected TableOpenError, got ${err}`);
    return err;
  }
  assert.fail(`expected ${spec} to fail to open`);
}

runTableConformance(
  "inline",
  (entries) => openTable(`inline:{ ${entries.map(([k, v]) => `{ ${k} = ${v} }`).join(", ")} }`),
  // Postfix's dict_inline does "no duplicate checks": a later item replaces an earlier one.
  { duplicates: "last" },
);

runTableConformance(
  "texthash",
  (entries) => openFileTable("texthash", entries.map(([k, v]) => `${k}\t${v}\n`).join("")),
);

// inline: and static:

const INLINE_SPECS: [spec: string, key: string, value: string | undefined][] = [
  ["inline:{ a=b }", "a", "b"],
  ["inline:{a=b,c=d}", "c", "d"],
  ["inline:{ a = b , c = d }", "a", "b"],
  ["inline:{ { a = x, y } , c=d }", "a", "x, y"],
  ["inline:{ a=b=c }", "a", "b=c"],
  ["inline:{ a=b, }", "a", "b"],
  ["inline:{ a=b }", "b", undefined],
];

for (const [spec, key, value] of INLINE_SPECS) {
  Deno.test(`openTable() parses ${JSON.stringify(spec)}: ${key} → ${value ?? "not found"}`, async () => {
    const t = openTable(spec);
    assert.deepEqual(
      await t.lookup(key),
      value === undefined ? { kind: "notFound" } : { kind: "found", value },
    );
  });
}

const BAD_INLINE: [spec: string, message: RegExp][] = [
  ["inline:a=b", /inline tables are written inline:\{ key=value, \.\.\. \}/],
  ["inline:{ a=b", /inline tables are written/],
  ["inline:{ novalue }", /^"inline:\{ novalue \}": inline table item "novalue" needs key=value$/],
  ["inline:{ =value }", /item "=value" needs key=value/],
];

for (const [spec, message] of BAD_INLINE) {
  Deno.test(`openTable() refuses ${JSON.stringify(spec)}`, () => {
    assert.match(openError(spec).message, message);
  });
}

Deno.test("openTable() returns the same value for every key of a static: table", async () => {
  for (
    const [spec, value] of [
      ["static:REJECT", "REJECT"],
      ["static:{ 554 5.7.1 go away }", "554 5.7.1 go away"],
      ["static:OK", "OK"],
    ]
  ) {
    const t = openTable(spec as string);
    assert.deepEqual(t.values, [value]);
    for (const key of ["example.com", "192.0.2.1", "", "u@example.org"]) {
      assert.deepEqual(await t.lookup(key), { kind: "found", value }, `${spec} ${key}`);
    }
  }
});

Deno.test("openTable() refuses an unsupported table type, naming the supported ones", () => {
  for (const spec of ["hash:/etc/postfix/access", "ldap:foo", "btree:/x"]) {
    const err = openError(spec);
    const type = spec.slice(0, spec.indexOf(":"));
    assert.match(err.message, new RegExp(`unsupported table type "${type}"`));
    assert.match(err.message, /supported: inline, static, texthash, cidr, regexp, pcre/);
  }
});

Deno.test("openTable() refuses an unreadable texthash: or cidr: file", () => {
  const missing = `${SCRATCH}no_such_table_file`;
  for (const type of ["texthash", "cidr"]) {
    const err = openError(`${type}:${missing}`);
    assert.match(err.message, new RegExp(`^cannot open table "${type}:${missing}": `));
  }
});

// texthash:

Deno.test("openTable() reads texthash: comments, blank lines, CRLF and continuation lines", async () => {
  const t = openFileTable(
    "texthash",
    [
      "# a comment",
      "",
      "bad.example\t554 match",
      "  bad.example",
      "\t# still a comment",
      "ok.example OK\r",
      "   ",
      "long.example 550 5.7.1 one",
      " two",
      "\tthree",
      "",
    ].join("\n"),
  );
  assert.deepEqual(await t.lookup("bad.example"), {
    kind: "found",
    value: "554 match bad.example",
  });
  assert.deepEqual(await t.lookup("ok.example"), { kind: "found", value: "OK" });
  assert.deepEqual(await t.lookup("long.example"), {
    kind: "found",
    value: "550 5.7.1 one two three",
  });
  assert.deepEqual(await t.lookup("#"), { kind: "notFound" });
  assert.deepEqual(
    new Set(t.values),
    new Set(["554 match bad.example", "OK", "550 5.7.1 one two three"]),
  );
});

Deno.test("openTable() texthash: a key splits at white space outside double quotes, as Postfix's texthash", async () => {
  const t = openFileTable(
    "texthash",
    [
      '"john smith"@example.com john',
      '"a b c"  first   second',
      "back\\ slash@example.com 550 escaped",
      'value@example.com REJECT say "hi',
    ].join("\n"),
  );
  assert.deepEqual(await t.lookup('"John Smith"@example.com'), { kind: "found", value: "john" });
  assert.deepEqual(await t.lookup('"john'), { kind: "notFound" });
  assert.deepEqual(await t.lookup('"a b c"'), { kind: "found", value: "first   second" });
  assert.deepEqual(await t.lookup("back\\ slash@example.com"), {
    kind: "found",
    value: "550 escaped",
  });
  assert.deepEqual(await t.lookup("value@example.com"), {
    kind: "found",
    value: 'REJECT say "hi',
  });
});

Deno.test("openTable() texthash: a value, or the rest of a quoted key, may begin on a continuation line, as Postfix's readllines() joins them", async () => {
  const t = openFileTable(
    "texthash",
    ["lonely", "  OK", '"john', '  smith"@example.com', "\t# a comment", "\tREJECT no", "b DUNNO"]
      .join("\n"),
  );
  assert.deepEqual(await t.lookup("lonely"), { kind: "found", value: "OK" });
  assert.deepEqual(await t.lookup('"john smith"@example.com'), {
    kind: "found",
    value: "REJECT no",
  });
  assert.deepEqual(await t.lookup("b"), { kind: "found", value: "DUNNO" });
});

const BAD_TEXTHASH: [text: string, line: number, message: RegExp][] = [
  ["a OK\nlonely\n", 2, /missing value for key "lonely"/],
  ['a OK\n"john smith@example.com OK\n', 2, /unbalanced '"' in the key/],
  ['"john smith"\n', 1, /missing value for key/],
  ["# c\n\n  orphan continuation\na OK\n", 3, /continuation line without an entry/],
  ["a OK\nb OK\n\n\nc\n", 5, /missing value for key "c"/],
];

for (const [text, line, message] of BAD_TEXTHASH) {
  Deno.test(`openTable() names file:${line} for a texthash syntax error in ${JSON.stringify(text)}`, () => {
    const { err, path } = openFileTableError("texthash", text);
    assert.ok(err.message.startsWith(`${path}:${line}: `), err.message);
    assert.match(err.message, message);
  });
}

Deno.test({
  name: "openTable() accepts a continuation line after a repeated texthash key",
  // Regression (found by these tests, fixed): parseTextTable() sets `last = undefined` for a repeated key, so the
  // repeated entry's continuation line throws "continuation line without an
  // entry" and a valid file (Postfix only warns "duplicate entry") stops the start.
  fn: async () => {
    const t = openFileTable("texthash", "a OK\na REJECT\n  more text\nb DUNNO\n");
    assert.deepEqual(await t.lookup("a"), { kind: "found", value: "OK" });
    assert.deepEqual(await t.lookup("b"), { kind: "found", value: "DUNNO" });
  },
});

// cidr: (keys are networks, so the shared suite does not apply)

const CIDR_FILE = [
  "# first match wins",
  "192.0.2.0/24       REJECT first",
  "192.0.2.1          OK never reached",
  "10.0.0.0/8         554 5.7.1 ten",
  "",
  "2001:db8::/32      REJECT v6",
  "[2001:db8:1::]/48  OK never reached",
  "198.51.100.7       DUNNO",
  "0.0.0.0/0          450 any v4",
].join("\n");

const CIDR_CASES: [key: string, value: string | undefined][] = [
  ["192.0.2.1", "REJECT first"],
  ["192.0.2.255", "REJECT first"],
  ["[192.0.2.9]", "REJECT first"],
  ["10.255.0.1", "554 5.7.1 ten"],
  ["198.51.100.7", "DUNNO"],
  ["198.51.100.8", "450 any v4"],
  ["2001:db8:1::5", "REJECT v6"],
  ["2001:DB8::1", "REJECT v6"],
  ["2001:db9::1", undefined],
  ["::1", undefined],
  ["example.com", undefined],
  ["192.0.2", undefined],
  ["", undefined],
];

for (const [key, value] of CIDR_CASES) {
  Deno.test(`openTable() cidr: lookup(${JSON.stringify(key)}) → ${value ?? "not found"}`, async () => {
    const t = openFileTable("cidr", CIDR_FILE);
    assert.deepEqual(
      await t.lookup(key),
      value === undefined ? { kind: "notFound" } : { kind: "found", value },
    );
  });
}

Deno.test("openTable() cidr: values lists every rule's value in file order", () => {
  const t = openFileTable("cidr", CIDR_FILE);
  assert.deepEqual(t.values, [
    "REJECT first",
    "OK never reached",
    "554 5.7.1 ten",
    "REJECT v6",
    "OK never reached",
    "DUNNO",
    "450 any v4",
  ]);
});

Deno.test({
  name: "openTable() cidr: an IPv6 network does not match IPv4 keys",
  // Regression (found by these tests, fixed): parseIp() maps IPv4 into ::ffff:0:0/96 and inNetwork() returns true
  // for bits 0, so "::/0" (and "::ffff:0:0/96") match every IPv4 client;
  // Postfix's cidr_table compares the address family first.
  fn: async () => {
    const t = openFileTable("cidr", "::/0 REJECT v6 only\n");
    assert.deepEqual(await t.lookup("2001:db8::1"), { kind: "found", value: "REJECT v6 only" });
    assert.deepEqual(await t.lookup("192.0.2.1"), { kind: "notFound" });
  },
});

const BAD_CIDR: [text: string, line: number, message: RegExp][] = [
  ["192.0.2.0/24 OK\n# c\n300.0.0.0/8 OK\n", 3, /cannot parse network "300\.0\.0\.0\/8"/],
  ["192.0.2.0/33 OK\n", 1, /cannot parse network "192\.0\.2\.0\/33"/],
  ["\n\nexample.com OK\n", 3, /cannot parse network "example\.com"/],
  ["192.0.2.0/24 OK\n10.0.0.0/8\n", 2, /missing value for "10\.0\.0\.0\/8"/],
];

for (const [text, line, message] of BAD_CIDR) {
  Deno.test(`openTable() names file:${line} for a bad cidr line in ${JSON.stringify(text)}`, () => {
    const { err, path } = openFileTableError("cidr", text);
    assert.ok(err.message.startsWith(`${path}:${line}: `), err.message);
    assert.match(err.message, message);
  });
}

Deno.test("retireAll closes the idle connection of its owner's socketmap tables, not the others'", async () => {
  // A socketmap server on loopback that answers NOTFOUND and counts the
  // connections it holds (one fewer when the client closes one).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let open = 0;
  const served = (async () => {
    for await (const conn of listener) {
      open++;
      void (async () => {
        const buf = new Uint8Array(1024);
        while (await conn.read(buf).catch(() => null) !== null) {
          await conn.write(new TextEncoder().encode("9:NOTFOUND ,"));
        }
        open--;
        conn.close();
      })();
    }
  })().catch(() => {});
  const until = async (want: number) => {
    // (Up to 10 s: a loaded host may take long to see a close.)
    for (let i = 0; i < 500 && open !== want; i++) await new Promise((r) => setTimeout(r, 20));
    return open;
  };
  const owner = {};
  const retired = openTable(`socketmap:inet:127.0.0.1:${port}:a`, { owner });
  const kept = openTable(`socketmap:inet:127.0.0.1:${port}:b`, { owner: {} });
  try {
    assert.deepEqual(await retired.lookup("x"), { kind: "notFound" });
    assert.deepEqual(await kept.lookup("x"), { kind: "notFound" });
    assert.equal(await until(2), 2);
    retireAll(owner);
    assert.equal(await until(1), 1);
    // Still answers, and keeps no connection after.
    assert.deepEqual(await retired.lookup("y"), { kind: "notFound" });
    assert.equal(await until(1), 1);
  } finally {
    retireAll(owner);
    kept.retire?.();
    listener.close();
    await served;
  }
});

Deno.test("openTable() reads a table file saved with a byte-order mark and CRLF lines", async () => {
  for (
    const [type, text, key] of [
      ["texthash", "\uFEFFfirst.example REJECT\r\nsecond.example OK\r\n", "first.example"],
      ["cidr", "\uFEFF192.0.2.0/24 REJECT\r\n198.51.100.0/24 OK\r\n", "192.0.2.1"],
      ["regexp", "\uFEFF/^first/ REJECT\r\n/^second/ OK\r\n", "first.example"],
      ["pcre", "\uFEFF/^first/ REJECT\r\n/^second/ OK\r\n", "first.example"],
    ]
  ) {
    const t = openFileTable(type as string, text as string);
    assert.deepEqual(await t.lookup(key as string), { kind: "found", value: "REJECT" }, type);
  }
});

Deno.test("openTable() refuses a cidr: rule with host bits set, with file and line (it would match the whole network)", () => {
  for (
    const [rule, want] of [
      ["10.0.0.1/8 REJECT", '"10.0.0.1/8", perhaps you should use "10.0.0.0/8" instead'],
      ["2001:db8::1/64 REJECT", '"2001:db8::1/64", perhaps you should use "2001:db8::/64" instead'],
    ]
  ) {
    const { err, path } = openFileTableError("cidr", `192.0.2.0/24 OK\n${rule}\n`);
    assert.equal(err.message, `${path}:2: non-null host address bits in ${want}`);
  }
  // Host addresses and networks written at their base stay as they were.
  openFileTable("cidr", "10.0.0.0/8 OK\n10.1.2.3 REJECT\n[2001:db8::]/64 OK\n::1 OK\n");
});

Deno.test("socketmap: a server that never answers costs one timeout, not one per try (as Postfix)", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const held: Deno.Conn[] = [];
  const served = (async () => {
    for await (const conn of listener) held.push(conn);
  })().catch(() => {});
  const table = socketmapTable("socketmap:x", `inet:127.0.0.1:${port}:m`, ".", 1);
  try {
    const t0 = Date.now();
    const r = await table.lookup("key");
    const took = Date.now() - t0;
    assert.equal(r.kind, "tempfail");
    // One connection: a second try would have opened another (and doubled the wait).
    assert.equal(held.length, 1);
    assert.ok(took >= 900, `took ${took} ms`);
  } finally {
    table.retire?.();
    listener.close();
    await served;
    for (const c of held) c.close();
  }
});
