// @ts-check
/**
 * @module bench/proc
 * What the benchmark reads from Linux's /proc: the workerd processes this Node process started,
 * their CPU time and their resident memory. CPU is `utime + stime` of the whole process (all
 * threads), in clock ticks of `getconf CLK_TCK` (100 per second on most systems: 10 ms steps,
 * which is why CPU is only read over windows of many requests).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second, as `times(2)` and /proc count them. */
export const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

/**
 * The fields of /proc/<pid>/stat after the command name, which may itself hold spaces and
 * parentheses: index 0 is the state, 1 the parent pid, 11 utime and 12 stime.
 * @param {number} pid
 */
function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * Pids of the direct children of `parent` whose command is `command`.
 * @param {string} command  e.g. "workerd"
 * @param {number} [parent]
 * @returns {number[]}
 */
function childPids(command, parent = process.pid) {
  /** @type {number[]} */
  const out = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      if (Number(statFields(pid)[1]) !== parent) continue;
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === command) out.push(pid);
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/**
 * Run `start` and return the pid of the one `command` child process it added. Starting
 * instances one at a time keeps this unambiguous.
 * @template T
 * @param {string} command
 * @param {() => Promise<T>} start
 * @returns {Promise<{ value: T, pid: number }>}
 */
export async function withNewChild(command, start) {
  const before = new Set(childPids(command));
  const added = () => childPids(command).filter((pid) => !before.has(pid));
  /** @type {T} */
  let value;
  try {
    value = await start();
  } catch (error) {
    // A start that failed or ran out of time must not leave its process competing for the cores.
    for (const pid of added()) kill(pid);
    throw error;
  }
  const pids = added();
  if (pids.length !== 1) throw new Error(`Expected one new ${command} process, found ${pids.length}`);
  return { value, pid: /** @type {number} */ (pids[0]) };
}

/**
 * SIGKILL a process that may already have ended.
 * @param {number} pid
 */
export function kill(pid) {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}

/** Every workerd this process started and has not seen end: what a watchdog kills on its way out. */
export const workerdChildren = () => childPids("workerd");

/**
 * CPU time of a process so far, in microseconds.
 * @param {number} pid
 */
function cpuMicros(pid) {
  const fields = statFields(pid);
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}

/**
 * Resident memory of a process (VmRSS), in bytes.
 * @param {number} pid
 */
export function rssBytes(pid) {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`No VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

/**
 * CPU time the whole machine has been busy so far (every core), in microseconds, from the first
 * line of /proc/stat: everything but idle and iowait. Interrupt time is included because the
 * processes' own stime includes the softirq work done in their context (loopback networking);
 * steal is what the hypervisor took from this VM.
 */
function machineBusyMicros() {
  const fields = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  return ((user + nice + system + irq + softirq + steal) * 1e6) / CLOCK_TICKS;
}

/**
 * @typedef {object} CpuWindow  CPU used by each process between `start()` and `stop()`, and by
 *   the whole machine under the name `machine`.
 * @property {() => void} start
 * @property {() => { wallMs: number, cpuMicros: Record<string, number> }} stop
 */

/**
 * A measuring window over the CPU time of named processes; the load generator opens it after
 * its warm-up and closes it when the last measured request has finished. The machine's total
 * shows what else was running (another process competing for the cores skews every number).
 * @param {Record<string, number>} pids  name → pid
 * @returns {CpuWindow}
 */
export function cpuWindow(pids) {
  /** @type {Record<string, number>} */
  let begin = {};
  let startedAt = 0;
  /** @returns {Record<string, number>} */
  const sample = () => ({ ...Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMicros(pid)])), machine: machineBusyMicros() });
  return {
    start() {
      begin = sample();
      startedAt = performance.now();
    },
    stop() {
      const end = sample();
      const wallMs = performance.now() - startedAt;
      return { wallMs, cpuMicros: Object.fromEntries(Object.entries(end).map(([name, us]) => [name, us - (begin[name] ?? 0)])) };
    },
  };
}
