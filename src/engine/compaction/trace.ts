/**
 * Timing hook for the benchmark's stall attribution (tools/bench/compaction-trace.ts):
 * `traced(label, start)` reports a synchronous section that began at
 * performance.now() `start`. A no-op unless the benchmark installed the hook.
 */
type Hook = (label: string, start: number) => void;

export function traced(label: string, start: number): void {
  const hook = (globalThis as { __segkvTrace?: Hook }).__segkvTrace;
  if (hook) hook(label, start);
}
