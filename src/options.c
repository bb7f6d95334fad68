/* options.c — TIDE_CONF, parsed once at start-up from one table.
 *   TIDE_CONF=key=value,key=value    set options
 *   TIDE_CONF=help                   print every option with its default
 * An unknown key or a bad value gets a one-line warning that names it and
 * lists the valid keys; the rest of the string is still applied.  Parsing
 * never allocates (it runs inside the first malloc).
 *
 * Secure mode: a process with AT_SECURE set (setuid, setgid, file
 * capabilities: the environment belongs to a less privileged user) reads
 * no TIDE_CONF at all, as glibc ignores its malloc tunables there, and
 * opens no report file (print.c).
 *
 * Takes no lock: it runs once, inside process init, which any other thread
 * that enters tide meanwhile waits for (init.c). */
#include <signal.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include "tide_internal.h"

tide_options_t tidei_opt = {
    .os_fail_at = 0,
    .os_fail_from = 0,
    .huge_cache_mb = -1,         /* -1: no fixed bound, only the recent peak */
    .chunk_cache = 2,
    .shared_blocks = TIDE_SHARED_BLOCKS,
    .shared_threads = TIDE_SHARED_THREADS,
    .thp = 1,
    .thp_heap_mb = 32,
    .verbose = 0,
    .stats = 0,
    .stats_file = "",
    .stats_signal = 0,
    .decay_ms = TIDE_DECAY_MS_DEFAULT,
    .purge = 0,
    .prof = 0,
    .prof_sample = 524288,
    .prof_file = "tide.%p.heap",
    .prof_signal = 0,
    .leak_check = 0,
    .leak_file = "",
    .leak_exitcode = 23,
    .libc_alloc = 0,
    .guard = 0,
    .guard_rate = 20000,
    .guard_slots = 512,
    .guard_side = 0,
    .crash_report = 0,
    .gc_percent = 50,
    .gc_max_mb = 0,
    .gc_signal = 0,
    .gc_markers = 0,
};
bool tidei_secure;

typedef enum { OPT_INT, OPT_WORD, OPT_PATH, OPT_SIGNAL } option_kind_t;

typedef struct option_desc {
    const char *name;            /* key in TIDE_CONF */
    long *value;                 /* where the parsed value goes (INT, WORD, SIGNAL) */
    long min, max;               /* accepted range (INT) */
    const char *help;            /* one line for TIDE_CONF=help */
    option_kind_t kind;          /* INT: a decimal integer; WORD: one of words[] (value = index);
                                    PATH: a string (to path); SIGNAL: a name or number */
    const char *const *words;    /* WORD: the accepted words, NULL-terminated */
    char *path;                  /* PATH: where the string goes (TIDE_PATH_MAX bytes) */
} option_desc_t;

/* Options that turn another on when they are given. */
static const struct { long *given, *implies; } implied[] = {
    { &tidei_opt.guard_rate, &tidei_opt.guard },
};

static const char *const stats_words[] = { "0", "1", "json", NULL };
static const char *const purge_words[] = { "dontneed", "free", NULL };
static const char *const leak_words[] = { "0", "1", "full", NULL };
static const char *const libc_alloc_words[] = { "tide", "glibc", "off", NULL };
static const char *const side_words[] = { "random", "end", "start", NULL };

/* Signal names TIDE_CONF accepts (with or without SIG), besides numbers. */
static const struct { const char *name; int sig; } signal_names[] = {
    { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "HUP", SIGHUP }, { "INT", SIGINT },
    { "QUIT", SIGQUIT }, { "TERM", SIGTERM }, { "PROF", SIGPROF }, { "URG", SIGURG },
    { "WINCH", SIGWINCH }, { "PWR", SIGPWR }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
};

