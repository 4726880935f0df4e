/**
 * The benchmark's time limits (bench/bounded.mjs) and its child-process bookkeeping
 * (bench/proc.mjs): a hung step must end the run with its name, a start that ran out of time is
 * tried once more, and a failed start leaves no process behind. Plain Node: no gateway involved.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { Overdue, againIfOverdue, bounded } from "../../bench/bounded.mjs";
import { withNewChild } from "../../bench/proc.mjs";

const never = () => new Promise<never>(() => undefined);

/** Whether a process is still running (signal 0 only asks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("bounded", () => {
  it("returns what finished in time", async () => {
    await expect(bounded("quick", 1_000, async () => 42)).resolves.toBe(42);
  });

  it("rejects with Overdue naming the operation once the limit has passed", async () => {
    const started = performance.now();
    const error = await bounded("gateway: workerd ready", 50, never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Overdue);
    expect((error as Error).message).toBe("gateway: workerd ready did not finish within 50 ms");
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
  });

  it("passes the operation's own failure through unchanged", async () => {
    const failure = new Error("D1 refused the migration");
    await expect(bounded("setup", 1_000, () => Promise.reject(failure))).rejects.toBe(failure);
  });
});

describe("againIfOverdue", () => {
  it("starts once more after an Overdue, and only once", async () => {
    let tries = 0;
    const value = await againIfOverdue(async () => {
      tries += 1;
      if (tries === 1) throw new Overdue("floor: workerd ready", 10);
      return "started";
    });
    expect(value).toBe("started");
    expect(tries).toBe(2);

    tries = 0;
    await expect(
      againIfOverdue(async () => {
        tries += 1;
        throw new Overdue("floor: workerd ready", 10);
      }),
    ).rejects.toBeInstanceOf(Overdue);
    expect(tries).toBe(2);
  });

  it("does not retry any other failure", async () => {
    let tries = 0;
    await expect(
      againIfOverdue(async () => {
        tries += 1;
        throw new Error("bad wrangler.toml");
      }),
    ).rejects.toThrow("bad wrangler.toml");
    expect(tries).toBe(1);
  });
});

describe("withNewChild", () => {
  it("returns the one process the start added", async () => {
    let child: ReturnType<typeof spawn> | undefined;
    const { value, pid } = await withNewChild("sleep", async () => {
      child = spawn("sleep", ["30"], { stdio: "ignore" });
      await new Promise((resolve) => child?.once("spawn", resolve));
      return "up";
    });
    try {
      expect(value).toBe("up");
      expect(pid).toBe(child?.pid);
    } finally {
      child?.kill("SIGKILL");
    }
  });

  it("kills what a failed start left running", async () => {
    let child: ReturnType<typeof spawn> | undefined;
    let exited: Promise<unknown> = Promise.resolve();
    const error = await withNewChild("sleep", async () => {
      child = spawn("sleep", ["30"], { stdio: "ignore" });
      exited = new Promise((resolve) => child?.once("exit", (_code, signal) => resolve(signal)));
      await new Promise((resolve) => child?.once("spawn", resolve));
      return bounded("sleep: ready", 20, never);
    }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(Overdue);
    // Killed by withNewChild, not by the test: without the kill this waits out the test's limit.
    await expect(exited).resolves.toBe("SIGKILL");
    expect(alive(child?.pid ?? 0)).toBe(false);
  });
});
