/**
 * What the documentation and code comments point at exists in this repository: files named by
 * their repository path, and `wimsectl` commands. Users have the repository only, so a reference
 * to a file outside it (a digest of the drafts next to the checkout, say) or to a command that
 * was renamed is a dead end; the public source (an RFC, a draft, Envoy's documentation) is cited
 * instead.
 */
import test from 'ava';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GROUPS } from '../../src/cli/wimsectl.ts';
import { ROOT } from '../helpers/process.ts';

const SELF = relative(ROOT, new URL(import.meta.url).pathname);

function walk(dir: string, keep: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = join(dir, name);
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...walk(rel, keep));
    else if (keep(rel)) out.push(rel);
  }
  return out;
}

const sources = [
  'README.md',
  ...walk('docs', (f) => f.endsWith('.md')),
  ...walk('deploy', (f) => /\.(md|yaml)$/.test(f) || f.endsWith('Dockerfile')),
  ...walk('envoy', (f) => f.endsWith('.yaml')),
  ...walk('src', (f) => f.endsWith('.ts')),
  ...walk('examples', (f) => f.endsWith('.ts')),
  ...walk('bench', (f) => f.endsWith('.ts') || f.endsWith('.md')),
  ...walk('test', (f) => f.endsWith('.ts') && f !== SELF),
];

/**
 * A repository path: a top-level folder of this repository (or `spec/`), then a file with an
 * extension. Under `envoy/` only YAML files: `envoy/service/...proto` names Envoy's own protos.
 */
const PATH =
  /(?<![\w/.@$<>{}-])((?:docs|src|test|deploy|examples|bench|proto|bin|spec)\/[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.(?:md|ts|yaml|yml|proto|mjs|json)|envoy\/[A-Za-z0-9_.-]+\.yaml)\b/g;

test('docs references - every repository path named in docs, comments and configs exists', (t) => {
  t.true(sources.length > 100);
  const missing: string[] = [];
  for (const f of sources) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    text.split('\n').forEach((line, i) => {
      for (const m of line.matchAll(PATH)) if (!existsSync(join(ROOT, m[1]!))) missing.push(`${f}:${i + 1}: ${m[1]}`);
    });
  }
  t.deepEqual(missing, []);
});

test('docs references - nothing points outside the repository (no ../shared, no spec/ digests)', (t) => {
  const outside: string[] = [];
  for (const f of sources.filter((s) => !s.startsWith('test/'))) {
    readFileSync(join(ROOT, f), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/\.\.\/shared\/|(?<![\w/.-])spec\/[a-z]+\.md|\b(?:anchors|wimse|envoy)\.md §/.test(line)) outside.push(`${f}:${i + 1}: ${line.trim()}`);
      });
  }
  t.deepEqual(outside, []);
});

test('docs references - every `wimsectl GROUP VERB` quoted in docs, comments and configs is a command', (t) => {
  const globalsWithValue = new Set(['--server', '--token-file', '--ca-file', '--cert-file', '--key-file', '-o', '--output']);
  const commands = new Set([...Object.entries(GROUPS).flatMap(([g, verbs]) => Object.keys(verbs).map((v) => `${g} ${v}`)), 'authn check']);
  const unknown: string[] = [];
  let seen = 0;
  for (const f of sources) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    // Quoted spans (`...`, also across a comment's line break) and shell lines.
    const spans = [
      ...[...text.matchAll(/`([^`\n]*(?:\n[ \t]*(?:#|\*|\/\/)[^`\n]*)*)`/g)].map((m) => m[1]!.replace(/\n[ \t]*(?:#|\*|\/\/)[ \t]*/g, ' ')),
      ...[...text.matchAll(/^\s*(?:\$ |npx )?(wimsectl .*)$/gm)].map((m) => m[1]!),
    ];
    for (const span of spans) {
      for (const m of span.matchAll(/\bwimsectl /g)) {
        const words = span.slice(m.index! + m[0].length).trim().split(/\s+/);
        let i = 0;
        // A flag's value, unless the next word is a flag itself (an example of a missing value).
        while (i < words.length && words[i]!.startsWith('-')) i += globalsWithValue.has(words[i]!) && !words[i + 1]?.startsWith('-') ? 2 : 1;
        // `wimsectl help [GROUP [VERB]]` names what follows it.
        if (words[i] === 'help') i++;
        const [group, verb] = [words[i], words[i + 1]];
        if (!group || !/^[a-z][a-z-]*$/.test(group) || ['is', 'and', 'or', 'with', 'works', 'against', 'reads', 'writes', 'prints'].includes(group)) continue;
        seen++;
        // `wimsectl token` and `wimsectl entry ...` name a group; anything else must be a command.
        const groupOnly = !verb || verb === '...' || !/^[a-z]/.test(verb);
        const known = groupOnly ? group in GROUPS || group === 'authn' : commands.has(`${group} ${verb.replace(/[^a-z-].*$/, '')}`);
        if (!known) unknown.push(`${f}: wimsectl ${group} ${verb ?? ''}`);
      }
    }
  }
  t.true(seen > 20);
  t.deepEqual(unknown, []);
});