static const option_desc_t option_table[] = {
    { "huge_cache_mb", &tidei_opt.huge_cache_mb, -1, 1L << 20,
      "at most this many MiB of freed huge (> 4 MiB) blocks kept mapped for reuse, besides the bound of the "
      "recent peak of live huge blocks (-1: no other bound; 0: none kept)", OPT_INT, NULL, NULL },
    { "chunk_cache", &tidei_opt.chunk_cache, 0, 1L << 20,
      "fully free 8 MiB chunks kept mapped instead of unmapped", OPT_INT, NULL, NULL },
    { "shared_blocks", &tidei_opt.shared_blocks, 0, 65535,
      "a thread's first N blocks of each size class under 4 KiB come from spans all threads share; past N it gets "
      "spans of its own for the class (0: always its own)", OPT_INT, NULL, NULL },
    { "shared_threads", &tidei_opt.shared_threads, 2, 1L << 20,
      "threads take blocks from the shared spans only while at least N threads have heaps at once; a thread "
      "that needs a class while fewer do gets spans of its own for it", OPT_INT, NULL, NULL },
    { "thp", &tidei_opt.thp, 0, 1,
      "ask the kernel for transparent huge pages (madvise) in blocks of 2 MiB and more (0|1)", OPT_INT, NULL, NULL },
    { "thp_heap_mb", &tidei_opt.thp_heap_mb, 0, 1L << 30,
      "once the chunks mapped for spans and large blocks reach N MiB, each chunk mapped after asks for transparent "
      "huge pages throughout (0: never; thp=0 turns it off too)", OPT_INT, NULL, NULL },
    { "verbose", &tidei_opt.verbose, 0, 1, "print the options in force at start-up (0|1)",
      OPT_INT, NULL, NULL },
    { "decay_ms", &tidei_opt.decay_ms, -1, TIDE_DECAY_MS_MAX,
      "free pages go back to the OS after staying free this long (0: at once, -1: never)", OPT_INT, NULL, NULL },
    { "purge", &tidei_opt.purge, 0, 1,
      "how free pages go back: dontneed (RSS drops at once) or free (MADV_FREE: when the kernel needs them)",
      OPT_WORD, purge_words, NULL },
    { "stats", &tidei_opt.stats, 0, 2, "print a report of the heap at exit: 0, 1 (text) or json",
      OPT_WORD, stats_words, NULL },
    { "stats_file", NULL, 0, 0, "write that report to this file instead of stderr (%p: the pid)",
      OPT_PATH, NULL, tidei_opt.stats_file },
    { "stats_signal", &tidei_opt.stats_signal, 0, 0,
      "print the report whenever this signal arrives (SIGUSR2, USR2 or a number; 0 = off)",
      OPT_SIGNAL, NULL, NULL },
    { "prof", &tidei_opt.prof, 0, 1,
      "sample allocations and write a heap profile at exit (0|1; docs/profiling.md)", OPT_INT, NULL, NULL },
    { "prof_sample", &tidei_opt.prof_sample, 1, 1L << 40,
      "mean bytes allocated between two samples", OPT_INT, NULL, NULL },
    { "prof_file", NULL, 0, 0, "where heap profiles go (%p: the pid, %n: the dump number)",
      OPT_PATH, NULL, tidei_opt.prof_file },
    { "prof_signal", &tidei_opt.prof_signal, 0, 0,
      "write a heap profile whenever this signal arrives (0 = off)", OPT_SIGNAL, NULL, NULL },
    { "leak_check", &tidei_opt.leak_check, 0, 2,
      "report unreachable blocks at exit: 0, 1 (sampled stacks) or full (every stack)",
      OPT_WORD, leak_words, NULL },
    { "leak_file", NULL, 0, 0, "write the leak report to this file instead of stderr (%p: the pid)",
      OPT_PATH, NULL, tidei_opt.leak_file },
    { "leak_exitcode", &tidei_opt.leak_exitcode, 0, 255,
      "exit status of a process in which the leak check found leaks", OPT_INT, NULL, NULL },
    { "libc_alloc", &tidei_opt.libc_alloc, 0, 2,
      "what code that finds libc's malloc/free (RTLD_DEEPBIND, dlsym on libc) gets: tide, glibc "
      "(checked for tide's blocks) or off (glibc, unchecked; docs/compat.md)", OPT_WORD, libc_alloc_words, NULL },
    { "guard", &tidei_opt.guard, 0, 1,
      "guarded sampling: one allocation in guard_rate gets a slot between inaccessible pages; overflows and "
      "use-after-free are reported (0|1; docs/hardening.md)", OPT_INT, NULL, NULL },
    { "guard_rate", &tidei_opt.guard_rate, 1, 1L << 40,
      "one allocation in N (on average) is guarded; 1 guards every one; setting it turns guard on",
      OPT_INT, NULL, NULL },
    { "guard_slots", &tidei_opt.guard_slots, 1, 1L << 20,
      "guarded blocks live or in quarantine at once (at most vm.max_map_count / 16)", OPT_INT, NULL, NULL },
    { "guard_side", &tidei_opt.guard_side, 0, 2,
      "where a guarded block goes in its slot: random, end (overflows fault) or start (underflows fault)",
      OPT_WORD, side_words, NULL },
    { "crash_report", &tidei_opt.crash_report, 0, 1,
      "on SIGSEGV or SIGBUS, say where the address is in the heap before dying (0|1; on with guard)",
      OPT_INT, NULL, NULL },
    { "gc_percent", &tidei_opt.gc_percent, 1, 100000,
      "GC heap: collect when this percentage of the live bytes has been allocated since the last "
      "collection", OPT_INT, NULL, NULL },
    { "gc_max_mb", &tidei_opt.gc_max_mb, 0, 1L << 30,
      "GC heap: at most this many MiB (0: no limit); past it a full collection, then the OOM handler",
      OPT_INT, NULL, NULL },
    { "gc_signal", &tidei_opt.gc_signal, 0, 0,
      "GC heap: the signal that stops threads for a collection (0: SIGPWR)", OPT_SIGNAL, NULL, NULL },
    { "gc_markers", &tidei_opt.gc_markers, 0, 8,
      "GC heap: threads that mark in a collection, the collecting one included (0: one per CPU, at most 8)",
      OPT_INT, NULL, NULL },
    { "os_fail_at", &tidei_opt.os_fail_at, 0, 1L << 40,
      "testing: make the Nth request to the OS fail, once (0 = off)", OPT_INT, NULL, NULL },
    { "os_fail_from", &tidei_opt.os_fail_from, 0, 1L << 40,
      "testing: make the Nth and every later request to the OS fail (0 = off)", OPT_INT, NULL, NULL },
};
#define N_OPTIONS (sizeof option_table / sizeof option_table[0])

