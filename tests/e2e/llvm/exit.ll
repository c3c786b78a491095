; exit.ll - the arguments (argv[0] is the module's path, as lli gives it),
; and exit() called deep in JIT-compiled code with output still buffered:
; status 5 plus the number of arguments.
@argfmt = private constant [13 x i8] c"argv[%d] %s\0A\00"
@tail = private constant [19 x i8] c"leaving without \5Cn\00"

declare i32 @printf(i8*, ...)
declare void @exit(i32)

define void @leave(i32 %depth, i32 %code) {
  %z = icmp eq i32 %depth, 0
  br i1 %z, label %now, label %deeper
now:
  %t = getelementptr [19 x i8], [19 x i8]* @tail, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %t)
  call void @exit(i32 %code)
  unreachable
deeper:
  %d1 = sub i32 %depth, 1
  call void @leave(i32 %d1, i32 %code)
  ret void
}

define i32 @main(i32 %argc, i8** %argv) {
entry:
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %loop ]
  %p = getelementptr i8*, i8** %argv, i32 %i
  %a = load i8*, i8** %p
  %f = getelementptr [13 x i8], [13 x i8]* @argfmt, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %f, i32 %i, i8* %a)
  %i1 = add i32 %i, 1
  %more = icmp slt i32 %i1, %argc
  br i1 %more, label %loop, label %done
done:
  %code = add i32 %argc, 4
  call void @leave(i32 50, i32 %code)
  ret i32 0
}
