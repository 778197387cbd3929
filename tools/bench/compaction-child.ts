/**
 * Child process of `npm run bench:compaction`: receives one Job over IPC,
 * runs it, answers `{ok, result}` or `{ok: false, error}` and exits.
 */
import { runJob } from './compaction-jobs.js';
import { serveOneJob } from './lib.js';

serveOneJob(runJob);
