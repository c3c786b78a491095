; loops.ll - nested loops, integer and floating point, a switch: the same
; sums under lli and hugeperm-lli.
@fmt = private constant [23 x i8] c"loops %ld %ld %.6f %d\0A\00"

declare i32 @printf(i8*, ...)

define i64 @triangle(i64 %n) {
entry:
  br label %outer
outer:
  %i = phi i64 [ 0, %entry ], [ %i1, %outer.end ]
  %acc = phi i64 [ 0, %entry ], [ %acc2, %outer.end ]
  br label %inner
inner:
  %j = phi i64 [ 0, %outer ], [ %j1, %inner ]
  %a = phi i64 [ %acc, %outer ], [ %a1, %inner ]
  %x = mul i64 %i, %j
  %y = xor i64 %x, %a
  %a1 = add i64 %y, 1
  %j1 = add i64 %j, 1
  %jc = icmp ule i64 %j1, %i
  br i1 %jc, label %inner, label %outer.end
outer.end:
  %acc2 = phi i64 [ %a1, %inner ]
  %i1 = add i64 %i, 1
  %ic = icmp ult i64 %i1, %n
  br i1 %ic, label %outer, label %done
done:
  ret i64 %acc2
}

define double @harmonic(i32 %n) {
entry:
  br label %loop
loop:
  %k = phi i32 [ 1, %entry ], [ %k1, %loop ]
  %s = phi double [ 0.0, %entry ], [ %s1, %loop ]
  %kf = sitofp i32 %k to double
  %q = fdiv double 1.0, %kf
  %s1 = fadd double %s, %q
  %k1 = add i32 %k, 1
  %c = icmp sle i32 %k1, %n
  br i1 %c, label %loop, label %done
done:
  ret double %s1
}

define i32 @classify(i32 %v) {
  switch i32 %v, label %other [ i32 0, label %zero
                                i32 1, label %one
                                i32 7, label %seven ]
zero:
  ret i32 10
one:
  ret i32 20
seven:
  ret i32 70
other:
  %r = and i32 %v, 3
  ret i32 %r
}

define i32 @main() {
entry:
  %t = call i64 @triangle(i64 1500)
  %h = call double @harmonic(i32 1000000)
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %loop ]
  %s = phi i64 [ 0, %entry ], [ %s1, %loop ]
  %c = call i32 @classify(i32 %i)
  %c64 = sext i32 %c to i64
  %s1 = add i64 %s, %c64
  %i1 = add i32 %i, 1
  %more = icmp slt i32 %i1, 100000
  br i1 %more, label %loop, label %done
done:
  %f = getelementptr [23 x i8], [23 x i8]* @fmt, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %f, i64 %t, i64 %s1, double %h, i32 %i1)
  ret i32 0
}
