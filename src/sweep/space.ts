/**
 * Search spaces of λ: log-uniform random, explicit list, grid, and "around the top trials of a
 * previous stage" (a narrower log-uniform range, or a ±10^w perturbation of each).
 *
 * @module
 */

import type { SpaceConfig } from "../config.ts";
import { Rng } from "../model/rng.ts";

/** A validated search space. */
export type Space = SpaceConfig;

/**
 * The λ values of a space, in trial order. `around` spaces need the λs of the referenced stage's
 * top trials (`centres`).
 */
export function sampleSpace(space: Space, centres: number[] = []): number[] {
  switch (space.kind) {
    case "list":
      return [...space.values];
    case "grid": {
      if (space.count === 1) return [space.min];
      const out: number[] = [];
      for (let i = 0; i < space.count; i++) {
        const f = i / (space.count - 1);
        out.push(
          space.scale === "log"
            ? 10 ** (Math.log10(space.min) + f * (Math.log10(space.max) - Math.log10(space.min)))
            : space.min + f * (space.max - space.min),
        );
      }
      return out;
    }
    case "logUniform": {
      const rng = new Rng(space.seed);
      const lo = Math.log10(space.min), hi = Math.log10(space.max);
      return Array.from({ length: space.count }, () => 10 ** rng.range(lo, hi));
    }
    case "around": {
      if (centres.length === 0) throw new Error("an around space needs the top λs of its stage");
      const rng = new Rng(space.seed);
      if (space.mode === "range") {
        const lo = Math.log10(Math.min(...centres)) - space.width;
        const hi = Math.log10(Math.max(...centres)) + space.width;
        return Array.from({ length: space.count }, () => 10 ** rng.range(lo, hi));
      }
      const out: number[] = [];
      for (const c of centres) {
        for (let i = 0; i < space.count; i++) {
          out.push(c * 10 ** rng.range(-space.width, space.width));
        }
      }
      return out;
    }
  }
}

/** A one-line description of a space for tables and logs. */
export function describeSpace(space: Space): string {
  switch (space.kind) {
    case "list":
      return `list of ${space.values.length}`;
    case "grid":
      return `${space.scale} grid ${space.min}…${space.max}, ${space.count} values`;
    case "logUniform":
      return `log-uniform 10^U(${Math.log10(space.min).toFixed(2)}, ${
        Math.log10(space.max).toFixed(2)
      }), ${space.count} values`;
    case "around":
      return `${
        space.mode === "range" ? "log-uniform range" : "perturbation"
      } ±${space.width} decades around the top ${space.top} of ${
        space.sweep ? `${space.sweep}:` : ""
      }${space.stage}, ${space.count}${space.mode === "perturb" ? " per centre" : ""} values`;
  }
}
