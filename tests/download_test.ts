/**
 * Tests of src/data/download.ts and the `deno task data` CLI, against a fake archive built here
 * with the tar package and served from a loopback server. The fake holds files of the exact
 * official sizes (the production checks stay strict); their content is mostly zero with a
 * pseudo-random byte every 509 bytes, so that the archive is small (~1.4 MB) yet below tar's
 * decompression-ratio guard.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tar from "tar";
import { readBatchFile, readClassNames } from "../src/data/files.ts";
import {
  ARCHIVE_DIR,
  checkCifar10Dir,
  downloadCifar10,
  EXPECTED_FILES,
} from "../src/data/download.ts";
import { exists } from "../src/io/exists.ts";
import { assertUserError } from "./assert_user_error.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const CLASSES = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";

function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("hex");
}

/** Build a tar.gz of `cifar-10-batches-bin/` holding `files` (name -> content) under `dir`. */
async function buildArchive(dir: string, name: string, files: Record<string, Uint8Array>) {
  const src = join(dir, `${name}-src`);
  await Deno.mkdir(join(src, ARCHIVE_DIR), { recursive: true });
  for (const [file, content] of Object.entries(files)) {
    await Deno.writeFile(join(src, ARCHIVE_DIR, file), content);
  }
  const path = join(dir, `${name}.tar.gz`);
  await tar.c({ gzip: true, file: path, cwd: src, portable: true }, [ARCHIVE_DIR]);
  await Deno.remove(src, { recursive: true });
  const bytes = await Deno.readFile(path);
  return { path, bytes, md5: md5(bytes) };
}

/** A batch-sized buffer: record 0 has label 6 (marker), the rest sparse pseudo-random bytes. */
function fakeBatch(): Uint8Array {
  const buf = new Uint8Array(30730000);
  let seed = 12345;
  for (let i = 509; i < buf.length; i += 509) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    buf[i] = seed >>> 24;
  }
  for (let r = 0; r < 10000; r++) buf[r * 3073] = r % 10; // valid labels
  buf[0] = 6;
  return buf;
}

async function list(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** Whether nothing is at `path`. */
async function gone(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return false;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return true;
    throw e;
  }
}

