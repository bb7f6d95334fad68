/* options.c — TIDE_CONF, parsed once at start-up from one table.
 *   TIDE_CONF=key=value,key=value    set options
 *   TIDE_CONF=help                   print every option with its default
 * An unknown key or a bad value gets a one-line warning that names it and
 * lists the valid keys; the rest of the string is still applied.  Parsing
 * never allocates (it runs inside the first malloc). */
#include <stdlib.h>

#include "tide_internal.h"

tide_options_t tidei_opt = {
    .os_fail_at = 0,
    .os_fail_from = 0,
    .huge_cache_mb = 64,
    .chunk_cache = 2,
    .verbose = 0,
};

typedef struct option_desc {
    const char *name;            /* key in TIDE_CONF */
    long *value;                 /* where the parsed value goes */
    long min, max;               /* accepted range */
    const char *help;            /* one line for TIDE_CONF=help */
} option_desc_t;

static const option_desc_t option_table[] = {
    { "huge_cache_mb", &tidei_opt.huge_cache_mb, 0, 1L << 20,
      "MiB of freed huge (> 4 MiB) mappings kept for reuse" },
    { "chunk_cache", &tidei_opt.chunk_cache, 0, 1L << 20,
      "fully free 8 MiB chunks kept mapped instead of unmapped" },
    { "verbose", &tidei_opt.verbose, 0, 1, "print the options in force at start-up (0|1)" },
    { "os_fail_at", &tidei_opt.os_fail_at, 0, 1L << 40,
      "testing: make the Nth request to the OS fail, once (0 = off)" },
    { "os_fail_from", &tidei_opt.os_fail_from, 0, 1L << 40,
      "testing: make the Nth and every later request to the OS fail (0 = off)" },
};
#define N_OPTIONS (sizeof option_table / sizeof option_table[0])

static void list_keys(void)
{
    tidei_warn("valid keys: help");
    for (size_t i = 0; i < N_OPTIONS; i++)
        tidei_warn(", %s", option_table[i].name);
    tidei_warn("\n");
}

static void print_help(void)
{
    tidei_warn("tide options (TIDE_CONF=key=value,...):\n");
    tidei_warn("  %s  %s\n", "help", "print this list");
    for (size_t i = 0; i < N_OPTIONS; i++)
        tidei_warn("  %s=%ld  %s\n", option_table[i].name, *option_table[i].value, option_table[i].help);
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
        long v;
        if (!has_val || !parse_long(val, val_len, &v) || v < o->min || v > o->max) {
            tidei_warn("tide: TIDE_CONF: bad value for %s (want an integer in %ld..%ld); ",
                       o->name, o->min, o->max);
            list_keys();
            return;
        }
        *o->value = v;
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
    const char *conf = getenv("TIDE_CONF");
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
        for (size_t i = 0; i < N_OPTIONS; i++)
            tidei_warn(" %s=%ld", option_table[i].name, *option_table[i].value);
        tidei_warn("\n");
    }
}
