import assert from "node:assert/strict";
import { formatReply, REPLY, type Reply } from "../protocol/reply.ts";
import { COMMANDS, sequenceRefusal, type Verb } from "./command_table.ts";
import type { SessionPhase } from "./phase.ts";
import { runSession } from "./session.ts";
import { noActions, type Transaction } from "./transaction.ts";
import { fakeDeps, scriptedTransport } from "./_test_fakes.ts";

/** Where a session can stand when a command arrives. */
type Where = "connected" | "greeted" | "inMail" | "inMailNoHelo";

/** The handler runs (the sequence rules let the command through). */
const RUNS = "runs";
type Cell = Reply | typeof RUNS;

const tx: Transaction = {
  sender: { local: "s", domain: "example.org" } as Transaction["sender"],
  senderText: "s@example.org",
  recipients: [],
  actions: noActions(),
  declaredSize: undefined,
  body: undefined,
};

const PHASES: Record<Where, SessionPhase> = {
  connected: { kind: "connected" },
  greeted: { kind: "greeted", helo: "c.example" },
  inMail: { kind: "inMail", helo: "c.example", tx },
  inMailNoHelo: { kind: "inMail", helo: undefined, tx },
};

/** The sequence rules with smtpd_helo_required = no (the default), written out. */
const RULES: Record<Verb, Record<Where, Cell>> = {
  HELO: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  EHLO: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  MAIL: {
    connected: RUNS,
    greeted: RUNS,
    inMail: REPLY.nestedMail,
    inMailNoHelo: REPLY.nestedMail,
  },
  RCPT: {
    connected: REPLY.needMail,
    greeted: REPLY.needMail,
    inMail: RUNS,
    inMailNoHelo: RUNS,
  },
  // As Postfix's data_cmd: "need RCPT" even before MAIL.
  DATA: {
    connected: REPLY.needRcpt,
    greeted: REPLY.needRcpt,
    inMail: RUNS,
    inMailNoHelo: RUNS,
  },
  // The handler always runs: it must read the chunk to stay in step.
  BDAT: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  RSET: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  NOOP: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  QUIT: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  VRFY: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  // The handler refuses AUTH in a transaction (after "not enabled", Postfix's order).
  AUTH: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  // As Postfix: HELO first only with smtpd_helo_required.
  ETRN: {
    connected: RUNS,
    greeted: RUNS,
    inMail: REPLY.mailInProgress,
    inMailNoHelo: REPLY.mailInProgress,
  },
  // As Postfix: taken inside a transaction too (the handshake ends it).
  STARTTLS: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
  HELP: { connected: RUNS, greeted: RUNS, inMail: RUNS, inMailNoHelo: RUNS },
};

/** With smtpd_helo_required = yes, MAIL, ETRN and AUTH need HELO/EHLO first; nothing else changes. */
const RULES_HELO_REQUIRED: Record<Verb, Record<Where, Cell>> = {
  ...RULES,
  MAIL: {
    connected: REPLY.sendHeloFirst,
    greeted: RUNS,
    inMail: REPLY.nestedMail,
    inMailNoHelo: REPLY.sendHeloFirst,
  },
  ETRN: {
    connected: REPLY.sendHeloFirst,
    greeted: RUNS,
    inMail: REPLY.mailInProgress,
    inMailNoHelo: REPLY.sendHeloFirst,
  },
  AUTH: {
    connected: REPLY.sendHeloFirst,
    greeted: RUNS,
    inMail: RUNS,
    inMailNoHelo: REPLY.sendHeloFirst,
  },
};

const CONFIGS = [
  { heloRequired: false, rules: RULES },
  { heloRequired: true, rules: RULES_HELO_REQUIRED },
];

for (const { heloRequired, rules } of CONFIGS) {
  Deno.test(`sequenceRefusal() follows the rules for every verb and phase (smtpd_helo_required = ${heloRequired})`, () => {
    assert.deepEqual(Object.keys(rules).sort(), Object.keys(COMMANDS).sort());
    for (const [verb, row] of Object.entries(rules) as [Verb, Record<Where, Cell>][]) {
      for (const [where, want] of Object.entries(row) as [Where, Cell][]) {
        const got = sequenceRefusal(COMMANDS[verb], PHASES[where], {
          smtpd_helo_required: heloRequired,
        });
        assert.deepEqual(got ?? RUNS, want, `${verb} in ${where}`);
      }
    }
  });
}

