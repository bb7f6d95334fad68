/* unwind.c — the call-stack unwinder: libgcc's _Unwind_Backtrace, found at
 * run time instead of linked, so that a process that asks for no stack
 * does not load libgcc_s.so.1 (80 KiB or so of resident memory in every
 * program that preloads tide; docs/benchmarks.md).
 *
 * Stacks are taken by the profiler (prof=1), the leak checker
 * (leak_check), guarded sampling (guard) and the misuse report of a
 * foreign pointer ("free called from ...").  The unwinder's three entry
 * points that every stack needs, and the two that the leak check's frame
 * at exit needs (_Unwind_GetCFA, _Unwind_GetGR: leak.c), are found:
 *   - linked, when the program has one of its own: weak references, which
 *     a static link with libgcc_eh (a C++ program) fills in, and which
 *     libtide.so binds when libgcc_s.so.1 is loaded before it;
 *   - at process init (the first malloc), when an option wants stacks, in
 *     a libgcc_s.so.1 that is loaded already (a C++ program, or any library
 *     that needs it), by reading its dynamic symbol table (glibc.c): that
 *     enters the dynamic loader no further than dl_iterate_phdr, as the
 *     unwinder itself does, and allocates nothing;
 *   - else at tide's constructor, with dlopen.  Not at init: the first
 *     malloc may come from inside the loader (a dlopen half done, whose
 *     state a nested dlopen breaks: glibc asserts), while a constructor
 *     runs where dlopen is allowed (from _dl_init, or a static program's
 *     start-up).  A sample taken before tide's constructor in a process
 *     without libgcc_s (another library's constructor in a C program) has
 *     no stack, and counts as dropped;
 *   - in the misuse report, which aborts anyway: found as at init, else
 *     loaded with dlopen unless the loader is in the middle of a change
 *     (_r_debug.r_state is not RT_CONSISTENT: this thread or another is
 *     inside a dlopen or dlclose).  Without it the report names no caller.
 * A static program (no libc.so.6 loaded) never dlopens: what it links is
 * what it has.
 *
 * The pointers are stored once found (the same values by any thread that
 * finds them), the backtrace last with release, and read with acquire: a
 * reader that sees it sees the others.  The last two may be missing (an
 * unwinder without them): only the leak check's frame at exit goes
 * without. */
#include <dlfcn.h>
#include <link.h>

#include "tide_internal.h"

#define LIBGCC_S "libgcc_s.so.1"

/* Weak: never a dependency (libtide.so needs no libgcc_s, and a program
 * linked with libtide.a pulls no unwinder in for tide). */
extern _Unwind_Reason_Code _Unwind_Backtrace(_Unwind_Trace_Fn, void *) __attribute__((weak));
extern _Unwind_Ptr _Unwind_GetIP(struct _Unwind_Context *) __attribute__((weak));
extern _Unwind_Ptr _Unwind_GetRegionStart(struct _Unwind_Context *) __attribute__((weak));
extern _Unwind_Word _Unwind_GetCFA(struct _Unwind_Context *) __attribute__((weak));
extern _Unwind_Word _Unwind_GetGR(struct _Unwind_Context *, int) __attribute__((weak));

_Atomic(tidei_unwind_backtrace_fn) tidei_unwind_bt;
_Atomic(tidei_unwind_ctx_fn) tidei_unwind_get_ip;
_Atomic(tidei_unwind_ctx_fn) tidei_unwind_get_start;
_Atomic(tidei_unwind_word_fn) tidei_unwind_get_cfa;
_Atomic(tidei_unwind_reg_fn) tidei_unwind_get_gr;
static _Atomic bool unwind_failed;   /* dlopen or dlsym failed: not tried again */

/* The entry points, in the order unwind_set takes them; names in an array
 * of arrays, which the loader need not relocate. */
enum { UW_BACKTRACE, UW_GET_IP, UW_GET_START, UW_GET_CFA, UW_GET_GR, UW_N };
static const char unwind_names[UW_N][24] = { "_Unwind_Backtrace", "_Unwind_GetIP", "_Unwind_GetRegionStart",
                                             "_Unwind_GetCFA", "_Unwind_GetGR" };

/* Publishes the entry points if the first three are there. */
static bool unwind_set(void *const fn[UW_N])
{
    if (!fn[UW_BACKTRACE] || !fn[UW_GET_IP] || !fn[UW_GET_START])
        return false;
    atomic_store_explicit(&tidei_unwind_get_ip, (tidei_unwind_ctx_fn)fn[UW_GET_IP], relaxed);
    atomic_store_explicit(&tidei_unwind_get_start, (tidei_unwind_ctx_fn)fn[UW_GET_START], relaxed);
    atomic_store_explicit(&tidei_unwind_get_cfa, (tidei_unwind_word_fn)fn[UW_GET_CFA], relaxed);
    atomic_store_explicit(&tidei_unwind_get_gr, (tidei_unwind_reg_fn)fn[UW_GET_GR], relaxed);
    atomic_store_explicit(&tidei_unwind_bt, (tidei_unwind_backtrace_fn)fn[UW_BACKTRACE], release);
    return true;
}

/* unwind_set with each entry point looked up by name in from: a loaded
 * libgcc_s.so.1's dynamic symbol table (from NULL) or dlopen's handle. */
static bool unwind_set_by_name(void *from)
{
    void *fn[UW_N];
    for (int i = 0; i < UW_N; i++)
        fn[i] = from ? dlsym(from, unwind_names[i]) : tidei_glibc_loaded_function(LIBGCC_S, unwind_names[i]);
    return unwind_set(fn);
}

/* The unwinder if the process has one: linked, or in a loaded
 * libgcc_s.so.1.  Enters the loader no further than dl_iterate_phdr. */
static bool unwind_find(void)
{
    if (atomic_load_explicit(&tidei_unwind_bt, acquire))
        return true;
    void *linked[UW_N] = { (void *)_Unwind_Backtrace, (void *)_Unwind_GetIP, (void *)_Unwind_GetRegionStart,
                           (void *)_Unwind_GetCFA, (void *)_Unwind_GetGR };
    return unwind_set(linked) || unwind_set_by_name(NULL);
}

/* unwind_find, else libgcc_s.so.1 loaded with dlopen (which mallocs), in
 * a dynamically linked program.  Only where the loader may be entered.
 * errno is kept. */
static bool unwind_load(void)
{
    if (unwind_find())
        return true;
    if (atomic_load_explicit(&unwind_failed, relaxed) || !tidei_glibc_loaded("libc.so.6"))
        return false;
    int e = errno;
    bool ok = false;
    void *h = dlopen(LIBGCC_S, RTLD_NOW | RTLD_LOCAL);  /* never closed */
    if (h)
        ok = unwind_set_by_name(h);
    if (!ok) {
        atomic_store_explicit(&unwind_failed, true, relaxed);
        if (tidei_opt.verbose)
            tidei_warn("tide: no unwinder (" LIBGCC_S "): stacks are left empty\n");
    }
    errno = e;
    return ok;
}

tide_cold void tidei_unwind_init(bool wanted)
{
    if (wanted)
        unwind_find();
}

tide_cold void tidei_unwind_load(bool wanted)
{
    if (wanted)
        unwind_load();
}

bool tidei_unwind_for_report(void)
{
    if (unwind_find())
        return true;
    if (__atomic_load_n(&_r_debug.r_state, __ATOMIC_RELAXED) != RT_CONSISTENT)
        return false;
    return unwind_load();
}
