/**
 * Learning-rate schedules: η as a function of the update step t = 0, 1, …, total − 1.
 *
 * @module
 */

/** Constant η for a number of epochs. */
export interface ConstantSchedule {
  /** Selects this schedule (the `kind` of a config's `train.schedule`). */
  kind: "constant";
  /** The learning rate η of every step. */
  eta: number;
  /** Epochs to train: total steps = epochs · steps per epoch. */
  epochs: number;
}

/**
 * Cyclical triangular learning rate (Smith, 2017): η climbs linearly from etaMin to etaMax over
 * stepSize (n_s) steps, falls back over the next n_s, and repeats; total = 2·n_s·cycles.
 */
export interface CyclicSchedule {
  /** Selects this schedule (the `kind` of a config's `train.schedule`). */
  kind: "cyclic";
  /** η at the start and end of each cycle (steps that are multiples of 2·stepSize). */
  etaMin: number;
  /** η at the middle of each cycle (step stepSize of it). */
  etaMax: number;
  /** n_s: update steps of each half-cycle (not epochs). */
  stepSize: number;
  /** Number of full cycles to train. */
  cycles: number;
}

/** Step decay: η = eta · decay^floor(epoch / every), for a number of epochs. */
export interface StepDecaySchedule {
  /** Selects this schedule (the `kind` of a config's `train.schedule`). */
  kind: "stepDecay";
  /** Initial learning rate η (epochs 0 .. every − 1). */
  eta: number;
  /** Factor η is multiplied by every `every` epochs. */
  decay: number;
  /** Epochs between decays. */
  every: number;
  /** Epochs to train: total steps = epochs · steps per epoch. */
  epochs: number;
}

/** Any supported schedule. */
export type Schedule = ConstantSchedule | CyclicSchedule | StepDecaySchedule;

/** Total update steps of a schedule, given the steps in one epoch. */
export function totalSteps(s: Schedule, stepsPerEpoch: number): number {
  switch (s.kind) {
    case "cyclic":
      return 2 * s.stepSize * s.cycles;
    case "constant":
    case "stepDecay":
      return s.epochs * stepsPerEpoch;
  }
}

/** η at update step t. */
export function learningRate(s: Schedule, t: number, stepsPerEpoch: number): number {
  switch (s.kind) {
    case "constant":
      return s.eta;
    case "stepDecay":
      return s.eta * s.decay ** Math.floor(Math.floor(t / stepsPerEpoch) / s.every);
    case "cyclic": {
      const c = t % (2 * s.stepSize);
      const frac = c <= s.stepSize ? c / s.stepSize : 2 - c / s.stepSize;
      return s.etaMin + frac * (s.etaMax - s.etaMin);
    }
  }
}

/** The default evaluation interval: about 10 points per cycle, or one per epoch. */
export function defaultEvalEvery(s: Schedule, stepsPerEpoch: number): number {
  return s.kind === "cyclic" ? Math.max(1, Math.round((2 * s.stepSize) / 10)) : stepsPerEpoch;
}

/** The steps at which a run evaluates: 0, every k, and the last step. */
export function evalSteps(total: number, every: number): number[] {
  const out: number[] = [];
  for (let s = 0; s < total; s += every) out.push(s);
  out.push(total);
  return out;
}

/** η sampled at ≤ maxPoints steps (always including the first and last), as [step, η] pairs. */
export function sampleSchedule(
  s: Schedule,
  total: number,
  stepsPerEpoch: number,
  maxPoints = 2000,
): [number, number][] {
  const stride = Math.max(1, Math.ceil(total / maxPoints));
  const out: [number, number][] = [];
  for (let t = 0; t < total; t += stride) out.push([t, learningRate(s, t, stepsPerEpoch)]);
  if (total > 0 && out[out.length - 1][0] !== total - 1) {
    out.push([total - 1, learningRate(s, total - 1, stepsPerEpoch)]);
  }
  // cyclic peaks and troughs fall on multiples of stepSize: keep them exact
  if (s.kind === "cyclic" && stride > 1) {
    for (let t = 0; t <= total; t += s.stepSize) {
      if (t < total) out.push([t, learningRate(s, t, stepsPerEpoch)]);
    }
    out.sort((a, b) => a[0] - b[0]);
  }
  return out.filter((p, i) => i === 0 || p[0] !== out[i - 1][0]);
}
