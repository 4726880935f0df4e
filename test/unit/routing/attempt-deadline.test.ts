/**
 * One attempt's movable time limit (routing/attempt-deadline): it expires at the latest deadline
 * it was given, earlier or later than the one before, never after `clear`, and `within` gives up
 * on work that ignores the abort.
 */
import { describe, expect, it } from "vitest";
import { AttemptDeadline } from "../../../src/routing/attempt-deadline";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("AttemptDeadline", () => {
  it("expires once, after its limit, and runs onExpire", async () => {
    let fired = 0;
    const deadline = new AttemptDeadline(20, () => fired++);
    expect(deadline.expired).toBe(false);
    await sleep(60);
    expect(deadline.expired).toBe(true);
    expect(fired).toBe(1);
  });

  it("moved later, waits for the new limit", async () => {
    const deadline = new AttemptDeadline(20, () => {});
    deadline.extend(150);
    await sleep(70);
    expect(deadline.expired).toBe(false);
    await sleep(150);
    expect(deadline.expired).toBe(true);
  });

  it("moved earlier, expires at the earlier limit, not the one it was set for", async () => {
    const deadline = new AttemptDeadline(5_000, () => {});
    deadline.extend(20);
    await sleep(80);
    expect(deadline.expired).toBe(true);
    deadline.clear();
  });

  it("never expires once cleared, and a cleared deadline is not moved again", async () => {
    let fired = 0;
    const deadline = new AttemptDeadline(20, () => fired++);
    deadline.clear();
    deadline.extend(10);
    await sleep(60);
    expect(deadline.expired).toBe(false);
    expect(fired).toBe(0);
  });

  it("within: the work's result in time, a TimeoutError when the work outlives the limit", async () => {
    const deadline = new AttemptDeadline(200, () => {});
    await expect(deadline.within(Promise.resolve("done"))).resolves.toBe("done");
    deadline.extend(20);
    const started = Date.now();
    await expect(deadline.within(new Promise(() => {}))).rejects.toMatchObject({ name: "TimeoutError" });
    expect(Date.now() - started).toBeLessThan(1_000);
    await expect(deadline.within(Promise.resolve("late"))).rejects.toMatchObject({ name: "TimeoutError" });
  });
});
