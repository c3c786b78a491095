# yjit.rb - a workload that makes Ruby's YJIT compile a lot: N generated
# methods (branches, arrays, integer ops), each called hot, then a hash
# loop.  `ruby --yjit yjit.rb [N] [wait]`: with "wait", print "yjit INLINE
# OUTLINED" (its code's sizes) and "pid P" once the code is compiled, and
# finish after a line on stdin.
n = (ARGV[0] || 3000).to_i
src = (0...n).map { |i|
  "def m#{i}(a, b)\n" \
  "  x = a * #{i % 7 + 1} + b\n" \
  "  y = [x, a, b].max - #{i % 5}\n" \
  "  x.odd? ? x + y : (x ^ y) & 0xffff\n" \
  "end\n"
}.join
eval(src)
sum = 0
40.times do |r|
  (0...n).each { |i| sum = (sum + send(:"m#{i}", i, r)) & 0xffffffff }
end
h = Hash.new(0)
200_000.times { |i| h[i % 97] += i }
puts sum, h.values.sum
if ARGV[1] == "wait"
  # Where the code is: YJIT 3.1 writes inline code from the start of its
  # range and outlined code from its middle; these are their sizes.
  st = RubyVM::YJIT.runtime_stats || {}
  puts "yjit #{st[:inline_code_size].to_i} #{st[:outlined_code_size].to_i}"
  puts "pid #{Process.pid}"
  $stdout.flush
  $stdin.gets
end
