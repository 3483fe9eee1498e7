/** Finding a Python interpreter for the tests that check files with Python's own libraries. */

/**
 * The first interpreter ($PYTHON, python3, /usr/bin/python3) that imports `modules`, or why
 * there is none (`no python3`, or `python3 has no <what>`).
 */
export async function findPython(
  modules: string,
  what: string,
): Promise<{ python?: string; why: string }> {
  let found = false;
  for (const python of [Deno.env.get("PYTHON"), "python3", "/usr/bin/python3"]) {
    if (!python) continue;
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", `import ${modules}`],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.code === 0) return { python, why: "" };
      found = true;
    } catch { /* not installed */ }
  }
  return { why: found ? `python3 has no ${what}` : "no python3" };
}
