/**
 * Where `deno task bench --write FILE` puts its report: BENCHMARKS.md keeps
 * the latest full run and the latest quick run, each between markers, and
 * git keeps the earlier ones.
 *
 * @module
 */

/**
 * Puts a run's report between its markers (`<!-- bench:full -->` ...
 * `<!-- /bench:full -->`), replacing the run that was there; appends the
 * section when the file has none. The history of runs is in git.
 * @param text the file's text
 * @param kind "full" or "quick"
 * @param md the report
 * @returns the new text
 */
export function replaceSection(text: string, kind: string, md: string): string {
  const open = `<!-- bench:${kind} -->`;
  const close = `<!-- /bench:${kind} -->`;
  const section = `${open}\n${md.trimEnd()}\n${close}`;
  const a = text.indexOf(open);
  const b = text.indexOf(close);
  if (a >= 0 && b > a) return text.slice(0, a) + section + text.slice(b + close.length);
  return `${text.trimEnd()}\n\n${section}\n`;
}
