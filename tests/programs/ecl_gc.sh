# tests/programs/ecl_gc.sh — Debian's ecl (Embeddable Common Lisp, libecl
# linked against Boehm's libgc: threads made through GC_pthread_create, its
# own root pusher in GC_push_other_roots with GC_set_mark_bit on its Lisp
# stacks, finalizers, weak hash tables through disappearing links) compiles
# a Lisp program to native code and runs it on the system libgc and under
# `tide-run --gc`: two threads build and check binary trees, a weak hash
# table keeps a referenced value and loses dropped ones, a finalizer runs.
# The outputs must be identical and nothing may bind to the system libgc.
# th-timeout: 600
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=ecl-gc

need "$name" ecl || exit 0
pt_build_usable "$name" || exit 0
[ -f "$BUILD/libgc.so.1" ] || { fail "$name" "$BUILD/libgc.so.1 not built"; exit 0; }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cat >"$T/trees.lisp" <<'LISP'
(defun make-tree (d)
  (declare (fixnum d))
  (if (= d 0) (cons nil nil) (cons (make-tree (1- d)) (make-tree (1- d)))))
(defun check-tree (n)
  (if (car n) (+ 1 (check-tree (car n)) (check-tree (cdr n))) 1))
(defun work (id)
  (let ((long (make-tree 16)) (sum 0))
    (dotimes (i 200) (incf sum (check-tree (make-tree 12))))
    (list id sum (check-tree long))))
(defun main ()
  (let* ((threads (loop for i below 2
                        collect (let ((i i)) (mp:process-run-function (format nil "w~a" i) (lambda () (work i))))))
         (results (mapcar #'mp:process-join threads)))
    (format t "trees ~a~%" results))
  (let ((h (make-hash-table :weakness :value)) (keep (list 1 2 3)))
    (setf (gethash 0 h) keep)
    (dotimes (i 1000) (setf (gethash (+ i 1) h) (list i)))
    (dotimes (i 3) (si:gc t))
    (format t "weak kept ~a, dropped most ~a~%" (gethash 0 h) (< (hash-table-count h) 500)))
  (let ((n 0))
    (dotimes (i 100) (ext:set-finalizer (list i) (lambda (o) (declare (ignore o)) (incf n))))
    (dotimes (i 3) (si:gc t) (make-tree 10))
    (format t "finalizers ran ~a~%" (> n 50))))
(main)
LISP
( cd "$T" && timeout "$PT_LIMIT" ecl --norc --eval '(progn (compile-file "trees.lisp" :output-file "trees.fas") (quit))' ) \
    >"$T/compile.log" 2>&1 || { fail "$name" "ecl could not compile the program: $(tail -n 3 "$T/compile.log" | tr '\n' '|')"; exit 0; }
timeout "$PT_LIMIT" ecl --norc --load "$T/trees.fas" --eval '(quit)' >"$T/sys.out" 2>"$T/sys.err"
rc=$?
[ $rc -eq 0 ] || { fail "$name" "ecl on the system libgc: exit $rc: $(head -c 300 "$T/sys.err")"; exit 0; }
timeout "$PT_LIMIT" env LD_DEBUG=bindings LD_DEBUG_OUTPUT="$T/bind" "$TIDE_RUN" --gc \
    ecl --norc --load "$T/trees.fas" --eval '(quit)' >"$T/tide.out" 2>"$T/tide.err"
rc=$?
[ $rc -eq 0 ] || { fail "$name" "ecl under tide-run --gc: exit $rc: $(head -c 300 "$T/tide.err")"; exit 0; }
grep -q "^trees ((0 " "$T/sys.out" || { fail "$name" "unexpected output on libgc: $(head -c 200 "$T/sys.out")"; exit 0; }
cmp -s "$T/sys.out" "$T/tide.out" || { fail "$name" "outputs differ: $(diff "$T/sys.out" "$T/tide.out" | head -n 4 | tr '\n' '|')"; exit 0; }
cat "$T"/bind.* >"$T/bindings" 2>/dev/null
if grep -E "to /(usr/)?lib/[^ ]*libgc\.so" "$T/bindings" >/dev/null; then
    fail "$name" "a symbol bound to the system libgc: $(grep -E "to /(usr/)?lib/[^ ]*libgc\.so" "$T/bindings" | head -n 1)"
    exit 0
fi
grep -q "normal symbol \`GC_pthread_create'" "$T/bindings" || { fail "$name" "libecl's GC_pthread_create not bound"; exit 0; }
pass "$name"
