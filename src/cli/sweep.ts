/**
 * `deno task sweep --config FILE [--shard i/n]` and `deno task sweep --merge DIR`: the train
 * command for configs with a `search` block, spelled out.
 *
 * @module
 */

import { main } from "./train.ts";
import { runMain } from "./main.ts";

if (import.meta.main) runMain(() => main(Deno.args, true));
