; libc.ll - calls into the C library: printf, snprintf, puts, malloc,
; memset, strlen, free, and qsort calling back into JIT-compiled code.
; Exits with status 3.
@fmt = private constant [24 x i8] c"sorted %d %d %d sum %ld\00"
@word = private constant [14 x i8] c"hugeperm-lli!\00"
@lenfmt = private constant [12 x i8] c"strlen %zu\0A\00"

declare i32 @printf(i8*, ...)
declare i32 @snprintf(i8*, i64, i8*, ...)
declare i32 @puts(i8*)
declare i8* @malloc(i64)
declare void @free(i8*)
declare i8* @memset(i8*, i32, i64)
declare i64 @strlen(i8*)
declare void @qsort(i8*, i64, i64, i32 (i8*, i8*)*)

define i32 @cmp(i8* %a, i8* %b) {
  %pa = bitcast i8* %a to i32*
  %pb = bitcast i8* %b to i32*
  %va = load i32, i32* %pa
  %vb = load i32, i32* %pb
  %lt = icmp slt i32 %va, %vb
  %gt = icmp sgt i32 %va, %vb
  %l = zext i1 %lt to i32
  %g = zext i1 %gt to i32
  %r = sub i32 %g, %l
  ret i32 %r
}

define i32 @main() {
entry:
  %n = add i64 0, 5000
  %bytes = mul i64 %n, 4
  %raw = call i8* @malloc(i64 %bytes)
  call i8* @memset(i8* %raw, i32 0, i64 %bytes)
  %arr = bitcast i8* %raw to i32*
  br label %fill
fill:
  %i = phi i64 [ 0, %entry ], [ %i1, %fill ]
  %x = phi i32 [ 12345, %entry ], [ %x1, %fill ]
  %x1 = mul i32 %x, 1103515245
  %x2 = add i32 %x1, 12345
  %v = lshr i32 %x2, 8
  %p = getelementptr i32, i32* %arr, i64 %i
  store i32 %v, i32* %p
  %i1 = add i64 %i, 1
  %more = icmp ult i64 %i1, %n
  br i1 %more, label %fill, label %sort
sort:
  call void @qsort(i8* %raw, i64 %n, i64 4, i32 (i8*, i8*)* @cmp)
  br label %sum
sum:
  %j = phi i64 [ 0, %sort ], [ %j1, %sum ]
  %s = phi i64 [ 0, %sort ], [ %s1, %sum ]
  %q = getelementptr i32, i32* %arr, i64 %j
  %w = load i32, i32* %q
  %w64 = zext i32 %w to i64
  %jw = mul i64 %w64, %j
  %s1 = add i64 %s, %jw
  %j1 = add i64 %j, 1
  %m = icmp ult i64 %j1, %n
  br i1 %m, label %sum, label %out
out:
  %first = load i32, i32* %arr
  %pmid = getelementptr i32, i32* %arr, i64 2500
  %mid = load i32, i32* %pmid
  %plast = getelementptr i32, i32* %arr, i64 4999
  %last = load i32, i32* %plast
  %buf = call i8* @malloc(i64 128)
  %f = getelementptr [24 x i8], [24 x i8]* @fmt, i64 0, i64 0
  call i32 (i8*, i64, i8*, ...) @snprintf(i8* %buf, i64 128, i8* %f, i32 %first, i32 %mid, i32 %last, i64 %s1)
  call i32 @puts(i8* %buf)
  call void @free(i8* %buf)
  call void @free(i8* %raw)
  %wd = getelementptr [14 x i8], [14 x i8]* @word, i64 0, i64 0
  %len = call i64 @strlen(i8* %wd)
  %lf = getelementptr [12 x i8], [12 x i8]* @lenfmt, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %lf, i64 %len)
  ret i32 3
}
