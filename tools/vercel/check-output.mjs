#!/usr/bin/env node
// Checks the Build Output that `vercel build` wrote to .vercel/output against
// the repo: what Vercel would deploy, checked without deploying it.
//
//   node tools/vercel/check-output.mjs [REPO_ROOT]
//
// - one function per api/**/*.rs route file, and no other function;
// - each .vc-config.json: runtime and handler `executable`, language `rust`, the
//   route file's maxDuration from vercel.json, and an ELF executable that is the
//   Cargo [[bin]] whose `path` is that route file;
// - config.json routes send each story path to the right function, with the
//   path's parameters as query parameters;
// - the vercel.json `crons` reach config.json unchanged, and every cron path
//   is routed to a function (the expiry sweeper every 15 minutes);
// - vercel.json rewrites keep the form the dev server reads (`:param` sources,
//   destinations that are route files without `.rs`);
// - static/ holds only what public/ holds, and no source or config file.
//
// No dependencies: Node's standard library only. Every failure is listed, then
// the process exits 1.

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

const root = path.resolve(process.argv[2] ?? process.cwd());
const out = path.join(root, ".vercel", "output");

// The story paths of the upload API, and the route file that must serve each.
// Parameter values are arbitrary; they only have to come back as query values.
const SESSION = "0b6f3c4e-5d1a-4c8e-9f2a-7e1d2c3b4a50";
const FILE = "9a8b7c6d-1e2f-4a3b-8c4d-5e6f7a8b9c0d";
const PART = "7";
const S = "/api/mocs/uploads/sessions";
const R = "api/mocs/uploads/sessions";
const STORIES = [
  [S, `${R}/index.rs`, {}],
  [`${S}/finalize`, "api/mocs/uploads/finalize.rs", {}],
  [`${S}/${SESSION}/finalize`, "api/mocs/uploads/finalize.rs", { sessionId: SESSION }],
  ["/api/mocs/uploads/finalize", "api/mocs/uploads/finalize.rs", {}],
  [`${S}/${SESSION}/files`, `${R}/[sessionId]/files/index.rs`, { sessionId: SESSION }],
  [`${S}/${SESSION}/files/batch`, `${R}/[sessionId]/files/batch.rs`, { sessionId: SESSION }],
  [
    `${S}/${SESSION}/files/${FILE}/complete`,
    `${R}/[sessionId]/files/[fileId]/complete.rs`,
    { sessionId: SESSION, fileId: FILE },
  ],
  [
    `${S}/${SESSION}/files/${FILE}/parts`,
    `${R}/[sessionId]/files/[fileId]/parts.rs`,
    { sessionId: SESSION, fileId: FILE },
  ],
  [
    `${S}/${SESSION}/files/${FILE}/parts/${PART}`,
    `${R}/[sessionId]/files/[fileId]/parts/[partNumber].rs`,
    { sessionId: SESSION, fileId: FILE, partNumber: PART },
  ],
  [`${S}/${SESSION}`, `${R}/[sessionId]/index.rs`, { sessionId: SESSION }],
  [`${S}/${SESSION}/extend`, `${R}/[sessionId]/extend.rs`, { sessionId: SESSION }],
  [
    `${S}/${SESSION}/files/${FILE}`,
    `${R}/[sessionId]/files/[fileId]/index.rs`,
    { sessionId: SESSION, fileId: FILE },
  ],
  [
    `${S}/${SESSION}/files/${FILE}/urls`,
    `${R}/[sessionId]/files/[fileId]/urls.rs`,
    { sessionId: SESSION, fileId: FILE },
  ],
  ["/api/cron/expire-upload-sessions", "api/cron/expire-upload-sessions.rs", {}],
];

// The scheduled jobs vercel.json must declare: [path, schedule, route file].
const CRONS = [["/api/cron/expire-upload-sessions", "*/15 * * * *", "api/cron/expire-upload-sessions.rs"]];

// Never to be published, whatever public/ holds.
const FORBIDDEN_STATIC = [
  /^Cargo\.(toml|lock)$/,
  /\.rs$/,
  /\.toml$/,
  /^\.env($|\.)/,
  /\.sql$/,
  /^(package|package-lock)\.json$/,
  /^vercel\.json$/,
  /\.(pem|key)$/,
];