/** A valid command line per verb, and the handler's reply when it runs in a fake local session. */
const COMMAND_LINES: Record<Verb, [string, string]> = {
  HELO: ["HELO c.example", "250 "],
  EHLO: ["EHLO c.example", "250 CHUNKING"],
  MAIL: ["MAIL FROM:<s@example.org>", "250 2.1.0 Ok"],
  RCPT: ["RCPT TO:<r@example.com>", "250 2.1.5 Ok"],
  DATA: ["DATA", formatReply(REPLY.noValidRecipients).trim()],
  BDAT: ["BDAT x", formatReply(REPLY.bdatSyntax).trim()],
  RSET: ["RSET", "250 2.0.0 Ok"],
  NOOP: ["NOOP", "250 2.0.0 Ok"],
  QUIT: ["QUIT", "221 2.0.0 Bye"],
  VRFY: ["VRFY r@example.com", "252 2.0.0 r@example.com"],
  ETRN: ["ETRN example.com", formatReply(REPLY.etrnNeedsNetwork).trim()],
  STARTTLS: ["STARTTLS", formatReply(REPLY.readyForTls).trim()],
  AUTH: ["AUTH PLAIN", formatReply(REPLY.authNotEnabled).trim()],
  HELP: ["HELP", "214 2.0.0 Commands:"],
};

/** The commands that bring a session to each phase. */
const PREFIXES: Record<Where, string[]> = {
  connected: [],
  greeted: ["EHLO c.example"],
  inMail: ["EHLO c.example", "MAIL FROM:<s@example.org>"],
  inMailNoHelo: ["MAIL FROM:<s@example.org>"],
};

/**
 * Plays lines through a real session loop (STARTTLS offered, its handshake
 * fails) and returns the last reply line.
 */
async function lastReply(lines: string[], heloRequired: boolean): Promise<string> {
  const input = new TextEncoder().encode(lines.map((l) => `${l}\r\n`).join(""));
  const { transport, output } = scriptedTransport(input, { startTls: true });
  await runSession(transport, fakeDeps({ smtpd_helo_required: heloRequired }));
  const replies = output().split("\r\n").filter((l) => /^\d{3} /.test(l));
  return replies.at(-1) ?? "";
}

for (const { heloRequired, rules } of CONFIGS) {
  Deno.test(`Session applies the command table's rules for every verb and phase (smtpd_helo_required = ${heloRequired})`, async () => {
    for (const [verb, row] of Object.entries(rules) as [Verb, Record<Where, Cell>][]) {
      for (const [where, want] of Object.entries(row) as [Where, Cell][]) {
        // With HELO required, a transaction without HELO cannot be reached.
        if (heloRequired && where === "inMailNoHelo") continue;
        const [line, ran] = COMMAND_LINES[verb];
        const got = await lastReply([...PREFIXES[where], line], heloRequired);
        const expected = want === RUNS ? ran : formatReply(want).trim();
        assert.ok(
          got.startsWith(expected),
          `${verb} in ${where}: got "${got}", want "${expected}"`,
        );
      }
    }
  });
}

