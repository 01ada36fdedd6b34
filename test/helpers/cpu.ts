/**
 * CPU time, for tests that bound the work a hostile input can cause (linear parsing, size caps
 * before parsing). Unlike wall-clock time it does not grow when other processes load the
 * machine, so such a bound holds on a busy machine too. It counts the whole process (every
 * thread), so keep the measured code synchronous and the bound generous.
 */
export const cpuStart = (): NodeJS.CpuUsage => process.cpuUsage();

/** Milliseconds of CPU (user + system) this process used since `start`. */
export function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}
