/**
 * Child process of `npm run bench:engine`: receives one Job over IPC, runs
 * it, sends back `{ok, result}` or `{ok: false, error}` and exits.
 */
import { runJob } from './engine-jobs.js';
import { serveOneJob } from './lib.js';

serveOneJob(runJob);