const failures = [];
let passed = 0;
const fail = (msg) => failures.push(msg);
const ok = () => passed++;
const check = (cond, msg) => (cond ? ok() : fail(msg));
const rel = (p) => path.relative(root, p).split(path.sep).join("/");

function readJson(file, what) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    fail(`${what}: cannot read ${rel(file)}: ${err.message}`);
    return null;
  }
}

function walk(dir, onFile, onDir) {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (onDir && onDir(full) === false) continue;
      walk(full, onFile, onDir);
    } else {
      onFile(full);
    }
  }
}

function realpath(p) {
  try {
    return fs.realpathSync.native(p);
  } catch {
    return path.resolve(p);
  }
}

// ---------------------------------------------------------------- inputs
if (!fs.existsSync(path.join(out, "config.json"))) {
  console.error(`check-output: FAIL: ${rel(out)}/config.json is missing: did \`vercel build\` run?`);
  process.exit(1);
}
const vercelJson = readJson(path.join(root, "vercel.json"), "vercel.json") ?? {};
const config = readJson(path.join(out, "config.json"), "config.json") ?? {};
const fnConfig = vercelJson.functions ?? {};

const routeFiles = [];
walk(path.join(root, "api"), (f) => f.endsWith(".rs") && routeFiles.push(rel(f)));
routeFiles.sort();
check(routeFiles.length > 0, "no route file found under api/ (api/**/*.rs)");

