#!/usr/bin/env node
// Re-derives the mechanical facts of conformance/xenapi.json from xapi's
// datamodel (xapi-project/xen-api, ocaml/idl/*.ml) at a given commit, and
// either reports where the JSON differs (default) or rewrites them (--write).
//
// Derived here: for each "custom" method its parameter names and types (after
// the session), whether it takes a session, whether it has an Async form, the
// errors it declares and the line of its definition; for each error code its
// parameter names (datamodel_errors.ml) and its wire name (api_errors.ml); the
// list of fields of each class (see README: the 2024-05 doc dump plus the
// fields datamodel_lifecycle.ml names). Hand-checked facts (allowed power
// states, the shapes xapi really raises, notes) are never touched.
//
//   node conformance/refresh.mjs --repo DIR [--commit SHA] [--write]
//   (DIR: a clone of https://github.com/xapi-project/xen-api, bare or not)
//
// Reads the repository with `git show`, so a bare mirror is enough. Exit 0:
// the JSON agrees (or was rewritten); 1: differences (listed); 2: usage.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const jsonPath = join(here, 'xenapi.json');

function parseArgs(argv) {
  const out = { repo: null, commit: null, write: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--write') out.write = true;
    else if (a === '--repo') out.repo = argv[++i];
    else if (a === '--commit') out.commit = argv[++i];
    else {
      console.error(`usage: refresh.mjs [--repo DIR] [--commit SHA] [--write] (unknown: ${a})`);
      process.exit(2);
    }
  }
  if (!out.repo) {
    console.error('usage: refresh.mjs --repo DIR [--commit SHA] [--write] (DIR: a clone of https://github.com/xapi-project/xen-api)');
    process.exit(2);
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const doc = JSON.parse(readFileSync(jsonPath, 'utf8'));
const commit = args.commit ?? doc.source.commit;
const show = (path, at = commit) => execFileSync('git', ['-C', args.repo, 'show', `${at}:${path}`], { encoding: 'utf8', maxBuffer: 64 << 20 });

// ---- a small OCaml tokenizer: enough for datamodel call/field/error forms ----

/** Tokens: {t: 'id'|'str'|'p', v, line, col (identifiers only)}. Comments are dropped; strings unescaped (line continuations removed). */
function tokenize(src) {
  const toks = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (c === '\n') {
      line++;
      i++;
      lineStart = i;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r') {
      i++;
      continue;
    }
    if (c === '(' && src[i + 1] === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (src[i] === '\n') line++;
        if (src[i] === '(' && src[i + 1] === '*') {
          depth++;
          i += 2;
          continue;
        }
        if (src[i] === '*' && src[i + 1] === ')') {
          depth--;
          i += 2;
          continue;
        }
        if (src[i] === '"') {
          // strings inside comments are lexed by OCaml too
          i++;
          while (i < n && src[i] !== '"') {
            if (src[i] === '\\') i++;
            if (src[i] === '\n') line++;
            i++;
          }
        }
        i++;
      }
      continue;
    }
    if (c === '"') {
      const start = line;
      let v = '';
      i++;
      while (i < n && src[i] !== '"') {
        if (src[i] === '\\') {
          const d = src[i + 1];
          if (d === '\n') {
            line++;
            i += 2;
            while (src[i] === ' ' || src[i] === '\t') i++;
            continue;
          }
          v += d === 'n' ? '\n' : d === 't' ? '\t' : d;
          i += 2;
          continue;
        }
        if (src[i] === '\n') line++;
        v += src[i++];
      }
      i++;
      toks.push({ t: 'str', v, line: start });
      continue;
    }
    if (c === '{' && src[i + 1] === '|') {
      const end = src.indexOf('|}', i + 2);
      const v = src.slice(i + 2, end);
      toks.push({ t: 'str', v, line });
      line += (v.match(/\n/g) ?? []).length;
      i = end + 2;
      continue;
    }
    if (c === "'" && src[i + 2] === "'") {
      toks.push({ t: 'p', v: src.slice(i, i + 3), line });
      i += 3;
      continue;
    }
    const m = /^(`?[A-Za-z_][A-Za-z0-9_']*(?:\.[A-Za-z_][A-Za-z0-9_']*)*\.?|[0-9][0-9A-Za-z_.]*)/.exec(src.slice(i, i + 200));
    if (m) {
      toks.push({ t: 'id', v: m[1], line, col: i - lineStart });
      i += m[1].length;
      continue;
    }
    toks.push({ t: 'p', v: c, line });
    i++;
  }
  return toks;
}

const OPEN = new Set(['(', '[', '{']);
const CLOSE = new Set([')', ']', '}']);

/** Index just past the balanced group starting at toks[i] (an opener). */
function skipGroup(toks, i) {
  let depth = 0;
  for (let j = i; j < toks.length; j++) {
    if (toks[j].t === 'p' && OPEN.has(toks[j].v)) depth++;
    else if (toks[j].t === 'p' && CLOSE.has(toks[j].v)) {
      depth--;
      if (depth === 0) return j + 1;
    }
  }
  throw new Error(`unbalanced group at line ${toks[i].line}`);
}

/** The argument expression after `~label:` at toks[i]: a group, or a (dotted) name possibly applied to a local-open group (Api_errors.[...]). */
function argEnd(toks, i) {
  if (toks[i].t === 'p' && OPEN.has(toks[i].v)) return skipGroup(toks, i);
  if (toks[i].t === 'id' && toks[i].v.endsWith('.') && toks[i + 1]?.t === 'p' && OPEN.has(toks[i + 1].v)) return skipGroup(toks, i + 1);
  return i + 1;
}

/** Splits the inside of a group toks[a..b) (exclusive of brackets) at top-level separator `sep`. */
function splitTop(toks, a, b, sep) {
  const parts = [];
  let cur = a;
  let depth = 0;
  for (let j = a; j < b; j++) {
    const k = toks[j];
    if (k.t === 'p' && OPEN.has(k.v)) depth++;
    else if (k.t === 'p' && CLOSE.has(k.v)) depth--;
    else if (depth === 0 && k.t === 'p' && k.v === sep) {
      parts.push([cur, j]);
      cur = j + 1;
    }
  }
  if (cur < b) parts.push([cur, b]);
  return parts.filter(([x, y]) => y > x);
}

const text = (toks, a, b) =>
  toks
    .slice(a, b)
    .map((k) => (k.t === 'str' ? JSON.stringify(k.v) : k.v))
    .join(' ')
    .replace(/\( /g, '(')
    .replace(/ \)/g, ')')
    .replace(/ ,/g, ',');

/** Parses `call ~label:arg ... ()` starting at toks[i] (the `call` token). */
function parseCall(toks, i) {
  const labels = {};
  let j = i + 1;
  while (j < toks.length) {
    const k = toks[j];
    if (k.t === 'p' && k.v === '(' && toks[j + 1]?.t === 'p' && toks[j + 1].v === ')') break; // the final ()
    if (k.t === 'p' && k.v === '~' && toks[j + 1]?.t === 'id') {
      const name = toks[j + 1].v;
      if (toks[j + 2]?.t === 'p' && toks[j + 2].v === ':') {
        const end = argEnd(toks, j + 3);
        labels[name] = [j + 3, end];
        j = end;
        continue;
      }
      labels[name] = [j + 1, j + 2]; // punned ~label
      j += 2;
      continue;
    }
    throw new Error(`unexpected token ${k.v} in call at line ${k.line}`);
  }
  return { labels, line: toks[i].line };
}

function tupleParams(toks, [a, b]) {
  // [ (ty, "name", "doc") ; ... ]
  return splitTop(toks, a + 1, b - 1, ';').map(([x, y]) => {
    const inner = splitTop(toks, x + 1, y - 1, ',');
    const ty = text(toks, inner[0][0], inner[0][1]);
    const nameTok = toks[inner[1][0]];
    return { name: nameTok.v, type: ty, default: false };
  });
}

function versionedParams(toks, [a, b]) {
  return splitTop(toks, a + 1, b - 1, ';').map(([x, y]) => {
    const fields = {};
    for (const [p, q] of splitTop(toks, x + 1, y - 1, ';')) {
      const key = toks[p].v;
      fields[key] = [p + 2, q]; // after `key =`
    }
    const [na] = fields.param_name;
    const [ta, tb] = fields.param_type;
    const [da, db] = fields.param_default ?? [0, 0];
    return { name: toks[na].v, type: text(toks, ta, tb), default: fields.param_default ? text(toks, da, db) !== 'None' : false };
  });
}

// ---- sources -------------------------------------------------------------

const files = {};
function toks(path) {
  files[path] ??= tokenize(show(path));
  return files[path];
}

// Where each class's own messages are defined: a file, and for datamodel.ml the module.
const CLASS_SOURCE = {
  VM: { file: 'ocaml/idl/datamodel_vm.ml' },
  host: { file: 'ocaml/idl/datamodel_host.ml' },
  pool: { file: 'ocaml/idl/datamodel_pool.ml' },
  session: { file: 'ocaml/idl/datamodel.ml', module: 'Session' },
  task: { file: 'ocaml/idl/datamodel.ml', module: 'Task' },
  event: { file: 'ocaml/idl/datamodel.ml', module: 'Event' },
  SR: { file: 'ocaml/idl/datamodel.ml', module: 'SR' },
};

function region(cls) {
  const src = CLASS_SOURCE[cls];
  if (!src) throw new Error(`no source known for class ${cls}`);
  const t = toks(src.file);
  if (!src.module) return { t, a: 0, b: t.length, file: src.file };
  let a = -1;
  const topModule = (i) => t[i].v === 'module' && t[i].col === 0 && t[i + 2]?.v === '=' && t[i + 3]?.v === 'struct';
  for (let i = 0; i + 3 < t.length; i++) {
    if (topModule(i) && t[i + 1].v === src.module) {
      a = i;
      break;
    }
  }
  if (a < 0) throw new Error(`module ${src.module} not found in ${src.file}`);
  let b = t.length;
  for (let i = a + 4; i + 3 < t.length; i++) {
    if (topModule(i)) {
      b = i;
      break;
    }
  }
  return { t, a, b, file: src.file };
}

const apiErrorNames = (() => {
  const src = show('ocaml/xapi-consts/api_errors.ml');
  const map = {};
  for (const m of src.matchAll(/let\s+([a-z0-9_']+)\s*=\s*add_error\s+"([A-Z0-9_]+)"/g)) map[m[1]] = m[2];
  return map;
})();

function errsOf(t, [a, b], r) {
  if (t[a].v === '(' && t[a + 1]?.v === 'errnames_of_call') {
    // ~errs:(errnames_of_call other): the errors of another call in the same file
    const other = t[a + 2].v;
    for (let i = r.a; i < r.b; i++) {
      if (t[i].v === 'let' && t[i + 1].v === other && t[i + 2].v === '=' && t[i + 3].v === 'call') {
        const c = parseCall(t, i + 3);
        return c.labels.errs ? errsOf(t, c.labels.errs, r) : [];
      }
    }
    throw new Error(`errnames_of_call ${other}: not found`);
  }
  const out = [];
  for (let i = a; i < b; i++) {
    if (t[i].t !== 'id') continue;
    const v = t[i].v.replace(/^Api_errors\.\[?/, '').replace(/^Api_errors\./, '');
    if (v === 'Api_errors.' || v === '') continue;
    const code = apiErrorNames[v];
    if (code) out.push(code);
  }
  return out;
}

/** A custom message of a class, as the datamodel defines it. */
function customMessage(cls, name) {
  const r = region(cls);
  const { t } = r;
  const hits = [];
  for (let i = r.a; i < r.b; i++) {
    if (t[i].v !== 'call') continue;
    // ~name:"X" may come after other labels (~flags, ~in_oss_since...)
    let j = i + 1;
    let found = null;
    while (j < r.b && j < i + 80) {
      if (t[j].v === '~' && t[j + 1]?.v === 'name' && t[j + 2]?.v === ':' && t[j + 3]?.t === 'str') {
        found = t[j + 3].v;
        break;
      }
      if (t[j].v === '~' && t[j + 2]?.v === ':') {
        j = argEnd(t, j + 3);
        continue;
      }
      break;
    }
    if (found === name) hits.push(i);
  }
  if (hits.length !== 1) throw new Error(`${cls}.${name}: ${hits.length} definitions found in ${r.file}`);
  // A local `let call = call ~label:...` partial application adds labels the parser does not see at the use;
  // none of them sets ~flags, ~params or ~errs today (~errs:[] only): stop if one ever does.
  for (let i = r.a; i < hits[0]; i++) {
    if (t[i].v === 'let' && t[i + 1]?.v === 'call' && t[i + 2]?.v === '=' && t[i + 3]?.v === 'call') {
      for (let j = i + 4; j < hits[0] && t[j].v !== 'let' && t[j].v !== 'in'; j++) {
        if (t[j].v === '~' && ['flags', 'params', 'versioned_params'].includes(t[j + 1]?.v)) {
          throw new Error(`${cls}.${name}: a partial application of call at line ${t[i].line} sets ~${t[j + 1].v}; check by hand`);
        }
        if (t[j].v === '~' && t[j + 1]?.v === 'errs' && !(t[j + 3]?.v === '[' && t[j + 4]?.v === ']')) {
          throw new Error(`${cls}.${name}: a partial application of call at line ${t[i].line} sets ~errs; check by hand`);
        }
      }
    }
  }
  const c = parseCall(t, hits[0]);
  const flags = c.labels.flags ? text(t, ...c.labels.flags) : '[`Session; `Async]';
  const params = c.labels.versioned_params ? versionedParams(t, c.labels.versioned_params) : c.labels.params ? tupleParams(t, c.labels.params) : [];
  const errors = c.labels.errs ? errsOf(t, c.labels.errs, r) : [];
  return {
    params,
    session: flags.includes('`Session'),
    async: flags.includes('`Async'),
    errors,
    cite: `${r.file}:${c.line}`,
  };
}

function declaredErrorParams() {
  const t = toks('ocaml/idl/datamodel_errors.ml');
  const out = {};
  for (let i = 0; i < t.length; i++) {
    if (t[i].v !== 'error' || t[i + 1]?.t !== 'id' || !t[i + 1].v.startsWith('Api_errors.')) continue;
    const code = apiErrorNames[t[i + 1].v.slice('Api_errors.'.length)];
    if (!code || t[i + 2]?.v !== '[') continue;
    const end = skipGroup(t, i + 2);
    const names = t
      .slice(i + 3, end - 1)
      .filter((k) => k.t === 'str')
      .map((k) => k.v);
    out[code] = { params: names, cite: `ocaml/idl/datamodel_errors.ml:${t[i].line}` };
  }
  return out;
}

// Fields added or changed recently carry an entry in the generated datamodel_lifecycle.ml.
function lifecycleFields() {
  const src = show('ocaml/idl/datamodel_lifecycle.ml');
  const start = src.indexOf('let prototyped_of_field');
  const end = src.indexOf('let prototyped_of_message');
  const out = {};
  for (const m of src.slice(start, end).matchAll(/\|\s*"([A-Za-z_]+)",\s*"([A-Za-z0-9_]+)"\s*->/g)) {
    (out[m[1]] ??= new Set()).add(m[2]);
  }
  return out;
}

// ---- implicit messages ---------------------------------------------------

// Where datamodel_utils.ml makes each kind of implicit message (line numbers at the commit in "source").
const IMPLICIT_RULES = [
  [/^get_all_records$/, 'messages_of_obj get_all_records', true],
  [/^get_all$/, 'messages_of_obj get_all', true],
  [/^get_record$/, 'messages_of_obj get_record', true],
  [/^get_by_uuid$/, 'messages_of_obj get_by_uuid (uuid)', true],
  [/^get_by_name_label$/, 'messages_of_obj get_by_name_label', true],
  [/^create$/, 'messages_of_obj ctor', true],
  [/^destroy$/, 'messages_of_obj dtor', true],
  [/^get_/, 'new_messages_of_field getter', false],
  [/^set_/, 'new_messages_of_field setter', false],
  [/^add_to_/, 'new_messages_of_field add_to_ (maps)', false],
  [/^remove_from_/, 'new_messages_of_field remove_from_ (maps)', false],
  [/^add_/, 'new_messages_of_field add_ (sets)', false],
  [/^remove_/, 'new_messages_of_field remove_ (sets)', false],
];

function utilsLine(what) {
  const src = show('ocaml/idl/datamodel_utils.ml').split('\n');
  const probes = {
    'messages_of_obj get_all_records': 'let get_all_records =',
    'messages_of_obj get_all': 'let get_all =',
    'messages_of_obj get_record': 'let get_record =',
    'messages_of_obj get_by_uuid (uuid)': 'let uuid =',
    'messages_of_obj get_by_name_label': 'let get_by_name_label =',
    'messages_of_obj ctor': 'let ctor =',
    'messages_of_obj dtor': 'let dtor =',
    'new_messages_of_field getter': 'let getter =',
    'new_messages_of_field setter': 'let setter =',
    'new_messages_of_field add_to_ (maps)': 'prefix "add_to_"',
    'new_messages_of_field remove_from_ (maps)': 'prefix "remove_from_"',
    'new_messages_of_field add_ (sets)': 'prefix "add_"',
    'new_messages_of_field remove_ (sets)': 'prefix "remove_"',
  };
  const i = src.findIndex((l) => l.includes(probes[what]));
  return `ocaml/idl/datamodel_utils.ml:${i + 1} ${what}`;
}

let dumpCache = null;
function dump() {
  dumpCache ??= Object.fromEntries(JSON.parse(show('doc/data/xenapi.json', doc.source.fieldDump.commit)).map((c) => [c.name, c]));
  return dumpCache;
}

/** The field an implicit field message is about (the longest field name that fits). */
function fieldOf(cls, msg, names) {
  const m = /^(get_|set_|add_to_|remove_from_|add_|remove_)(.+)$/.exec(msg);
  if (!m) return null;
  return names.has(m[2]) ? m[2] : null;
}

/** Type names of the doc dump ("VM ref", "(string -> string) map") in the datamodel's OCaml spelling. */
function ocamlType(t) {
  const s = t.trim();
  let m;
  if ((m = /^\((.+) -> (.+)\) map$/.exec(s))) return `Map (${ocamlType(m[1])}, ${ocamlType(m[2])})`;
  if ((m = /^(.+) set$/.exec(s))) return `Set ${/\s/.test(m[1]) ? `(${ocamlType(m[1])})` : ocamlType(m[1])}`;
  if ((m = /^(.+) ref$/.exec(s))) return `Ref _${m[1].toLowerCase()}`;
  if ((m = /^(.+) record$/.exec(s))) return `Record _${m[1].toLowerCase()}`;
  if ((m = /^enum (.+)$/.exec(s))) return m[1];
  return { string: 'String', int: 'Int', bool: 'Bool', float: 'Float', datetime: 'DateTime' }[s] ?? s;
}

/** A method as xapi has it: a custom message of the class at the commit, else an implicit one. */
function deriveMethod(name) {
  if (name === 'system.listMethods') {
    const t = show('ocaml/idl/ocaml_backend/gen_server.ml').split('\n');
    const i = t.findIndex((l) => l.includes('"| \\"system.listMethods\\" -> "'));
    return {
      kind: 'builtin',
      params: [],
      session: false,
      async: false,
      errors: [],
      cite: `ocaml/idl/ocaml_backend/gen_server.ml:${i + 1} (answered before the datamodel dispatch; any parameters accepted)`,
    };
  }
  const [cls, msg] = name.split('.');
  try {
    const d = customMessage(cls, msg);
    return { kind: 'custom', ...d, params: d.params.map((p) => (p.default ? [p.name, p.type, 'optional'] : [p.name, p.type])) };
  } catch (err) {
    if (!/0 definitions found/.test(err.message)) throw err;
  }
  const fields = doc.fields[cls]?.all;
  if (!fields) throw new Error(`${name}: not a custom message, and class ${cls} has no field list in xenapi.json`);
  const names = new Set(fields);
  const rule = IMPLICIT_RULES.find(([re, , objRule]) => re.test(msg) && (objRule || fieldOf(cls, msg, names)));
  if (!rule) throw new Error(`${name}: neither a custom message nor an implicit one (no such field)`);
  const dm = dump()[cls]?.messages.find((m) => m.name === msg && m.implicit);
  if (!dm) throw new Error(`${name}: implicit by name, but not in the doc dump as an implicit message`);
  const field = rule[2] ? null : fieldOf(cls, msg, names);
  const qualifier = field ? dump()[cls].fields.find((f) => f.name === field)?.qualifier : null;
  return {
    kind: 'implicit',
    params: dm.params.filter((p) => p.name !== 'session_id').map((p) => [p.name, ocamlType(p.type)]),
    session: true,
    async: msg === 'create' || msg === 'destroy',
    errors: [],
    cite: `${utilsLine(rule[1])}${field ? `; field ${cls}.${field} (${qualifier})` : ''}`,
  };
}

// ---- compare / write -----------------------------------------------------

/** JSON with 2-space indents, but arrays of scalars (and of arrays of scalars) kept on one line. */
function format(v, indent) {
  const flat = (x) => x === null || typeof x !== 'object' || (Array.isArray(x) && x.every((y) => y === null || typeof y !== 'object'));
  if (flat(v)) return JSON.stringify(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.every(flat)) return `[${v.map((x) => JSON.stringify(x)).join(', ')}]`;
    return `[\n${v.map((x) => inner + format(x, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = Object.entries(v);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${format(x, inner)}`).join(',\n')}\n${indent}}`;
}

const problems = [];
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
function check(where, key, want, have, set) {
  if (same(want, have)) return;
  problems.push(`${where}: ${key} is ${JSON.stringify(have)} in xenapi.json, ${JSON.stringify(want)} in the datamodel`);
  if (args.write) set(want);
}

// Field lists first: implicit messages are checked against them.
const recent = lifecycleFields();
for (const [cls, f] of Object.entries(doc.fields)) {
  const names = new Set([...(dump()[cls]?.fields.map((x) => x.name) ?? []), ...(recent[cls] ?? [])]);
  check(`fields.${cls}`, 'all', [...names].sort(), f.all, (v) => {
    f.all = v;
  });
}

for (const [name, m] of Object.entries(doc.methods)) {
  let d;
  try {
    d = deriveMethod(name);
  } catch (err) {
    problems.push(`${name}: ${err.message}`);
    continue;
  }
  for (const key of ['kind', 'params', 'session', 'async', 'errors'])
    check(name, key, d[key], m[key], (v) => {
      m[key] = v;
    });
  // The cite starts with the definition; anything after " | " is hand-written and kept.
  const [, rest] = (m.cite ?? '').split(' | ');
  const cite = rest ? `${d.cite} | ${rest}` : d.cite;
  check(name, 'cite', cite, m.cite, (v) => {
    m.cite = v;
  });
}

const declared = declaredErrorParams();
for (const [code, e] of Object.entries(doc.errors)) {
  const d = declared[code];
  if (!d) {
    problems.push(`${code}: not in datamodel_errors.ml`);
    continue;
  }
  check(code, 'declared', d.params, e.declared, (v) => {
    e.declared = v;
  });
  check(code, 'cite', d.cite, e.cite, (v) => {
    e.cite = v;
  });
}
for (const [name, m] of Object.entries(doc.methods)) {
  for (const code of m.errors ?? []) if (!doc.errors[code]) problems.push(`${name}: error ${code} has no entry in "errors"`);
}

// Writable fields: their setters must be methods xapi has.
for (const [cls, f] of Object.entries(doc.fields)) {
  for (const [field, w] of Object.entries(f.writable ?? {})) {
    if (!f.all.includes(field)) problems.push(`fields.${cls}.writable.${field}: no such field`);
    const q = dump()[cls]?.fields.find((x) => x.name === field)?.qualifier;
    const qual = { RW: 'RW', 'RO/constructor': 'StaticRO', 'RO/runtime': 'DynamicRO' }[q] ?? q;
    if (q)
      check(`fields.${cls}.writable.${field}`, 'qualifier', qual, w.qualifier, (v) => {
        w.qualifier = v;
      });
    const setters = {};
    for (const prefix of ['set_', 'add_to_', 'remove_from_', 'add_', 'remove_']) {
      try {
        const d = deriveMethod(`${cls}.${prefix}${field}`);
        setters[prefix] = { kind: d.kind, async: d.async, params: d.params.length };
      } catch {
        // no such message
      }
    }
    check(`fields.${cls}.writable.${field}`, 'setters', setters, w.setters, (v) => {
      w.setters = v;
    });
  }
}

if (args.write) {
  doc.source.commit = execFileSync('git', ['-C', args.repo, 'rev-parse', commit], { encoding: 'utf8' }).trim();
  writeFileSync(jsonPath, `${format(doc, '')}\n`);
}
if (problems.length === 0) {
  console.log(`conformance/xenapi.json agrees with xen-api ${commit}`);
} else {
  for (const p of problems) console.log(p);
  console.log(`${problems.length} difference(s)${args.write ? ' (rewritten)' : ''}`);
  if (!args.write) process.exit(1);
}