async function runCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/data.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("downloadCifar10", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "download_test_" });
  let hits = 0;
  const batch = fakeBatch();
  const files: Record<string, Uint8Array> = {
    "batches.meta.txt": new TextEncoder().encode(CLASSES),
    "readme.html": new TextEncoder().encode("<html></html>\n"),
  };
  for (const name of Object.keys(EXPECTED_FILES)) {
    if (name.endsWith(".bin")) files[name] = batch;
  }
  const good = await buildArchive(dir, "good", files);
  const corrupt = good.bytes.slice();
  corrupt[corrupt.length >> 1] ^= 0xff;

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    hits++;
    const path = new URL(req.url).pathname;
    if (path === "/good.tar.gz") return new Response(good.bytes);
    if (path === "/corrupt.tar.gz") return new Response(corrupt);
    if (path === "/encoded.tar.gz") {
      // A server that labels the archive as gzip-encoded: the bytes must be kept as sent.
      return new Response(good.bytes, { headers: { "content-encoding": "gzip" } });
    }
    return new Response("not found", { status: 404, statusText: "Not Found" });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;

  try {
    await t.step("downloads, verifies, extracts and installs into a new directory", async () => {
      const parent = join(dir, "a", "b");
      const dest = join(parent, "cifar-10");
      const progress: [number, number | null][] = [];
      const notes: string[] = [];
      const got = await downloadCifar10({
        dest,
        url: `${base}/good.tar.gz`,
        md5: good.md5,
        onProgress: (done, total) => progress.push([done, total]),
        onInfo: (line) => notes.push(line),
      });
      assert.equal(got, dest);
      assert.deepEqual(notes, [
        `downloading ${base}/good.tar.gz`,
        `extracting ${base}/good.tar.gz`,
      ]);
      assert.equal(await checkCifar10Dir(dest), null);
      assert.deepEqual(await list(parent), ["cifar-10"]); // no temporary leftovers
      assert.deepEqual(await list(dest), Object.keys(files).sort());
      assert.deepEqual(progress.at(-1), [good.bytes.length, good.bytes.length]);
      // The files arrive intact and are readable by the loader.
      const b = readBatchFile(join(dest, "data_batch_3.bin"));
      assert.deepEqual([...b.labels.subarray(0, 4)], [6, 1, 2, 3]);
      assert.deepEqual(await Deno.readFile(join(dest, "test_batch.bin")), batch);
      assert.equal(readClassNames(dest)[9], "truck");

      // A second run finds the complete copy and does nothing (no request is made).
      const before = hits;
      notes.length = 0;
      const again = await downloadCifar10({
        dest,
        url: `${base}/good.tar.gz`,
        md5: good.md5,
        onInfo: (line) => notes.push(line),
      });
      assert.equal(again, dest);
      assert.equal(hits, before);
      assert.equal(notes.length, 1);
      assert.match(notes[0], /already holds a complete CIFAR-10 copy: nothing to do/);
    });

    await t.step("a corrupt download fails on the MD5 and leaves nothing behind", async () => {
      const parent = join(dir, "corrupt");
      const dest = join(parent, "cifar-10");
      await assertUserError(
        () => downloadCifar10({ dest, url: `${base}/corrupt.tar.gz`, md5: good.md5 }),
        new RegExp(
          `MD5 of .*corrupt\\.tar\\.gz is ${md5(corrupt)}, expected ${good.md5}: ` +
            "the download is corrupt or not the official",
        ),
      );
      assert.equal(await exists(dest), false);
      assert.equal(await gone(parent), true, "the folder it made is removed again");
      // Same with the default (official) checksum.
      await assertUserError(
        () => downloadCifar10({ dest, url: `${base}/good.tar.gz` }),
        /expected c32a1d4ab5d03f1284b67883e8d87530/,
      );
      assert.equal(await gone(parent), true, "the folder it made is removed again");
    });

    await t.step("HTTP 404 and connection refused fail cleanly", async () => {
      const parent = join(dir, "http");
      const dest = join(parent, "cifar-10");
      await assertUserError(
        () => downloadCifar10({ dest, url: `${base}/missing.tar.gz`, md5: good.md5 }),
        /download of http:\/\/127\.0\.0\.1:\d+\/missing\.tar\.gz failed: HTTP 404 Not Found; /,
      );
      assert.equal(await gone(parent), true, "the folder it made is removed again");

      // Content-Encoding: gzip is not undone (the MD5 is that of the bytes sent). A wrong
      // expected MD5 makes it report what it got without extracting.
      await assertUserError(
        () => downloadCifar10({ dest, url: `${base}/encoded.tar.gz`, md5: "0".repeat(32) }),
        new RegExp(`is ${good.md5}, expected 0{32}`),
      );
      assert.equal(await gone(parent), true, "the folder it made is removed again");

      const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (closed.addr as Deno.NetAddr).port;
      closed.close();
      await assertUserError(
        () => downloadCifar10({ dest, url: `http://127.0.0.1:${port}/x.tar.gz` }),
        /could not download http:\/\/127\.0\.0\.1:\d+\/x\.tar\.gz: .*Connection refused.*pass --from FILE\.tar\.gz/,
      );
      assert.equal(await gone(parent), true, "the folder it made is removed again");
    });

    await t.step("an aborted download is reported and leaves nothing behind", async () => {
      const parent = join(dir, "abort");
      const dest = join(parent, "cifar-10");
      const e = await assertUserError(
        () =>
          downloadCifar10({
            dest,
            url: `${base}/good.tar.gz`,
            md5: good.md5,
            signal: AbortSignal.abort(),
          }),
        /download interrupted/,
      );
      assert.equal(e.exitCode, 130);
      assert.equal(await gone(parent), true, "the folder it made is removed again");
    });

    await t.step("--from installs from a local archive", async () => {
      const dest = join(dir, "from", "cifar-10");
      const got = await downloadCifar10({ dest, from: good.path, md5: good.md5 });
      assert.equal(got, dest);
      assert.equal(await checkCifar10Dir(dest), null);
      assert.deepEqual(await list(join(dir, "from")), ["cifar-10"]);
      assert.ok(await exists(good.path), "the source archive is kept");

      await assertUserError(
        () => downloadCifar10({ dest: join(dir, "from2"), from: good.path }),
        /MD5 of .*good\.tar\.gz is [0-9a-f]{32}, expected c32a1d4ab5d03f1284b67883e8d87530: the file is corrupt or not the official cifar-10-binary\.tar\.gz; download it again$/,
      );
      assert.deepEqual(await list(dir).then((l) => l.filter((n) => n.startsWith("."))), []);
      await assertUserError(
        () => downloadCifar10({ dest: join(dir, "from2"), from: join(dir, "nope.tar.gz") }),
        /archive .*nope\.tar\.gz not found/,
      );
    });

    await t.step("bad archives and bad destinations are refused, dest untouched", async () => {
      // Right MD5, but a wrong-size batch file.
      const small = await buildArchive(dir, "small", {
        "batches.meta.txt": new TextEncoder().encode(CLASSES),
        "data_batch_1.bin": batch.subarray(0, 3073),
      });
      const dest = join(dir, "bad", "cifar-10");
      await assertUserError(
        () => downloadCifar10({ dest, from: small.path, md5: small.md5 }),
        /is not the CIFAR-10 binary archive: .*data_batch_1\.bin is 3073 bytes, expected 30730000/,
      );
      assert.equal(await gone(join(dir, "bad")), true, "the folder it made is removed again");

      // Right MD5, but not a tar.gz at all.
      const junk = join(dir, "junk.tar.gz");
      const junkBytes = new TextEncoder().encode("this is not an archive\n".repeat(100));
      await Deno.writeFile(junk, junkBytes);
      await assertUserError(
        () => downloadCifar10({ dest, from: junk, md5: md5(junkBytes) }),
        /could not extract .*junk\.tar\.gz: .*not a valid \.tar\.gz/,
      );
      assert.equal(await gone(join(dir, "bad")), true, "the folder it made is removed again");

      // A non-empty, incomplete dest is left alone.
      const partial = join(dir, "partial");
      await Deno.mkdir(partial);
      await Deno.writeTextFile(join(partial, "data_batch_1.bin"), "x");
      await assertUserError(
        () => downloadCifar10({ dest: partial, from: good.path, md5: good.md5 }),
        /partial exists but is not a complete CIFAR-10 copy \(data_batch_1\.bin is 1 bytes/,
      );
      assert.deepEqual(await list(partial), ["data_batch_1.bin"]);

      // An empty dest directory is filled.
      const emptyDest = join(dir, "empty");
      await Deno.mkdir(emptyDest);
      await downloadCifar10({ dest: emptyDest, from: good.path, md5: good.md5 });
      assert.equal(await checkCifar10Dir(emptyDest), null);

      await assertUserError(
        () => downloadCifar10({ dest, from: good.path, md5: "xyz" }),
        /--md5 xyz is not an MD5 checksum/,
      );

      // links in the archive (last, where tar's strict refusal raced the cleanup): never
      // extracted, so the copy is incomplete, and nothing is left beside dest
      const linked = join(dir, "linked-src");
      await Deno.mkdir(join(linked, ARCHIVE_DIR), { recursive: true });
      for (const [file, content] of Object.entries(files)) {
        if (file !== "batches.meta.txt") {
          await Deno.writeFile(join(linked, ARCHIVE_DIR, file), content);
        }
      }
      await Deno.symlink("/etc/passwd", join(linked, ARCHIVE_DIR, "batches.meta.txt"));
      const linkedTar = join(dir, "linked.tar.gz");
      await tar.c({ gzip: true, file: linkedTar, cwd: linked, portable: true }, [ARCHIVE_DIR]);
      const linkedDest = join(dir, "links", "cifar-10");
      const linkedMd5 = md5(await Deno.readFile(linkedTar));
      await assertUserError(
        () =>
          downloadCifar10({
            dest: linkedDest,
            from: linkedTar,
            md5: linkedMd5,
          }),
        /is not the CIFAR-10 binary archive: .*batches\.meta\.txt/,
      );
      assert.equal(await gone(join(dir, "links")), true, "nothing left beside dest");

      // paths that cannot be: a file on the way, a device or a directory as the archive
      const file = join(dir, "a-file");
      await Deno.writeTextFile(file, "x");
      await assertUserError(
        () => downloadCifar10({ dest: join(file, "sub"), from: good.path, md5: good.md5 }),
        /--dest .*a-file\/sub: .*a-file is a file, not a directory: pass --dest DIR/,
      );
      await assertUserError(
        () => downloadCifar10({ dest: join(dir, "x"), from: join(file, "y.tar.gz") }),
        /archive .*a-file\/y\.tar\.gz not found/,
      );
      await assertUserError(
        () => downloadCifar10({ dest: join(dir, "x"), from: "/dev/zero" }),
        /archive \/dev\/zero is not a regular file/,
      );
      await assertUserError(
        () => downloadCifar10({ dest: join(dir, "x"), from: dir }),
        /archive .* is a directory: pass --from FILE\.tar\.gz/,
      );
      await Deno.symlink(join(dir, "loop"), join(dir, "loop"));
      await assertUserError(
        () => downloadCifar10({ dest: join(dir, "loop"), from: good.path, md5: good.md5 }),
        /--dest .*loop cannot be inspected .*: pass --dest DIR/,
      );
      await assertUserError(
        () => downloadCifar10({ dest: join(dir, "x"), from: join(dir, "loop") }),
        /archive .*loop cannot be read/,
      );
      assert.equal(await gone(join(dir, "x")), true);
    });

    await t.step("the CLI: bad flag, --from install, second run", async () => {
      const bad = await runCli(["--bogus"]);
      assert.notEqual(bad.code, 0);
      assert.equal(bad.stdout, "");
      assert.equal(
        bad.stderr,
        "error: unknown flag --bogus (allowed: --dest, --from, --url, --md5, --help)\n",
      );

      const both = await runCli(["--from", good.path, "--url", `${base}/good.tar.gz`]);
      assert.equal(both.code, 1);
      assert.equal(both.stderr, "error: --from and --url exclude each other: give one of them\n");

      const dest = join(dir, "cli", "cifar-10");
      const ok = await runCli(["--dest", dest, "--from", good.path, "--md5", good.md5]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(await checkCifar10Dir(dest), null);
      assert.match(ok.stdout, new RegExp(`CIFAR-10 is in ${dest}\n`));
      assert.match(ok.stdout, new RegExp(`CIFAR10_DIR=${dest} deno task train`));
      assert.match(ok.stderr, /verifying .* MB/); // progress lines (stderr is not a TTY here)
      assert.ok(!ok.stderr.includes("\r"));

      const again = await runCli(["--dest", dest, "--from", good.path, "--md5", good.md5]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /already holds a complete CIFAR-10 copy/);

      const missing = await runCli(["--dest", join(dir, "cli2"), "--url", `${base}/nope`]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /\nerror: download of .* failed: HTTP 404 Not Found; .*\n$/);
      assert.ok(!missing.stderr.includes("    at "), "no stack trace");
    });
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
