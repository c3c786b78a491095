// node_bigcode.js - hot code far larger than the iTLB reaches: N distinct
// functions, each K statements with their own constants, called CALLS
// times in a fixed pseudo-random order, so that V8's compiled code (tens of
// MiB of it) is executed all over.  Usage: node node_bigcode.js N K CALLS
const N = +(process.argv[2] || 20000), K = +(process.argv[3] || 30);
const CALLS = +(process.argv[4] || 2000000);
const fs = [];
for (let j = 0; j < N; j++) {
  let body = "let a = x;";
  for (let k = 0; k < K; k++)
    body += ` a = (a * ${((j * 7 + k) % 89) + 2} + ${j * 31 + k}) & 1048575;`;
  fs.push(new Function("x", body + " return a;"));
}
let total = 0, seed = 12345;
for (let c = 0; c < CALLS; c++) {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  total = (total + fs[seed % N](c % 1000)) % 1000000007;
}
console.log("result " + total);
