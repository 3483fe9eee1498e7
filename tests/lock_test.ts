/**
 * Directory locks (src/io/lock.ts): a live owner refuses a second process; a stale or torn lock
 * of the tool is taken over; anything else at the lock's path — a user's `poetry.lock`, a folder,
 * a link — is never taken over (which would delete it), only reported in one line.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { acquireLock } from "../src/io/lock.ts";
import { assertUserError } from "./assert_user_error.ts";

const old = new Date(Date.now() - 2 * 86400_000);

Deno.test("lock: a live owner refuses a second taker; released, it can be taken again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lock-" });
  try {
    const path = join(dir, "run.lock");
    const lock = await acquireLock(path, "training run", () => {});
    await assertUserError(
      () => acquireLock(path, "again", () => {}),
      /run\.lock is held by process/,
    );
    await lock.release();
    await (await acquireLock(path, "again", () => {})).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lock: a stale lock of a dead process and a torn (empty) lock are taken over, with a message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lock-" });
  try {
    const path = join(dir, "run.lock");
    // the tool's own lock, of a process that is gone (on another host, heartbeat two days old)
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        format: "webgpu-mlp.lock/1",
        pid: 1,
        host: "elsewhere",
        start: null,
        since: old.toISOString(),
        what: "x",
      }) + "\n",
    );
    await Deno.utime(path, old, old);
    const lines: string[] = [];
    await (await acquireLock(path, "t", (l) => lines.push(l))).release();
    assert.match(
      lines.join("\n"),
      /taking over the stale lock .* of process 1 on elsewhere: its heartbeat/,
    );
    // a lock whose writer died between creating and filling it
    for (const torn of ["", '{"format":"webgpu-mlp.lo']) {
      await Deno.writeTextFile(path, torn);
      await Deno.utime(path, old, old);
      lines.length = 0;
      await (await acquireLock(path, "t", (l) => lines.push(l))).release();
      assert.match(lines.join("\n"), /taking over the stale lock .*: it is damaged/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("lock: a user's file, folder or link at the lock's path is left alone, in one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "lock-" });
  try {
    const poetry = join(dir, "poetry.lock");
    await Deno.writeTextFile(poetry, 'name = "requests"\n');
    await Deno.utime(poetry, old, old);
    await assertUserError(
      () => acquireLock(poetry, "t", () => {}),
      /poetry\.lock is a file that is not a lock of this tool, in the way of the lock and not written by this tool, so it is left alone/,
    );
    assert.equal(await Deno.readTextFile(poetry), 'name = "requests"\n');
    const folder = join(dir, "data.lock");
    await Deno.mkdir(folder);
    await Deno.writeTextFile(join(folder, "a"), "mine");
    await Deno.utime(folder, old, old);
    await assertUserError(() => acquireLock(folder, "t", () => {}), /data\.lock is a directory/);
    assert.equal(await Deno.readTextFile(join(folder, "a")), "mine");
    const link = join(dir, "link.lock");
    await Deno.symlink("/nonexistent", link);
    await assertUserError(() => acquireLock(link, "t", () => {}), /link\.lock is a symbolic link/);
    assert.equal(await Deno.readLink(link), "/nonexistent");
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["data.lock", "link.lock", "poetry.lock"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