static void list_keys(void)
{
    tidei_warn("valid keys: help");
    for (size_t i = 0; i < N_OPTIONS; i++)
        tidei_warn(", %s", option_table[i].name);
    tidei_warn("\n");
}

/* Prints the current value of o. */
static void print_value(const option_desc_t *o)
{
    switch (o->kind) {
    case OPT_WORD: tidei_warn("%s", o->words[*o->value]); break;
    case OPT_PATH: tidei_warn("%s", o->path); break;
    default: tidei_warn("%ld", *o->value); break;
    }
}

static void print_help(void)
{
    tidei_warn("tide options (TIDE_CONF=key=value,...):\n");
    tidei_warn("  %s  %s\n", "help", "print this list");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        tidei_warn("  %s=", option_table[i].name);
        print_value(&option_table[i]);
        tidei_warn("  %s\n", option_table[i].help);
    }
}

/* Parses a signal: a number in 1..64 or a name from signal_names, with or
 * without the SIG prefix. */
static bool parse_signal(const char *s, size_t len, long *out)
{
    if (len > 3 && memcmp(s, "SIG", 3) == 0) {
        s += 3;
        len -= 3;
    }
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++) {
        if (strlen(signal_names[i].name) == len && memcmp(signal_names[i].name, s, len) == 0) {
            *out = signal_names[i].sig;
            return true;
        }
    }
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 64)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (len == 0 || v > 64 || v == SIGKILL || v == SIGSTOP)
        return false;
    *out = v;
    return true;
}

