/**
 * Which environment variables a config string substitutes (§2.5), for `--allow-env`.
 * @module
 */

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/**
 * The names of the variables `text` references: `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`,
 * `${VAR:d}`, including references inside defaults (`${A:-${B}}` → A, B: B is read when A is
 * unset). `$$` is a literal `$` and references nothing. Every referenced variable is read even
 * when it has a default, so each needs `--allow-env=<name>`.
 */
export function envVarsIn(text: string): string[] {
  const names: string[] = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== "$") continue;
    const next = text[i + 1];
    if (next === "$") {
      i++;
      continue;
    }
    const m = NAME.exec(text.slice(next === "{" ? i + 2 : i + 1));
    if (m && !names.includes(m[0])) names.push(m[0]);
  }
  return names;
}
