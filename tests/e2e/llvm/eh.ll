; eh.ll - C++ exceptions thrown and caught in JIT-compiled code: the
; unwinder needs the exception frames registered where the code runs.
@_ZTIi = external constant i8*
@fmt = private constant [17 x i8] c"caught %d of %d\0A\00"

declare i8* @__cxa_allocate_exception(i64)
declare void @__cxa_throw(i8*, i8*, i8*)
declare i32 @__gxx_personality_v0(...)
declare i8* @__cxa_begin_catch(i8*)
declare void @__cxa_end_catch()
declare i32 @printf(i8*, ...)

define void @thrower(i32 %v) {
  %odd = and i32 %v, 1
  %t = icmp eq i32 %odd, 1
  br i1 %t, label %throw, label %ok
ok:
  ret void
throw:
  %e = call i8* @__cxa_allocate_exception(i64 4)
  %p = bitcast i8* %e to i32*
  store i32 %v, i32* %p
  call void @__cxa_throw(i8* %e, i8* bitcast (i8** @_ZTIi to i8*), i8* null)
  unreachable
}

define void @middle(i32 %v) {
  call void @thrower(i32 %v)
  ret void
}

define i32 @catcher(i32 %v) personality i8* bitcast (i32 (...)* @__gxx_personality_v0 to i8*) {
entry:
  invoke void @middle(i32 %v) to label %cont unwind label %lpad
cont:
  ret i32 0
lpad:
  %lp = landingpad { i8*, i32 } catch i8* bitcast (i8** @_ZTIi to i8*)
  %exn = extractvalue { i8*, i32 } %lp, 0
  %c = call i8* @__cxa_begin_catch(i8* %exn)
  %ip = bitcast i8* %c to i32*
  %val = load i32, i32* %ip
  call void @__cxa_end_catch()
  %r = icmp eq i32 %val, %v
  %one = zext i1 %r to i32
  ret i32 %one
}

define i32 @main() {
entry:
  br label %loop
loop:
  %i = phi i32 [ 0, %entry ], [ %i1, %loop ]
  %n = phi i32 [ 0, %entry ], [ %n1, %loop ]
  %c = call i32 @catcher(i32 %i)
  %n1 = add i32 %n, %c
  %i1 = add i32 %i, 1
  %more = icmp slt i32 %i1, 100
  br i1 %more, label %loop, label %done
done:
  %f = getelementptr [17 x i8], [17 x i8]* @fmt, i64 0, i64 0
  call i32 (i8*, ...) @printf(i8* %f, i32 %n1, i32 %i1)
  ret i32 0
}
