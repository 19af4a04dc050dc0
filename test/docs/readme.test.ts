/**
 * Every TypeScript block of README.md type-checks with the project's strict settings against the
 * package itself ("bun-sansio"). A block is a file of its own; an HTML comment on the line
 * before it may name the file (`<!-- readme-check: file main.ts -->`) or give a prelude of
 * declarations for a fragment (`<!-- readme-check: prelude declare const now: number; -->`).
 */
import { expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const OUT = join(ROOT, ".readme-check");

interface Block {
  readonly file: string;
  readonly line: number;
  readonly prelude: string;
  readonly code: string;
}

function blocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== "```ts") continue;
    const end = lines.indexOf("```", i + 1);
    if (end < 0) throw new Error(`README.md:${i + 1}: a ts block without its end`);
    const directive = /^<!-- readme-check: (file|prelude) (.*) -->$/.exec(lines[i - 1] ?? "");
    found.push({
      file: directive?.[1] === "file" ? (directive[2] as string) : `block-${i + 1}.ts`,
      line: i + 2,
      prelude: directive?.[1] === "prelude" ? (directive[2] as string) : "",
      code: lines.slice(i + 1, end).join("\n"),
    });
    i = end;
  }
  return found;
}

test("every TypeScript block in README.md type-checks", () => {
  const found = blocks(readFileSync(join(ROOT, "README.md"), "utf8"));
  expect(found.length).toBeGreaterThan(5);
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT);
  for (const b of found) {
    // the prelude on the block's first line keeps tsc's line numbers the README's (minus an offset)
    writeFileSync(join(OUT, b.file), `${b.prelude}\n${b.code}\n`);
  }
  writeFileSync(
    join(OUT, "tsconfig.json"),
    JSON.stringify({ extends: "../tsconfig.json", include: ["*.ts"] }),
  );
  const tsc = Bun.spawnSync(
    [process.execPath, join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", OUT],
    {
      cwd: ROOT,
    },
  );
  const output = tsc.stdout.toString() + tsc.stderr.toString();
  // "file(line,col): error": shown as README lines
  const readable = output.replace(/\.readme-check\/([\w.-]+)\((\d+),(\d+)\)/g, (_m, file, line) => {
    const b = found.find((x) => x.file === file);
    return b === undefined ? `${file}:${line}` : `README.md:${b.line + Number(line) - 2}`;
  });
  expect(readable).toBe("");
  expect(tsc.exitCode).toBe(0);
  rmSync(OUT, { recursive: true, force: true });
}, 60_000);
