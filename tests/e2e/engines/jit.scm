;; jit.scm - Guile 3's JIT: N generated procedures, each compiled to
;; bytecode and run hot, so that the JIT (and the compiler's own code, JIT
;; compiled as it runs) makes a few MiB of machine code in its RWX chunks.
;; Prints the sum; with "wait", then "pid P", and waits for a line on stdin
;; (tests/e2e/engines_more.sh reads its smaps meanwhile).
(use-modules (system base compile) (ice-9 rdelim))
(define args (command-line))
(define n (if (> (length args) 1) (string->number (cadr args)) 40))
(define (make-f j)
  (compile `(lambda (k)
              (let loop ((i 0) (s 0))
                (if (= i k)
                    s
                    (loop (+ i 1)
                          (logxor (+ s (* (modulo i ,(+ 2 (modulo j 7))) ,j))
                                  (ash i ,(- (modulo j 5))))))))
           #:env (current-module)))
(define fs (map make-f (iota n)))
(define total 0)
(do ((r 0 (+ r 1))) ((= r 3))
  (for-each (lambda (f) (set! total (+ total (f 3000)))) fs))
(display total)
(newline)
(when (and (> (length args) 2) (string=? (caddr args) "wait"))
  (format #t "pid ~a~%" (getpid))
  (force-output)
  (read-line))
