/* api/progs/cxx_operators.h — the mangled names of every operator new and
 * delete libstdc++ exports (plain and array; nothrow, aligned and sized
 * forms), all of which tide defines.  tests/api/cxx.c (C) and
 * progs/cxx_ops.cc (C++) check that each one resolves to libtide;
 * tests/api/exports.sh reads the quoted names from this file and checks
 * that libtide.so exports them.  Keep one quoted name per entry. */
#ifndef CXX_OPERATORS_H
#define CXX_OPERATORS_H

#define CXX_OPERATOR_NAMES                                                                              \
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",            \
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t", \
    "_ZdlPv", "_ZdaPv", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvm", "_ZdaPvm",          \
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",           \
    "_ZdaPvSt11align_val_tRKSt9nothrow_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t"

#endif
