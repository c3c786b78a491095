<?php
// jit.php - a workload for PHP's opcache tracing JIT (tests/e2e/shared_code.sh):
// N generated functions, each with a hot loop, written to a file that is
// included (opcache caches it, so the JIT compiles it) and called until
// their loops and calls are hot.  `php -d opcache.enable_cli=1
// -d opcache.jit_buffer_size=64M -d opcache.jit=tracing jit.php N [wait]`;
// with wait it prints its pid and waits for a line on stdin.
$n = (int)($argv[1] ?? 1000);
$src = "<?php\n";
for ($j = 0; $j < $n; $j++) {
    $k = $j % 7 + 2;
    $src .= "function f$j(\$n) { \$s = 0; for (\$i = 0; \$i < \$n; \$i++) { " .
        "if (\$i % $k == 0) { \$s += \$i * $j; } elseif (\$i % 3 == 1) { \$s ^= \$i + $j; } " .
        "elseif (\$i % 5 == 2) { \$s += intdiv(\$i, $k) - $j; } else { \$s -= \$i >> 1; } } " .
        "return \$s; }\n";
}
$file = tempnam(sys_get_temp_dir(), "hpjit");
file_put_contents($file, $src);
touch($file, time() - 60); // opcache does not cache a file changed in the last 2 s
include $file;
unlink($file);
$sum = 0;
for ($r = 0; $r < 200; $r++) {
    for ($j = 0; $j < $n; $j++) {
        $f = "f$j";
        $sum += $f(100 + $r % 5);
    }
}
echo "functions $n sum $sum\n";
if (($argv[2] ?? '') === 'wait') {
    echo "pid ", getmypid(), "\n";
    fgets(STDIN);
}