static bool parse_long(const char *s, size_t len, long *out);

/* Parses the value of o; false if it is not one o accepts. */
static bool parse_value(const option_desc_t *o, const char *val, size_t len)
{
    long v;
    switch (o->kind) {
    case OPT_INT:
        if (!parse_long(val, len, &v) || v < o->min || v > o->max)
            return false;
        *o->value = v;
        return true;
    case OPT_WORD:
        for (long i = 0; o->words[i]; i++) {
            if (strlen(o->words[i]) == len && memcmp(o->words[i], val, len) == 0) {
                *o->value = i;
                return true;
            }
        }
        return false;
    case OPT_PATH:
        if (len == 0 || len >= TIDE_PATH_MAX)
            return false;
        memcpy(o->path, val, len);
        o->path[len] = 0;
        return true;
    case OPT_SIGNAL:
        if (!parse_signal(val, len, &v))
            return false;
        *o->value = v;
        return true;
    }
    return false;
}

/* Tells what o accepts, for the warning about a bad value. */
static void print_wanted(const option_desc_t *o)
{
    switch (o->kind) {
    case OPT_INT: tidei_warn("want an integer in %ld..%ld", o->min, o->max); break;
    case OPT_WORD:
        tidei_warn("want one of");
        for (int i = 0; o->words[i]; i++)
            tidei_warn(" %s", o->words[i]);
        break;
    case OPT_PATH: tidei_warn("want a path of 1..%d bytes", TIDE_PATH_MAX - 1); break;
    case OPT_SIGNAL: tidei_warn("want a signal name such as SIGUSR2, or a number"); break;
    }
}

/* Parses a decimal integer in [len] bytes; false on anything else. */
static bool parse_long(const char *s, size_t len, long *out)
{
    bool neg = false;
    size_t i = 0;
    long v = 0;
    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len)
        return false;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (1L << 50))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

static void apply(const char *key, size_t key_len, const char *val, size_t val_len, bool has_val)
{
    if (key_len == 4 && memcmp(key, "help", 4) == 0 && !has_val) {
        print_help();
        return;
    }
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_desc_t *o = &option_table[i];
        if (strlen(o->name) != key_len || memcmp(o->name, key, key_len) != 0)
            continue;
        if (!has_val || !parse_value(o, val, val_len)) {
            tidei_warn("tide: TIDE_CONF: bad value for %s (", o->name);
            print_wanted(o);
            tidei_warn("); ");
            list_keys();
        } else {
            for (size_t k = 0; k < sizeof implied / sizeof implied[0]; k++)
                if (implied[k].given == o->value)
                    *implied[k].implies = 1;
        }
        return;
    }
    char name[64];
    size_t n = key_len < sizeof name - 1 ? key_len : sizeof name - 1;
    memcpy(name, key, n);
    name[n] = 0;
    tidei_warn("tide: TIDE_CONF: unknown option '%s'; ", name);
    list_keys();
}

void tidei_options_init(void)
{
    tidei_secure = getauxval(AT_SECURE) != 0;
    const char *conf = tidei_secure ? NULL : getenv("TIDE_CONF");
    if (conf) {
        const char *p = conf;
        while (*p) {
            const char *end = p;
            while (*end && *end != ',')
                end++;
            const char *eq = p;
            while (eq < end && *eq != '=')
                eq++;
            if (end > p) {
                if (eq < end)
                    apply(p, (size_t)(eq - p), eq + 1, (size_t)(end - eq - 1), true);
                else
                    apply(p, (size_t)(end - p), NULL, 0, false);
            }
            p = *end ? end + 1 : end;
        }
    }
    if (tidei_opt.verbose) {
        tidei_warn("tide %d.%d:", TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR);
        for (size_t i = 0; i < N_OPTIONS; i++) {
            tidei_warn(" %s=", option_table[i].name);
            print_value(&option_table[i]);
        }
        tidei_warn("\n");
    }
}
