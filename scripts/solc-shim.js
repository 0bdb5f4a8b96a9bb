#!/usr/bin/env node
// A stand-in for the native `solc` binary, driving the npm `solc` package (solc-js), so that
// py-solc-x's compile_standard(..., solc_binary=<this file>) works on a machine that cannot
// download a native compiler.
//
// Why not point py-solc-x at node_modules/.bin/solcjs directly (see FIELD-NOTES):
//   * solcjs --standard-json prints ">>> Cannot retry compilation with SMT…" on stdout before
//     the JSON, which py-solc-x cannot parse;
//   * solcjs rejects --allow-paths, which py-solc-x passes;
//   * solcjs only resolves imports in standard-json mode when --base-path is given, and finds
//     @openzeppelin/... only when node_modules is an include path.
//
// Supported command lines:
//   solc-shim.js --version
//   solc-shim.js --standard-json [--base-path DIR] [--allow-paths DIR[,DIR…]] [--include-path DIR]…
// The standard JSON input is read from stdin; only the compiler's JSON output goes to stdout.
'use strict';

const fs = require('fs');
const path = require('path');

const repoRoot = path.resolve(__dirname, '..');
const nodeModules = path.join(repoRoot, 'node_modules');

// Anything solc-js or Emscripten might print must not end up in the JSON on stdout.
const realStdoutWrite = process.stdout.write.bind(process.stdout);
console.log = (...args) => console.error(...args);
console.info = console.log;

function fail(message) {
  process.stderr.write(`solc-shim: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, roots: [] };
  const takeValue = (i, flag) => {
    if (i + 1 >= argv.length) fail(`${flag} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let inlineValue = null;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      inlineValue = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const value = (flag) => {
      if (inlineValue !== null) return inlineValue;
      const v = takeValue(i, flag);
      i += 1;
      return v;
    };
    switch (arg) {
      case '--version':
        opts.version = true;
        break;
      case '--standard-json':
        opts.standardJson = true;
        break;
      case '--base-path':
      case '--include-path':
        opts.roots.push(value(arg));
        break;
      case '--allow-paths':
        // py-solc-x joins a list of paths with commas, like native solc expects.
        for (const p of value(arg).split(',')) if (p) opts.roots.push(p);
        break;
      case '-':
        break;
      default:
        fail(`unsupported argument ${argv[i]}`);
    }
  }
  return opts;
}

function loadSolc() {
  try {
    return require(path.join(nodeModules, 'solc'));
  } catch (e) {
    fail(`cannot load the npm solc package from ${nodeModules} (run ./scripts/setup): ${e}`);
  }
}

// Resolves an import only inside one of the roots: "../" segments cannot climb out of them.
function makeImportCallback(roots) {
  const absRoots = [...new Set(roots.map((r) => path.resolve(r)).concat([nodeModules]))];
  return (sourcePath) => {
    for (const root of absRoots) {
      const candidate = path.resolve(root, sourcePath);
      const rel = path.relative(root, candidate);
      if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) continue;
      try {
        if (fs.statSync(candidate).isFile()) {
          return { contents: fs.readFileSync(candidate, 'utf8') };
        }
      } catch (e) {
        if (e.code !== 'ENOENT' && e.code !== 'ENOTDIR') {
          return { error: `error reading ${candidate}: ${e.message}` };
        }
      }
    }
    return { error: `${sourcePath} not found under ${absRoots.join(', ')}` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const solc = loadSolc();
  if (opts.version) {
    realStdoutWrite(`${solc.version()}\n`);
    return;
  }
  if (!opts.standardJson) fail('only --version and --standard-json are supported');
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: makeImportCallback(opts.roots) });
  // Compilation errors are part of the JSON (like native solc): the exit status stays 0.
  realStdoutWrite(output.endsWith('\n') ? output : `${output}\n`);
}

main();
