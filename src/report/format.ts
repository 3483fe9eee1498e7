/**
 * Number and text formatting for report tables and captions.
 *
 * @module
 */

/** Accuracy in [0, 1] as a percentage with two decimals, `–` when missing. */
export function pct(x: number | null | undefined, digits = 2): string {
  return typeof x === "number" && Number.isFinite(x) ? `${(x * 100).toFixed(digits)} %` : "–";
}

/** A loss or cost with four significant digits, `–` when missing. */
export function num(x: number | null | undefined, digits = 4): string {
  if (typeof x !== "number") return "–";
  if (!Number.isFinite(x)) return String(x);
  if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3)) return x.toExponential(digits - 1);
  return String(Number(x.toPrecision(digits)));
}

/** A small positive quantity (λ, a learning rate, a relative error): `0`, `0.01`, `2.50e-5`. */
export function sci(x: number | null | undefined): string {
  if (typeof x !== "number") return "–";
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  if (Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4) return String(Number(x.toPrecision(3)));
  return x.toExponential(2);
}

/** A duration in seconds as `850 ms`, `12.3 s`, `4 min 05 s` or `1 h 02 min`. */
export function duration(seconds: number | null | undefined): string {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** An integer with thin-space thousands separators: `100 000`. */
export function int(x: number | null | undefined): string {
  if (typeof x !== "number" || !Number.isFinite(x)) return "–";
  return Math.round(x).toString().replace(/\B(?=(\d{3})+(?!\d))/g, "\u2009");
}

/**
 * Pretty JSON for a `<pre>` block (escape it before use): indented by two spaces, with short arrays
 * of numbers, strings, booleans or null kept on one line (`"layers": [3072, 50, 10]`).
 */
export function prettyJson(value: unknown, indent = ""): string {
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const flat = value.every((v) => v === null || typeof v !== "object");
    const inner = indent + "  ";
    if (flat) {
      const items = value.map((v) => JSON.stringify(v) ?? "null");
      const line = `[${items.join(", ")}]`;
      if (line.length <= 80) return line;
      const lines: string[] = [];
      for (const item of items) {
        const last = lines.length - 1;
        if (last >= 0 && lines[last].length + item.length + 2 <= 80) lines[last] += `, ${item}`;
        else lines.push(item);
      }
      return `[\n${lines.map((l) => inner + l).join(",\n")}\n${indent}]`;
    }
    return `[\n${value.map((v) => inner + prettyJson(v ?? null, inner)).join(",\n")}\n${indent}]`;
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return "{}";
    const inner = indent + "  ";
    return `{\n${
      entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${prettyJson(v, inner)}`).join(",\n")
    }\n${indent}}`;
  }
  return JSON.stringify(value) ?? String(value);
}