/** Syntax and sequence checks come in Postfix's order; each row would change if it did not. */
const ORDER_CASES: [string, string[], Reply][] = [
  ["DATA with an argument before a transaction is a sequence error", ["DATA x"], REPLY.needRcpt],
  ["DATA with an argument and no recipient has no valid recipients", [
    "EHLO c",
    "MAIL FROM:<a@b.example>",
    "DATA x",
  ], REPLY.noValidRecipients],
  ["DATA with an argument and a recipient is a syntax error", [
    "EHLO c",
    "MAIL FROM:<a@b.example>",
    "RCPT TO:<r@c.example>",
    "DATA x",
  ], REPLY.dataSyntax],
  ["RSET with an argument", ["EHLO c", "MAIL FROM:<a@b.example>", "RSET x"], REPLY.rsetSyntax],
  ["a malformed RCPT outside a transaction is a sequence error", ["RCPT bogus"], REPLY.needMail],
  ["a malformed MAIL inside a transaction is a nested MAIL", [
    "EHLO c",
    "MAIL FROM:<a@b.example>",
    "MAIL bogus",
  ], REPLY.nestedMail],
  ["ETRN without an argument before HELO is a syntax error", ["ETRN"], REPLY.etrnSyntax],
  ["ETRN without an argument after HELO is a syntax error", ["HELO c", "ETRN"], REPLY.etrnSyntax],
  ["STARTTLS with an argument inside a transaction", [
    "EHLO c",
    "MAIL FROM:<a@b.example>",
    "STARTTLS x",
  ], REPLY.starttlsSyntax],
  ["STARTTLS after a RSET ends the transaction", [
    "EHLO c",
    "MAIL FROM:<a@b.example>",
    "RSET",
    "STARTTLS",
  ], REPLY.readyForTls],
  [
    "RCPT after RSET without HELO",
    ["MAIL FROM:<a@b.example>", "RSET", "RCPT TO:<r@c.example>"],
    REPLY.needMail,
  ],
  [
    "ETRN after RSET without HELO runs (stand-alone: no network client)",
    ["MAIL FROM:<a@b.example>", "RSET", "ETRN c.example"],
    REPLY.etrnNeedsNetwork,
  ],
];

for (const [what, lines, want] of ORDER_CASES) {
  Deno.test(`Session: ${what}`, async () => {
    assert.equal(await lastReply(lines, false), formatReply(want).trim());
  });
}

Deno.test("Session: STARTTLS is not implemented where it is not offered (as Postfix)", async () => {
  const input = new TextEncoder().encode("EHLO c\r\nSTARTTLS\r\n");
  const { transport, output } = scriptedTransport(input);
  await runSession(transport, fakeDeps());
  assert.ok(output().endsWith(formatReply(REPLY.notImplemented)));
});

Deno.test("Session: a discarded STARTTLS is not implemented even where TLS is available", async () => {
  const input = new TextEncoder().encode("EHLO c\r\nSTARTTLS\r\n");
  const { transport, output } = scriptedTransport(input, { startTls: true });
  await runSession(transport, fakeDeps({ smtpd_discard_ehlo_keywords: ["starttls"] }));
  assert.ok(!output().includes("250-STARTTLS"), output());
  assert.ok(output().endsWith(formatReply(REPLY.notImplemented)), output());
});

Deno.test("Session at smtpd_tls_security_level = encrypt: before STARTTLS only Postfix's pre-TLS commands run; the rest get 530 5.7.0", async () => {
  const starttlsFirst = formatReply(REPLY.starttlsFirst).trim();
  // Postfix's SMTPD_CMD_FLAG_PRE_TLS: HELO, EHLO, STARTTLS, NOOP, QUIT, HELP.
  const allowed = new Set<Verb>(["HELO", "EHLO", "STARTTLS", "NOOP", "QUIT", "HELP"]);
  const lines: Record<Verb, string> = {
    ...Object.fromEntries(Object.entries(COMMAND_LINES).map(([v, [l]]) => [v, l])) as Record<
      Verb,
      string
    >,
    // Postfix's order: the 530 comes before a command's own syntax and sequence checks.
    DATA: "DATA x",
    RSET: "RSET x",
    RCPT: "RCPT TO:<r@example.com>",
    BDAT: "BDAT 4 LAST",
  };
  for (const verb of Object.keys(COMMANDS) as Verb[]) {
    const chunk = verb === "BDAT" ? "NOOP" : "";
    const input = new TextEncoder().encode(`EHLO c\r\n${lines[verb]}\r\n${chunk}NOOP\r\n`);
    const { transport, output } = scriptedTransport(input, { startTls: true });
    await runSession(transport, fakeDeps({ smtpd_tls_security_level: "encrypt" }));
    const replies = output().split("\r\n").filter((l) => /^\d{3} /.test(l));
    if (allowed.has(verb)) {
      assert.notEqual(replies[2], starttlsFirst, `${verb}: ${output()}`);
    } else {
      assert.equal(replies[2], starttlsFirst, `${verb}: ${output()}`);
      // BDAT's chunk ("NOOP") was read as data, not run: one NOOP answers.
      assert.deepEqual(replies.slice(3), ["250 2.0.0 Ok"], `${verb}: ${output()}`);
    }
  }
});
