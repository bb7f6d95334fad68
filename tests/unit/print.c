/* unit/print.c — tide's own printf (print.c), which never allocates: every
 * conversion it supports gives what the C library's printf gives (except
 * %p of NULL, "0x0"), long output is not cut, errno is kept, and the misuse
 * report is one line `tide: OP(0xADDR): WHAT` followed by abort(). */
#include "unit.h"

#include <limits.h>

/* What tidei_printf(fd, fmt, ...) writes, through a temporary file. */
static char got[16384];
#define TPRINTF(...) do { \
        FILE *tmp_ = tmpfile(); \
        tidei_printf(fileno(tmp_), __VA_ARGS__); \
        rewind(tmp_); \
        size_t k_ = fread(got, 1, sizeof got - 1, tmp_); \
        got[k_] = 0; \
        fclose(tmp_); \
    } while (0)

/* Formats with both tidei_printf and snprintf and compares. */
#define SAME(...) do { \
        char want_[4096]; \
        snprintf(want_, sizeof want_, __VA_ARGS__); \
        TPRINTF(__VA_ARGS__); \
        CHECKF(strcmp(got, want_) == 0, "format %s: tide printed \"%s\", printf \"%s\"", #__VA_ARGS__, got, want_); \
    } while (0)

static void conversions(void)
{
    SAME("plain text");
    SAME("%s|%s|%s", "a", "", "hello world");
    SAME("%d %d %d %d %d", 0, 1, -1, INT_MAX, INT_MIN);
    SAME("%ld %ld %ld %ld", 0L, -123456789012L, LONG_MAX, LONG_MIN + 1);
    SAME("%u %u %u", 0u, 42u, UINT_MAX);
    SAME("%lu %lu", 0UL, ULONG_MAX);
    SAME("%zu %zu %zu", (size_t)0, (size_t)4096, SIZE_MAX);
    SAME("%x %x %x", 0u, 0xdeadbeefu, UINT_MAX);
    SAME("%lx %lx", 0x123456789abcdefUL, ULONG_MAX);
    SAME("%zx", (size_t)0x7fffffffffffULL);
    SAME("%c%c%c", 'a', '%', 'z');
    SAME("100%% %%d");
    SAME("%p %p", (void *)0x1234, (void *)0x7f0123456789);
    SAME("%d%s%x", -7, "mid", 255u);
    SAME("a%sb%dc", "", 0);
}

/* Deliberately odd formats below. */
#pragma GCC diagnostic ignored "-Wformat"
#pragma GCC diagnostic ignored "-Wformat-overflow"
#pragma GCC diagnostic ignored "-Wformat-extra-args"

/* The edges: LONG_MIN, NULL string and pointer, an unknown conversion, a
 * trailing '%'. */
static void edges(void)
{
    TPRINTF("%ld", LONG_MIN);
    CHECKF(strcmp(got, "-9223372036854775808") == 0, "%%ld of LONG_MIN printed \"%s\"", got);
    TPRINTF("%s", (const char *)NULL);
    CHECKF(strcmp(got, "(null)") == 0, "%%s of NULL printed \"%s\"", got);
    TPRINTF("%p", (void *)NULL);
    CHECKF(strcmp(got, "0x0") == 0, "%%p of NULL printed \"%s\"", got);
    TPRINTF("x%qy");
    CHECKF(strcmp(got, "x%qy") == 0, "unknown conversion printed \"%s\"", got);
    TPRINTF("end%");
    CHECKF(strcmp(got, "end") == 0, "trailing %% printed \"%s\"", got);
}

/* Output longer than the 512-byte buffer arrives whole and in order. */
static void long_output(void)
{
    static char big[6000];
    for (size_t i = 0; i < sizeof big - 1; i++) big[i] = (char)('a' + i % 26);
    big[sizeof big - 1] = 0;
    TPRINTF("<%s>%d<%s>", big, 12345, big);
    char *want = malloc(2 * sizeof big + 32);
    snprintf(want, 2 * sizeof big + 32, "<%s>%d<%s>", big, 12345, big);
    CHECKF(strlen(got) == strlen(want), "printed %zu bytes, want %zu", strlen(got), strlen(want));
    CHECK(strcmp(got, want) == 0);
    free(want);
}

/* errno is the same after a print (tide prints from inside malloc, whose
 * errno the caller reads). */
static void keeps_errno(void)
{
    errno = ENOMEM;
    TPRINTF("%d %s", 5, "x");
    CHECK(errno == ENOMEM);
    errno = 0;
    tidei_printf(-1, "to a bad fd %d\n", 1);   /* write fails with EBADF */
    CHECKF(errno == 0, "errno %d after a failed write", errno);
}

static void misuse_child(void *arg)
{
    (void)arg;
    tidei_misuse("free", (void *)0x7f00deadbee0ull, "interior pointer (block %p of %zu bytes)", (void *)0x7f00deadbe00ull,
                 (size_t)512);
}

static void fatal_child(void *arg)
{
    (void)arg;
    tidei_fatal("tide: internal error: %s at %d\n", "x", 7);
}

/* tidei_misuse writes one line `tide: OP(0xADDR): WHAT` and aborts;
 * tidei_fatal writes its message and aborts. */
static void misuse_and_fatal(void)
{
    char err[1024], sb[64];
    int st = unit_capture_child(misuse_child, NULL, err, sizeof err);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "tidei_misuse: child %s", th_status_str(st, sb, sizeof sb));
    CHECKF(strcmp(err, "tide: free(0x7f00deadbee0): interior pointer (block 0x7f00deadbe00 of 512 bytes)\n") == 0,
           "tidei_misuse printed \"%s\"", err);
    st = unit_capture_child(fatal_child, NULL, err, sizeof err);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "tidei_fatal: child %s", th_status_str(st, sb, sizeof sb));
    CHECKF(strcmp(err, "tide: internal error: x at 7\n") == 0, "tidei_fatal printed \"%s\"", err);
}

int main(void)
{
    RUN(conversions);
    RUN(edges);
    RUN(long_output);
    RUN(keeps_errno);
    RUN(misuse_and_fatal);
    return th_summary();
}
