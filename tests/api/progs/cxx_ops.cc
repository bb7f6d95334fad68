// cxx_ops.cc — a C++ program on tide's operator new and delete (run by
// tests/api/cxx_ops.sh, linked with libtide.so or preloaded by tide-run).
// Prints PASS/FAIL/SKIP lines like the C tests.  tide's API is reached with
// dlsym, so the same source runs linked with tide or not.
//   cxx_ops              the tests
//   cxx_ops wrong-size   deletes a 48-byte object with the size 100: a debug
//                        build of tide reports it and aborts
//   cxx_ops wrong-align  deletes a block of new(100, align 64) as aligned to
//                        8192: the same
#include <dlfcn.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "tide.h"
#include "cxx_operators.h"

static int fails;           // failed checks in the running test
static char reason[400];    // the first one

__attribute__((format(printf, 3, 4))) static void fail_at(const char *file, int line, const char *fmt, ...)
{
    if (fails++)
        return;
    int k = snprintf(reason, sizeof reason, "%s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason + k, sizeof reason - (size_t)k, fmt, ap);
    va_end(ap);
}

#define CHECK(expr, ...)                            \
    do {                                            \
        if (!(expr))                                \
            fail_at(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)

static void run(const char *name, void (*fn)())
{
    fails = 0;
    reason[0] = 0;
    fn();
    if (fails)
        printf("FAIL %s: %s%s\n", name, reason, fails > 1 ? " (and more failed checks)" : "");
    else
        printf("PASS %s\n", name);
    fflush(stdout);
}
#define RUN(fn) run(#fn, fn)

static decltype(&tide_block_info) block_info;  // tide's, or nullptr

// Whether p is the start of a live tide block of at least n bytes.
static bool is_tide_block(const void *p, size_t n)
{
    struct tide_block_info bi;
    return block_info && p && block_info(p, &bi) == TIDE_BLOCK_LIVE && bi.block.ptr == p &&
           bi.block.size >= n;
}

static const char *object_of(const char *sym)
{
    void *f = dlsym(RTLD_DEFAULT, sym);
    Dl_info di;
    if (!f || !dladdr(f, &di) || !di.dli_fname)
        return "?";
    return di.dli_fname;
}

// Every operator libstdc++ has is tide's in this process.
static void operators_are_tides()
{
    static const char *const names[] = { CXX_OPERATOR_NAMES };
    CHECK(block_info != nullptr, "tide_block_info not found: not running on tide");
    for (const char *n : names) {
        const char *obj = object_of(n);
        CHECK(strstr(obj, "libtide") != nullptr, "%s comes from %s, not libtide", n, obj);
    }
}

struct Small { char c[16]; };
struct Medium { char c[48]; ~Medium() { c[0] = 0; } };
struct alignas(64) Al64 { char c[100]; };
struct alignas(4096) AlPage { char c[5000]; };

// Every form, as the compiler emits it or as a program calls it.
static void every_form()
{
    Small *s = new Small;                       // _Znwm
    CHECK(is_tide_block(s, sizeof *s), "new Small = %p", (void *)s);
    delete s;                                   // _ZdlPvm (sized)
    Medium *m = new Medium[7];                  // _Znam (with an array cookie)
    CHECK(is_tide_block(reinterpret_cast<char *>(m) - 8, 7 * sizeof(Medium)), "new Medium[7] = %p", (void *)m);
    delete[] m;                                 // _ZdaPvm
    int *a = new int[1000];                     // _Znam
    CHECK(is_tide_block(a, 4000), "new int[1000] = %p", (void *)a);
    delete[] a;                                 // _ZdaPv
    Small *sn = new (std::nothrow) Small;       // _ZnwmRKSt9nothrow_t
    CHECK(is_tide_block(sn, sizeof *sn), "new (nothrow) Small = %p", (void *)sn);
    delete sn;
    int *an = new (std::nothrow) int[300000];   // _ZnamRKSt9nothrow_t: a large block
    CHECK(is_tide_block(an, 1200000), "new (nothrow) int[300000] = %p", (void *)an);
    delete[] an;
    Al64 *x = new Al64;                         // _ZnwmSt11align_val_t
    CHECK(is_tide_block(x, sizeof *x) && (uintptr_t)x % 64 == 0, "new Al64 = %p", (void *)x);
    delete x;                                   // _ZdlPvmSt11align_val_t
    AlPage *y = new AlPage[3];                  // _ZnamSt11align_val_t
    CHECK(is_tide_block(y, 3 * sizeof *y) && (uintptr_t)y % 4096 == 0, "new AlPage[3] = %p", (void *)y);
    delete[] y;                                 // _ZdaPvmSt11align_val_t or _ZdaPvSt11align_val_t
    Al64 *xn = new (std::nothrow) Al64;         // _ZnwmSt11align_val_tRKSt9nothrow_t
    CHECK(is_tide_block(xn, sizeof *xn) && (uintptr_t)xn % 64 == 0, "new (nothrow) Al64 = %p", (void *)xn);
    delete xn;
    Al64 *xa = new (std::nothrow) Al64[5];      // _ZnamSt11align_val_tRKSt9nothrow_t
    CHECK(is_tide_block(xa, 5 * sizeof *xa) && (uintptr_t)xa % 64 == 0, "new (nothrow) Al64[5] = %p", (void *)xa);
    delete[] xa;
    // the explicit calls, each new form with each matching delete form
    void *p = ::operator new(24);
    ::operator delete(p);                       // _ZdlPv
    p = ::operator new[](24);
    ::operator delete[](p, std::nothrow);       // _ZdaPvRKSt9nothrow_t
    p = ::operator new(24, std::nothrow);
    ::operator delete(p, std::nothrow);         // _ZdlPvRKSt9nothrow_t
    p = ::operator new(24);
    ::operator delete(p, 24);                   // _ZdlPvm
    p = ::operator new[](24);
    ::operator delete[](p, 24);                 // _ZdaPvm
    p = ::operator new(300, std::align_val_t(256));
    CHECK(is_tide_block(p, 300) && (uintptr_t)p % 256 == 0, "operator new(300, align 256) = %p", p);
    ::operator delete(p, std::align_val_t(256));            // _ZdlPvSt11align_val_t
    p = ::operator new[](300, std::align_val_t(256));
    ::operator delete[](p, std::align_val_t(256));          // _ZdaPvSt11align_val_t
    p = ::operator new(300, std::align_val_t(256), std::nothrow);
    ::operator delete(p, std::align_val_t(256), std::nothrow);    // _ZdlPvSt11align_val_tRKSt9nothrow_t
    p = ::operator new[](300, std::align_val_t(256), std::nothrow);
    ::operator delete[](p, std::align_val_t(256), std::nothrow);  // _ZdaPvSt11align_val_tRKSt9nothrow_t
    p = ::operator new(300, std::align_val_t(256));
    ::operator delete(p, 300, std::align_val_t(256));       // _ZdlPvmSt11align_val_t
    p = ::operator new[](300, std::align_val_t(256));
    ::operator delete[](p, 300, std::align_val_t(256));     // _ZdaPvmSt11align_val_t
    // new and malloc are one allocator: each frees the other's blocks
    p = ::operator new(1000);
    free(p);
    p = malloc(1000);
    ::operator delete(p);
    // zero bytes: distinct blocks
    void *z1 = ::operator new(0), *z2 = ::operator new(0);
    CHECK(z1 && z2 && z1 != z2, "operator new(0) twice: %p %p", z1, z2);
    ::operator delete(z1);
    ::operator delete(z2);
}

// Aligned forms honour every power-of-two alignment, for every size range.
static void aligned_forms()
{
    static const size_t sizes[] = { 1, 100, 5000, 100000, 3 << 20, 6 << 20 };
    for (size_t al = 16; al <= ((size_t)4 << 20); al *= 4) {
        for (size_t n : sizes) {
            void *p = ::operator new(n, std::align_val_t(al));
            CHECK(is_tide_block(p, n) && (uintptr_t)p % al == 0, "operator new(%zu, align %zu) = %p", n, al, p);
            memset(p, 0x5a, n);
            ::operator delete(p, n, std::align_val_t(al));
            p = ::operator new[](n, std::align_val_t(al), std::nothrow);
            CHECK(is_tide_block(p, n) && (uintptr_t)p % al == 0, "operator new[](%zu, align %zu, nothrow) = %p", n,
                  al, p);
            ::operator delete[](p, std::align_val_t(al));
        }
    }
    // what libstdc++ does with an alignment that is not a power of two
    void *p = ::operator new(100, std::align_val_t(48), std::nothrow);
    CHECK(p == nullptr, "operator new(100, align 48, nothrow) = %p", p);
    bool threw = false;
    try {
        p = ::operator new(100, std::align_val_t(48));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "operator new(100, align 48) did not throw std::bad_alloc");
}

static const size_t impossible = (size_t)1 << 62;
static int handler_calls;

// With no memory: the new handler is called, then (none left) bad_alloc.
static void new_handler_then_bad_alloc()
{
    for (int form = 0; form < 3; form++) {
        handler_calls = 0;
        std::set_new_handler([] {
            handler_calls++;
            std::set_new_handler(nullptr);
        });
        bool threw = false;
        try {
            void *p = form == 0 ? ::operator new(impossible)
                      : form == 1 ? ::operator new[](impossible)
                                  : ::operator new(impossible, std::align_val_t(128));
            CHECK(false, "form %d: operator new of 2^62 bytes returned %p", form, p);
        } catch (const std::bad_alloc &) {
            threw = true;
        }
        CHECK(threw && handler_calls == 1, "form %d: threw %d after %d handler calls (want bad_alloc after 1)", form,
              threw, handler_calls);
    }
    std::set_new_handler(nullptr);
}

// The nothrow forms: NULL with no handler; with a handler, the handler is
// called first; a handler that throws bad_alloc makes them return NULL.
static void nothrow_forms()
{
    std::set_new_handler(nullptr);
    CHECK(::operator new(impossible, std::nothrow) == nullptr, "nothrow new of 2^62 bytes");
    CHECK(::operator new[](impossible, std::nothrow) == nullptr, "nothrow new[] of 2^62 bytes");
    CHECK(::operator new(impossible, std::align_val_t(64), std::nothrow) == nullptr, "aligned nothrow new");
    CHECK((new (std::nothrow) char[impossible]) == nullptr, "new (nothrow) char[2^62]");
    for (int form = 0; form < 2; form++) {
        handler_calls = 0;
        std::set_new_handler([] {
            handler_calls++;
            std::set_new_handler(nullptr);
        });
        void *p = form ? ::operator new(impossible, std::align_val_t(64), std::nothrow)
                       : ::operator new(impossible, std::nothrow);
        CHECK(p == nullptr && handler_calls == 1, "form %d: nothrow new = %p after %d handler calls (want NULL after 1)",
              form, p, handler_calls);
        handler_calls = 0;
        std::set_new_handler([] {
            handler_calls++;
            throw std::bad_alloc();
        });
        p = form ? ::operator new[](impossible, std::align_val_t(64), std::nothrow)
                 : ::operator new[](impossible, std::nothrow);
        CHECK(p == nullptr && handler_calls == 1, "form %d: nothrow new with a throwing handler = %p after %d calls",
              form, p, handler_calls);
    }
    std::set_new_handler(nullptr);
}

// A handler that frees memory makes the retry succeed: the address space
// is capped (RLIMIT_AS) so that a 200 MiB block does not fit until the
// handler frees a 256 MiB reserve (which tide's huge cache then serves).
static void *reserve;

static long vm_bytes()
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = -1;
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1)
            pages = -1;
        fclose(f);
    }
    return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

