; jit.ll - a small program for LLVM's lli (tests/engines.sh): lli JIT-links
; it into 4 KiB RW sections and makes the code section RX only later.
@fmt = private constant [5 x i8] c"%ld\0A\00"
@g = internal global [100 x i64] zeroinitializer

declare i32 @printf(i8*, ...)

define i64 @f1(i64 %x) {
  %r = urem i64 %x, 100
  %p = getelementptr [100 x i64], [100 x i64]* @g, i64 0, i64 %r
  %v = load i64, i64* %p
  %m = mul i64 %x, 3
  %s = add i64 %m, %v
  ret i64 %s
}

define i64 @f2(i64 %x) {
  %a = call i64 @f1(i64 %x)
  %b = add i64 %a, 7
  ret i64 %b
}

define i32 @main() {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  %s = phi i64 [ 0, %entry ], [ %s1, %loop ]
  %r = urem i64 %i, 100
  %p = getelementptr [100 x i64], [100 x i64]* @g, i64 0, i64 %r
  store i64 %i, i64* %p
  %v = call i64 @f2(i64 %i)
  %s1 = add i64 %s, %v
  %i1 = add i64 %i, 1
  %c = icmp ult i64 %i1, 1000000
  br i1 %c, label %loop, label %done
done:
  %f = getelementptr [5 x i8], [5 x i8]* @fmt, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %f, i64 %s1)
  ret i32 0
}
