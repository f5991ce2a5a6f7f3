import assert from "node:assert/strict";

/** The modules of src/session each module imports (code and type imports), from `deno info`. */
async function sessionImports(): Promise<Map<string, string[]>> {
  const entry = new URL("./mod.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
    }[];
  };
  const here = new URL("./", import.meta.url).href;
  const local = (s: string | undefined): s is string => s !== undefined && s.startsWith(here);
  const name = (s: string) => s.slice(here.length);
  const edges = new Map<string, string[]>();
  for (const m of info.modules) {
    if (!local(m.specifier)) continue;
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier]);
    edges.set(name(m.specifier), [...new Set(deps.filter(local).map(name))]);
  }
  return edges;
}

Deno.test("src/session has no import cycle, and no handler imports session.ts", async () => {
  const edges = await sessionImports();
  assert.ok(edges.has("commands/rcpt.ts"), "the handlers are in the graph");
  const cycles: string[] = [];
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (n: string) => {
    state.set(n, "open");
    path.push(n);
    for (const d of edges.get(n) ?? []) {
      if (state.get(d) === "open") cycles.push([...path.slice(path.indexOf(d)), d].join(" -> "));
      else if (!state.has(d)) visit(d);
    }
    path.pop();
    state.set(n, "done");
  };
  for (const n of edges.keys()) if (!state.has(n)) visit(n);
  assert.deepEqual(cycles, []);
  for (const [module, deps] of edges) {
    if (module.startsWith("commands/")) assert.ok(!deps.includes("session.ts"), module);
  }
});