// Cargo's view of the bins: which [[bin]] builds which route file.
let binsBySrc = new Map();
try {
  const meta = JSON.parse(
    execFileSync("cargo", ["metadata", "--no-deps", "--format-version", "1"], {
      cwd: root,
      encoding: "utf8",
      maxBuffer: 64 << 20,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  for (const pkg of meta.packages) {
    for (const t of pkg.targets) {
      if (t.kind.includes("bin")) binsBySrc.set(realpath(t.src_path), { bin: t.name, pkg: pkg.name });
    }
  }
} catch (err) {
  fail(`cargo metadata failed, cannot map route files to [[bin]]s: ${err.message}`);
  binsBySrc = null;
}

// ---------------------------------------------------------------- functions
const funcsDir = path.join(out, "functions");
const foundFuncs = new Set();
walk(
  funcsDir,
  () => {},
  (d) => {
    if (d.endsWith(".func")) {
      foundFuncs.add(rel(d).replace(/^\.vercel\/output\/functions\//, "").replace(/\.func$/, ""));
      return false;
    }
    return true;
  },
);
const expectedFuncs = new Set(routeFiles.map((f) => f.replace(/\.rs$/, "")));

for (const file of routeFiles) {
  const name = file.replace(/\.rs$/, "");
  const dir = path.join(funcsDir, `${name}.func`);
  if (!foundFuncs.has(name)) {
    fail(`${file}: no function ${rel(dir)}`);
    continue;
  }
  ok();
  const vc = readJson(path.join(dir, ".vc-config.json"), file);
  if (!vc) continue;
  check(vc.runtime === "executable", `${file}: .vc-config.json runtime is ${JSON.stringify(vc.runtime)}, want "executable"`);
  check(vc.handler === "executable", `${file}: .vc-config.json handler is ${JSON.stringify(vc.handler)}, want "executable"`);
  check(vc.runtimeLanguage === "rust", `${file}: .vc-config.json runtimeLanguage is ${JSON.stringify(vc.runtimeLanguage)}, want "rust"`);

  const want = fnConfig[file]?.maxDuration;
  if (typeof want !== "number") {
    fail(`${file}: vercel.json has no functions["${file}"].maxDuration: every route file needs one`);
  } else {
    check(vc.maxDuration === want, `${file}: .vc-config.json maxDuration is ${JSON.stringify(vc.maxDuration)}, vercel.json says ${want}`);
  }

  // The executable is in the .func dir, or (vercel build) referenced by filePathMap.
  const mapped = vc.filePathMap?.[vc.handler ?? "executable"];
  const exe = mapped ? path.resolve(root, mapped) : path.join(dir, vc.handler ?? "executable");
  let st = null;
  try {
    st = fs.statSync(exe);
  } catch {
    fail(`${file}: executable ${rel(exe)} does not exist`);
  }
  if (st) {
    const head = Buffer.alloc(4);
    const fd = fs.openSync(exe, "r");
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    check(head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])), `${file}: ${rel(exe)} is not an ELF binary`);
    check((st.mode & 0o111) !== 0, `${file}: ${rel(exe)} is not executable`);
    if (binsBySrc) {
      const owner = binsBySrc.get(realpath(path.join(root, file)));
      if (!owner) {
        fail(`${file}: no Cargo [[bin]] has \`path = "${file}"\`; the builder then guesses the bin name from the file name`);
      } else {
        check(
          path.basename(exe) === owner.bin,
          `${file}: function runs ${rel(exe)}, but its [[bin]] is \`${owner.bin}\` (package ${owner.pkg})`,
        );
      }
    }
  }
}
for (const name of [...foundFuncs].sort()) {
  check(expectedFuncs.has(name), `function ${name}.func matches no route file api/**/*.rs`);
}
for (const key of Object.keys(fnConfig)) {
  check(routeFiles.includes(key), `vercel.json functions["${key}"] matches no route file`);
}

// ---------------------------------------------------------------- static
const staticDir = path.join(out, "static");
const staticFiles = new Set();
walk(staticDir, (f) => {
  const r = path.relative(staticDir, f).split(path.sep).join("/");
  staticFiles.add(r);
  const base = path.basename(f);
  if (FORBIDDEN_STATIC.some((re) => re.test(base))) {
    fail(`static/${r} would be published: source/config files must never be static output`);
  } else if (!fs.existsSync(path.join(root, "public", r))) {
    fail(`static/${r} does not come from public/: only public/ may be published (vercel.json outputDirectory; public/ must not be empty)`);
  } else {
    ok();
  }
});

// ---------------------------------------------------------------- routes
check(config.version === 3, `config.json version is ${JSON.stringify(config.version)}, want 3`);
const routes = Array.isArray(config.routes) ? config.routes : [];
check(routes.length > 0, "config.json has no routes");

const fsHas = (p) => {
  const name = decodeURIComponent(p).replace(/^\/+/, "");
  if (foundFuncs.has(name)) return { fn: name };
  if (staticFiles.has(name)) return { static: name };
  return null;
};

// A small model of Vercel's router for these routes: routes before
// `handle: filesystem`, the filesystem, then the rewrite phase up to the next
// `handle`. A `dest` route rewrites the path and adds its query; with
// `check: true` it is served if the new path is an output. `status` without a
// `dest` answers that status.
function resolve(url) {
  let pathname = url;
  const query = {};
  const trace = [];
  let phase = null;
  const apply = (route, m) => {
    const dest = route.dest.replace(/\$(\d+|[A-Za-z_]\w*)/g, (_, k) =>
      /^\d+$/.test(k) ? (m[Number(k)] ?? "") : (m.groups?.[k] ?? ""),
    );
    const [p, q] = dest.split("?");
    for (const [k, v] of new URLSearchParams(q ?? "")) query[k] = v;
    trace.push(`${route.src} -> ${dest}`);
    return p;
  };
  for (const route of routes) {
    if (route.handle) {
      // Only the phases up to the rewrites are modelled; the story paths must be served there.
      if (phase !== null || route.handle !== "filesystem") break;
      phase = "filesystem";
      const hit = fsHas(pathname);
      if (hit) return { ...hit, query, trace: [...trace, `filesystem: ${pathname}`] };
      continue;
    }
    if (!route.src) continue;
    const m = new RegExp(route.src).exec(pathname);
    if (!m) continue;
    if (route.dest) {
      pathname = apply(route, m);
      if (route.check || phase === null) {
        const hit = fsHas(pathname);
        if (hit) return { ...hit, query, trace };
        if (phase === null && !route.continue) return { status: 404, query, trace };
      }
      continue;
    }
    if (route.status) return { status: route.status, query, trace: [...trace, `${route.src} -> ${route.status}`] };
  }
  return { status: 404, query, trace };
}

for (const [url, file, params] of STORIES) {
  const want = file.replace(/\.rs$/, "");
  const got = resolve(url);
  const how = got.trace.length ? ` (via ${got.trace.join("; ")})` : "";
  if (got.fn !== want) {
    fail(`${url}: routed to ${got.fn ?? got.static ?? `status ${got.status}`}, want function ${want}${how}`);
    continue;
  }
  const wantQ = JSON.stringify(Object.entries(params).sort());
  const gotQ = JSON.stringify(Object.entries(got.query).sort());
  check(wantQ === gotQ, `${url}: function ${want} gets query ${gotQ}, want ${wantQ}${how}`);
}
// The OpenAPI document is a static file of public/ (docs/adr/0006-openapi-from-types.md).
{
  const got = resolve("/api/mocs/uploads/openapi.json");
  check(
    got.static === "api/mocs/uploads/openapi.json",
    `/api/mocs/uploads/openapi.json: served by ${got.fn ?? got.static ?? `status ${got.status}`}, want the static public/api/mocs/uploads/openapi.json`,
  );
}
for (const url of ["/Cargo.toml", "/Cargo.lock", "/vercel.json", "/.env", "/shared/src/lib.rs"]) {
  const got = resolve(url);
  check(!got.fn && !got.static, `${url} is served (${got.fn ?? got.static}): it must not be`);
}

// ---------------------------------------------------------------- crons
const declaredCrons = Array.isArray(vercelJson.crons) ? vercelJson.crons : [];
const builtCrons = Array.isArray(config.crons) ? config.crons : [];
for (const [cronPath, schedule, file] of CRONS) {
  const declared = declaredCrons.find((c) => c.path === cronPath);
  check(declared?.schedule === schedule, `vercel.json crons: ${cronPath} must run on "${schedule}", found ${JSON.stringify(declared)}`);
  const built = builtCrons.find((c) => c.path === cronPath);
  check(built?.schedule === schedule, `config.json crons: ${cronPath} on "${schedule}" is missing, found ${JSON.stringify(builtCrons)}`);
  const got = resolve(cronPath);
  check(got.fn === file.replace(/\.rs$/, ""), `cron ${cronPath}: routed to ${got.fn ?? `status ${got.status}`}, want function ${file}`);
}
for (const { path: cronPath } of declaredCrons) {
  check(CRONS.some(([p]) => p === cronPath), `vercel.json crons: ${cronPath} is not a known scheduled job`);
}

// ---------------------------------------------------------------- vercel.json form (read by the dev server)
const rewrites = Array.isArray(vercelJson.rewrites) ? vercelJson.rewrites : [];
check(rewrites.length > 0, "vercel.json has no rewrites");
for (const { source, destination } of rewrites) {
  const srcOk = typeof source === "string" && /^(\/([A-Za-z0-9._-]+|:[A-Za-z_][A-Za-z0-9_]*))+$/.test(source);
  check(srcOk, `vercel.json rewrite source ${JSON.stringify(source)}: use plain segments and :param only`);
  const destOk =
    typeof destination === "string" &&
    destination.startsWith("/api/") &&
    !destination.includes("?") &&
    routeFiles.includes(`${destination.slice(1)}.rs`);
  check(destOk, `vercel.json rewrite destination ${JSON.stringify(destination)}: must be a route file path without .rs`);
}

// ---------------------------------------------------------------- verdict
if (failures.length) {
  console.error(`check-output: ${failures.length} problem(s) in ${rel(out)}:`);
  for (const f of failures) console.error(`  FAIL: ${f}`);
  console.error(`check-output: ${passed} passed, ${failures.length} failed`);
  process.exit(1);
}
console.log(
  `check-output: ${routeFiles.length} functions, ${STORIES.length} story paths, ${CRONS.length} cron(s), ${staticFiles.size} static file(s) checked`,
);
console.log(`check-output: ${passed} passed, 0 failed`);
