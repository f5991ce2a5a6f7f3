/**
 * smtpd_forbid_bare_newline = reject side by side with a real Postfix 3.7
 * smtpd (3.7.11 has the 3.9 backport): a message with a bare LF, over DATA
 * and over BDAT, from a client outside smtpd_forbid_bare_newline_exclusions
 * (its default, $mynetworks, is 127.0.0.2/32 here; the client comes from
 * 127.0.0.1) and from one inside it (from 127.0.0.2), with
 * smtpd_forbid_bare_newline_reject_code at its default and at 554. The
 * client is Python's smtplib bound to each source address. Both servers
 * must give the same replies: the refusal names the host
 * (`550 5.5.2 host Error: bare <LF> received`), the excluded client's
 * message is queued. Needs root and Postfix.
 */

import assert from "node:assert/strict";
import { freePort, makeWorkDir, run, startDaemon } from "./_harness.ts";
import { havePostfix, startPostfix } from "./_postfix.ts";

const isRoot = Deno.uid() === 0;
const hasPostfix = await havePostfix();

// One message with a bare LF in its body, by DATA or by BDAT (a chunk, then
// BDAT 0 LAST); prints the replies from MAIL on, one a line.
const CLIENT = `
import smtplib, socket, sys
port, src, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
out = []
if mode.startswith("command"):
    # EHLO ending in a bare LF (or, in a transaction, RCPT), then NOOP: the
    # last replies, and "closed" when the server hangs up instead of answering.
    c = socket.create_connection(("127.0.0.1", port), source_address=(src, 0), timeout=20)
    f = c.makefile("rb")
    f.readline()
    cmds = [b"EHLO client.example\\n"]
    if mode == "command-in-mail":
        cmds = [b"EHLO client.example\\r\\n", b"MAIL FROM:<a@x.example>\\r\\n",
                b"RCPT TO:<u@x.example>\\r\\n", b"RCPT TO:<v@x.example>\\n"]
    for cmd in cmds:
        c.sendall(cmd)
        while True:
            line = f.readline()
            if not line or line[3:4] == b" ":
                break
    print(line.decode().rstrip() if line else "closed")
    try:
        c.sendall(b"NOOP\\r\\n")
        print(f.readline().decode().rstrip() or "closed")
    except OSError:
        print("closed")
    sys.exit(0)
with smtplib.SMTP("127.0.0.1", port, source_address=(src, 0),
                  local_hostname="client.example", timeout=20) as s:
    s.ehlo()
    out.append(s.mail("a@x.example"))
    out.append(s.rcpt("u@x.example"))
    body = b"Subject: lf\\r\\n\\r\\nline one\\nline two\\r\\n"
    if mode == "data":
        s.putcmd("DATA"); out.append(s.getreply())
        s.send(body + b".\\r\\n"); out.append(s.getreply())
    else:
        s.send(b"BDAT %d\\r\\n" % len(body) + body); out.append(s.getreply())
        s.send(b"BDAT 0 LAST\\r\\n"); out.append(s.getreply())
for code, text in out:
    print(code, text.decode())
`;

async function send(
  port: number,
  src: string,
  mode: "data" | "bdat" | "command" | "command-in-mail",
): Promise<string[]> {
  const r = await run("python3", ["-c", CLIENT, String(port), src, mode]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split("\n").map((l) => l.replace(/ queued as \S+$/, " queued as ID"));
}

Deno.test({
  name:
    "smtpd_forbid_bare_newline = reject side by side with Postfix 3.7: refused naming the host, with the reject code, except for a client in smtpd_forbid_bare_newline_exclusions ($mynetworks)",
  ignore: !isRoot || !hasPostfix,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await makeWorkDir("barelf");
    const pfPort = freePort();
    const pf554Port = freePort();
    const pf = await startPostfix(dir, {
      name: "barelf",
      smtpdPort: pfPort,
      masterCfExtra: `127.0.0.1:${pf554Port} inet n - n - - smtpd` +
        " -o smtpd_forbid_bare_newline_reject_code=554\n",
      mainCfExtra: [
        "mynetworks = 127.0.0.2/32",
        "smtpd_peername_lookup = no",
        "smtpd_forbid_bare_newline = reject",
        "relay_domains = x.example",
        "",
      ].join("\n"),
    });
    const base = [
      'myhostname = "barelf.localdomain"',
      'mynetworks = ["127.0.0.2/32"]',
      'relay_domains = ["x.example"]',
      'smtpd_forbid_bare_newline = "reject"',
    ].join("\n");
    const ours = await startDaemon(base);
    const ours554 = await startDaemon(`${base}\nsmtpd_forbid_bare_newline_reject_code = 554`);
    try {
      const pairs = [
        { theirs: pfPort, ours: ours.port, code: "550" },
        { theirs: pf554Port, ours: ours554.port, code: "554" },
      ];
      for (const { theirs, ours: port, code } of pairs) {
        for (const mode of ["data", "bdat", "command", "command-in-mail"] as const) {
          for (const src of ["127.0.0.1", "127.0.0.2"]) {
            const what = `${code}, ${mode}, from ${src}`;
            const want = await send(theirs, src, mode);
            const refusal = `${code} 5.5.2 barelf.localdomain Error: bare <LF> received`;
            if (src === "127.0.0.1") assert.ok(want.includes(refusal), `${what}: ${want}`);
            else assert.match(want.at(-1) ?? "", /^250 2\.0\.0 Ok/, what);
            assert.deepEqual(await send(port, src, mode), want, what);
          }
        }
      }
      // The log lines, without the queue IDs: "reject: END-OF-MESSAGE"
      // (DATA, BDAT LAST), "reject: BDAT content" (a chunk before LAST),
      // "reject: CONNECT" (the EHLO line), "reject: RCPT" (the second RCPT
      // line), each with from= and the first recipient's to= when in a
      // transaction.
      const rejects = (text: string) =>
        text.split("\n").flatMap((l) => {
          const m = /: (reject: \S+( content)? from .*bare <LF>.*)$/.exec(l);
          return m ? [m[1]] : [];
        });
      await pf.waitForLog("eight refusals", /(bare <LF> received[^]*){8}/);
      const theirLines = rejects(await pf.logText());
      assert.equal(theirLines.length, 8, theirLines.join("\n"));
      assert.deepEqual(
        [...rejects(ours.log()), ...rejects(ours554.log())],
        theirLines,
      );
    } finally {
      await ours.stop();
      await ours554.stop();
      await pf.stop();
    }
  },
});
