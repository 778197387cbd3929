#!/usr/bin/env node
import { packageVersion } from '../src/package-version.js';
/**
 * kv-cli: segkv's redis-cli. `kv-cli [opts]` opens a prompt; `kv-cli [opts]
 * CMD ARGS` runs one command; `--pipe` bulk-loads commands from stdin;
 * `--latency` samples PING round trips. See `kv-cli --help`.
 *
 * Modules (tools/kv-cli/): options (flags), quoting (redis-cli's quoting),
 * commands (the command table over the SDK), reply (human/raw/json output),
 * oneshot, repl (+ completion, hint-renderer, history, help), pipe
 * (+ pipe-input), latency, compact-progress.
 */
import { runFeed } from './kv-cli/feed.js';
import { runLatency } from './kv-cli/latency.js';
import { runOnce, runScan } from './kv-cli/oneshot.js';
import { HELP, parseOptions } from './kv-cli/options.js';
import { runPipe } from './kv-cli/pipe.js';
import { runRepl } from './kv-cli/repl.js';
import { EXIT_OK, runTool } from './lib/cli.js';

async function main(argv: string[]): Promise<number> {
  const o = parseOptions(argv);
  if (o === 'help') {
    process.stdout.write(HELP);
    return EXIT_OK;
  }
  const version = packageVersion();
  if (o === 'version') {
    process.stdout.write(`kv-cli ${version}\n`);
    return EXIT_OK;
  }
  if (o.passwordFrom === 'flag' && o.authWarning) {
    process.stderr.write(
      "Warning: Using a password with '-a' option on the command line interface may not be safe.\n",
    );
  }
  switch (o.mode) {
    case 'command':
      return runOnce(o, version);
    case 'pipe':
      return runPipe(o);
    case 'latency':
      return runLatency(o);
    case 'scan':
      return runScan(o);
    case 'feed':
      return runFeed(o);
    case 'repl':
      return runRepl(o, version);
  }
}

runTool('kv-cli', main);