static void handler_makes_room()
{
    reserve = malloc(256 << 20);
    long vm = vm_bytes();
    struct rlimit old, lim;
    if (!reserve || vm < 0 || getrlimit(RLIMIT_AS, &old) != 0) {
        CHECK(false, "setup: reserve %p, vm %ld", reserve, vm);
        return;
    }
    lim = old;
    lim.rlim_cur = (rlim_t)vm + (128 << 20);
    if (setrlimit(RLIMIT_AS, &lim) != 0) {
        CHECK(false, "setrlimit: %s", strerror(errno));
        return;
    }
    handler_calls = 0;
    std::set_new_handler([] {
        handler_calls++;
        free(reserve);
        reserve = nullptr;
        std::set_new_handler(nullptr);
    });
    void *p = nullptr;
    try {
        p = ::operator new(200 << 20);
    } catch (const std::bad_alloc &) {
    }
    setrlimit(RLIMIT_AS, &old);
    std::set_new_handler(nullptr);
    CHECK(p != nullptr && handler_calls == 1, "operator new(200 MiB) = %p after %d handler calls (want a block "
          "after 1)", p, handler_calls);
    ::operator delete(p);
    free(reserve);
}

// The standard library's containers on tide.
static void containers()
{
    std::map<std::string, std::vector<int>> m;
    for (int i = 0; i < 20000; i++)
        m[std::to_string(i % 977)].push_back(i);
    size_t total = 0;
    for (auto &kv : m)
        total += kv.second.size();
    CHECK(total == 20000 && m.size() == 977, "map of vectors: %zu elements in %zu keys", total, m.size());
    auto big = std::make_unique<char[]>(20 << 20);  // zero-filled (value-initialised)
    bool zero = true;
    for (size_t i = 0; i < (20 << 20); i += 4096)
        zero &= big[i] == 0;
    CHECK(zero, "make_unique<char[]>(20 MiB) not zero");
    memset(big.get(), 1, 20 << 20);
    big.reset();
    auto again = std::make_unique<char[]>(20 << 20);  // the freed buffer again: still zero
    zero = true;
    for (size_t i = 0; i < (20 << 20); i += 512)
        zero &= again[i] == 0;
    CHECK(zero, "make_unique<char[]>(20 MiB) after a freed 20 MiB buffer not zero");
}

int main(int argc, char **argv)
{
    block_info = reinterpret_cast<decltype(&tide_block_info)>(dlsym(RTLD_DEFAULT, "tide_block_info"));
    if (argc == 2 && strcmp(argv[1], "wrong-size") == 0) {
        Medium *m = new Medium;
        ::operator delete(m, 100);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "wrong-align") == 0) {
        void *p = ::operator new(100, std::align_val_t(64));
        if ((uintptr_t)p % 8192 == 0)  // by chance aligned more: make it not so
            p = ::operator new(100, std::align_val_t(64));
        ::operator delete(p, std::align_val_t(8192));
        return 0;
    }
    RUN(operators_are_tides);
    RUN(every_form);
    RUN(aligned_forms);
    RUN(new_handler_then_bad_alloc);
    RUN(nothrow_forms);
    RUN(handler_makes_room);
    RUN(containers);
    return 0;
}
