/** Learning-rate schedules and evaluation points. */

import assert from "node:assert/strict";
import {
  defaultEvalEvery,
  evalSteps,
  learningRate,
  sampleSchedule,
  type Schedule,
  totalSteps,
} from "../src/train/schedule.ts";

const cyc: Schedule = { kind: "cyclic", etaMin: 1e-5, etaMax: 1e-1, stepSize: 500, cycles: 2 };
const close = (a: number, b: number) =>
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

Deno.test("cyclic: triangle from etaMin to etaMax and back, 2·n_s·cycles steps", () => {
  assert.equal(totalSteps(cyc, 100), 2000);
  close(learningRate(cyc, 0, 100), 1e-5);
  close(learningRate(cyc, 250, 100), 1e-5 + 0.5 * (1e-1 - 1e-5));
  close(learningRate(cyc, 500, 100), 1e-1);
  close(learningRate(cyc, 750, 100), 1e-5 + 0.5 * (1e-1 - 1e-5));
  close(learningRate(cyc, 1000, 100), 1e-5); // second cycle starts
  close(learningRate(cyc, 1500, 100), 1e-1);
  close(learningRate(cyc, 1999, 100), 1e-5 + (1 / 500) * (1e-1 - 1e-5));
  assert.equal(defaultEvalEvery(cyc, 100), 100);
});

Deno.test("constant and step decay run for epochs", () => {
  const c: Schedule = { kind: "constant", eta: 0.01, epochs: 3 };
  assert.equal(totalSteps(c, 450), 1350);
  assert.equal(learningRate(c, 1349, 450), 0.01);
  const d: Schedule = { kind: "stepDecay", eta: 0.1, decay: 0.5, every: 2, epochs: 6 };
  assert.equal(totalSteps(d, 10), 60);
  close(learningRate(d, 19, 10), 0.1);
  close(learningRate(d, 20, 10), 0.05);
  close(learningRate(d, 59, 10), 0.025);
  assert.equal(defaultEvalEvery(d, 10), 10);
});

Deno.test("evaluation points: 0, every k, and the last step exactly once", () => {
  assert.deepEqual(evalSteps(1000, 100), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  assert.deepEqual(evalSteps(250, 100), [0, 100, 200, 250]);
  assert.deepEqual(evalSteps(5, 100), [0, 5]);
});

Deno.test("sampled schedule keeps the ends and the peaks, with unique steps", () => {
  const s = sampleSchedule({ ...cyc, stepSize: 7 }, 10000, 100, 50);
  assert.ok(s.length < 2000);
  assert.equal(s[0][0], 0);
  assert.equal(s.at(-1)![0], 9999);
  for (let i = 1; i < s.length; i++) assert.ok(s[i][0] > s[i - 1][0]);
  assert.ok(s.some(([t, e]) => t === 7 && Math.abs(e - 0.1) < 1e-12), "a peak is kept");
});
