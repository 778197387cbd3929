/**
 * Child process of `npm run bench:engine`: receives one Job over IPC, runs
 * it, sends back `{ok, result}` or `{ok: false, error}` and exits.
 */
import { type Job, runJob } from './engine-jobs.js';

process.once('message', (job: Job) => {
  runJob(job).then(
    (result) => process.send!({ ok: true, result }, () => process.exit(0)),
    (err: unknown) =>
      process.send!(
        { ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) },
        () => process.exit(1),
      ),
  );
});
