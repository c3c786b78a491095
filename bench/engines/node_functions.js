// node_functions.js - a JS program that compiles many functions: N made
// with new Function, each a loop with its own constants, all called ROUNDS
// times, so that V8 compiles them (Sparkplug, then TurboFan for the
// hottest) into its code range.  Usage: node node_functions.js N ROUNDS
const N = +(process.argv[2] || 3000), ROUNDS = +(process.argv[3] || 300);
const fs = [];
for (let j = 0; j < N; j++)
  fs.push(new Function("n", "let s = 0; for (let i = 0; i < n; i++) s += (i % " +
    ((j % 7) + 2) + ") * " + j + "; return s;"));
let s = 0;
for (let r = 0; r < ROUNDS; r++)
  for (const f of fs) s += f(50);
console.log("result " + s);
