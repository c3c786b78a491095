; recursion.ll - deep and mutual recursion: fib, Ackermann, even/odd.
@fmt = private constant [26 x i8] c"fib %d ack %d even %d %d\0A\00"

declare i32 @printf(i8*, ...)

define i32 @fib(i32 %n) {
  %small = icmp slt i32 %n, 2
  br i1 %small, label %base, label %rec
base:
  ret i32 %n
rec:
  %a = sub i32 %n, 1
  %b = sub i32 %n, 2
  %fa = call i32 @fib(i32 %a)
  %fb = call i32 @fib(i32 %b)
  %r = add i32 %fa, %fb
  ret i32 %r
}

define i32 @ack(i32 %m, i32 %n) {
  %m0 = icmp eq i32 %m, 0
  br i1 %m0, label %a, label %b
a:
  %r1 = add i32 %n, 1
  ret i32 %r1
b:
  %m1 = sub i32 %m, 1
  %n0 = icmp eq i32 %n, 0
  br i1 %n0, label %c, label %d
c:
  %r2 = call i32 @ack(i32 %m1, i32 1)
  ret i32 %r2
d:
  %n1 = sub i32 %n, 1
  %inner = call i32 @ack(i32 %m, i32 %n1)
  %r3 = call i32 @ack(i32 %m1, i32 %inner)
  ret i32 %r3
}

define i32 @is_even(i32 %n) {
  %z = icmp eq i32 %n, 0
  br i1 %z, label %yes, label %no
yes:
  ret i32 1
no:
  %n1 = sub i32 %n, 1
  %r = call i32 @is_odd(i32 %n1)
  ret i32 %r
}

define i32 @is_odd(i32 %n) {
  %z = icmp eq i32 %n, 0
  br i1 %z, label %yes, label %no
yes:
  ret i32 0
no:
  %n1 = sub i32 %n, 1
  %r = call i32 @is_even(i32 %n1)
  ret i32 %r
}

define i32 @main() {
  %f = call i32 @fib(i32 27)
  %a = call i32 @ack(i32 2, i32 300)
  %e1 = call i32 @is_even(i32 10000)
  %e2 = call i32 @is_even(i32 9999)
  %p = getelementptr [26 x i8], [26 x i8]* @fmt, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %p, i32 %f, i32 %a, i32 %e1, i32 %e2)
  ret i32 0
}
