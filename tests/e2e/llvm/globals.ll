; globals.ll - globals read and written from several functions, a static
; constructor and destructor, a table of function pointers in data and a
; read-only table; the exit status (42) comes from a global.
@counter = internal global i64 0
@status = global i32 0
@hist = internal global [16 x i32] zeroinitializer
@squares = internal constant [8 x i32] [i32 0, i32 1, i32 4, i32 9, i32 16, i32 25, i32 36, i32 49]
@ops = internal global [3 x i64 (i64)*] [i64 (i64)* @inc, i64 (i64)* @dbl, i64 (i64)* @sq]
@fmt = private constant [24 x i8] c"counter %ld hist %d %d\0A\00"
@bye = private constant [12 x i8] c"destructor\0A\00"
@llvm.global_ctors = appending global [1 x { i32, void ()*, i8* }] [{ i32, void ()*, i8* } { i32 65535, void ()* @init, i8* null }]
@llvm.global_dtors = appending global [1 x { i32, void ()*, i8* }] [{ i32, void ()*, i8* } { i32 65535, void ()* @fini, i8* null }]

declare i32 @printf(i8*, ...)

define internal void @init() {
  store i64 1000, i64* @counter
  store i32 40, i32* @status
  ret void
}

define internal void @fini() {
  %p = getelementptr [12 x i8], [12 x i8]* @bye, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %p)
  ret void
}

define i64 @inc(i64 %x) {
  %r = add i64 %x, 1
  ret i64 %r
}

define i64 @dbl(i64 %x) {
  %r = shl i64 %x, 1
  ret i64 %r
}

define i64 @sq(i64 %x) {
  %m = urem i64 %x, 8
  %p = getelementptr [8 x i32], [8 x i32]* @squares, i64 0, i64 %m
  %v = load i32, i32* %p
  %v64 = zext i32 %v to i64
  %r = add i64 %x, %v64
  ret i64 %r
}

define void @step(i64 %i) {
  %k = urem i64 %i, 3
  %fp = getelementptr [3 x i64 (i64)*], [3 x i64 (i64)*]* @ops, i64 0, i64 %k
  %f = load i64 (i64)*, i64 (i64)** %fp
  %c = load i64, i64* @counter
  %c1 = call i64 %f(i64 %c)
  %c2 = urem i64 %c1, 1000003
  store i64 %c2, i64* @counter
  %b = urem i64 %c2, 16
  %hp = getelementptr [16 x i32], [16 x i32]* @hist, i64 0, i64 %b
  %h = load i32, i32* %hp
  %h1 = add i32 %h, 1
  store i32 %h1, i32* %hp
  ret void
}

define i32 @main() {
entry:
  br label %loop
loop:
  %i = phi i64 [ 0, %entry ], [ %i1, %loop ]
  call void @step(i64 %i)
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, 200000
  br i1 %more, label %loop, label %done
done:
  %c = load i64, i64* @counter
  %h0p = getelementptr [16 x i32], [16 x i32]* @hist, i64 0, i64 0
  %h0 = load i32, i32* %h0p
  %h15p = getelementptr [16 x i32], [16 x i32]* @hist, i64 0, i64 15
  %h15 = load i32, i32* %h15p
  %f = getelementptr [24 x i8], [24 x i8]* @fmt, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %f, i64 %c, i32 %h0, i32 %h15)
  %s = load i32, i32* @status
  %s2 = add i32 %s, 2
  store i32 %s2, i32* @status
  ret i32 %s2
}
