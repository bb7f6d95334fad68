/* unit/options.c — TIDE_CONF parsing (options.c): values applied, unknown
 * keys and bad values warned about in one line that lists the valid keys
 * (taken from the option table itself), the rest of the string still
 * applied, `help` listing every option with its default. */
#include "unit.h"

static tide_options_t defaults;

/* Parses conf as TIDE_CONF from the defaults; returns what went to stderr. */
static const char *parse(const char *conf)
{
    static char out[8192];
    tidei_opt = defaults;
    if (conf) setenv("TIDE_CONF", conf, 1);
    else unsetenv("TIDE_CONF");
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    tidei_options_init();
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t k = fread(out, 1, sizeof out - 1, tmp);
    out[k] = 0;
    fclose(tmp);
    unsetenv("TIDE_CONF");
    return out;
}

static int count_char(const char *s, char c)
{
    int n = 0;
    for (; *s; s++) n += *s == c;
    return n;
}

/* The warning lists every key of the option table (and help). */
static bool lists_all_keys(const char *out)
{
    const char *v = strstr(out, "valid keys:");
    if (!v || !strstr(v, "help")) return false;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!strstr(v, option_table[i].name)) return false;
    return true;
}

static void setup(void)
{
    tidei_init();            /* the real start-up parse (TIDE_CONF of the test run) */
    unsetenv("TIDE_CONF");
    tidei_opt = (tide_options_t){ .os_fail_at = 0, .os_fail_from = 0, .huge_cache_mb = 64, .chunk_cache = 2,
                                  .verbose = 0, .stats = 0, .stats_file = "", .stats_signal = 0 };
    defaults = tidei_opt;
    CHECK(N_OPTIONS >= 5);
}

/* No TIDE_CONF, an empty one, and empty items: defaults, silence. */
static void empty(void)
{
    CHECK(parse(NULL)[0] == 0);
    CHECK(memcmp(&tidei_opt, &defaults, sizeof defaults) == 0);
    CHECK(parse("")[0] == 0);
    CHECK(memcmp(&tidei_opt, &defaults, sizeof defaults) == 0);
    CHECK(parse(",,,")[0] == 0);
    CHECK(memcmp(&tidei_opt, &defaults, sizeof defaults) == 0);
}

/* Every key of the table takes a value in its range, silently. */
static void values(void)
{
    const char *out = parse("chunk_cache=5,huge_cache_mb=7,os_fail_at=3,os_fail_from=12,verbose=0");
    CHECKF(out[0] == 0, "printed \"%s\"", out);
    CHECK(tidei_opt.chunk_cache == 5 && tidei_opt.huge_cache_mb == 7 && tidei_opt.os_fail_at == 3 &&
          tidei_opt.os_fail_from == 12 && tidei_opt.verbose == 0);
    out = parse(",,chunk_cache=0,,huge_cache_mb=1048576,");
    CHECKF(out[0] == 0, "printed \"%s\"", out);
    CHECK(tidei_opt.chunk_cache == 0 && tidei_opt.huge_cache_mb == 1048576);
    /* each integer option of the table, at its minimum and maximum */
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char conf[128];
        if (option_table[i].kind != OPT_INT)
            continue;
        snprintf(conf, sizeof conf, "%s=%ld", option_table[i].name, option_table[i].max);
        out = parse(conf);
        bool loud = option_table[i].value == &tidei_opt.verbose;   /* verbose=1 prints the options */
        CHECKF((loud || out[0] == 0) && *option_table[i].value == option_table[i].max, "%s: printed \"%s\"", conf,
               out);
        snprintf(conf, sizeof conf, "%s=%ld", option_table[i].name, option_table[i].min);
        out = parse(conf);
        CHECKF(out[0] == 0 && *option_table[i].value == option_table[i].min, "%s: printed \"%s\"", conf, out);
    }
    /* The last of two settings wins. */
    parse("chunk_cache=1,chunk_cache=9");
    CHECK(tidei_opt.chunk_cache == 9);
}

/* Options that take a word, a path or a signal. */
static void other_kinds(void)
{
    const char *out = parse("stats=json,stats_file=/tmp/x.%p.txt,stats_signal=SIGUSR2");
    CHECKF(out[0] == 0, "printed \"%s\"", out);
    CHECK(tidei_opt.stats == 2 && strcmp(tidei_opt.stats_file, "/tmp/x.%p.txt") == 0 && tidei_opt.stats_signal == SIGUSR2);
    out = parse("stats=1,stats_signal=USR1");
    CHECK(out[0] == 0 && tidei_opt.stats == 1 && tidei_opt.stats_signal == SIGUSR1);
    out = parse("stats=0,stats_signal=12");
    CHECK(out[0] == 0 && tidei_opt.stats == 0 && tidei_opt.stats_signal == 12);
    static const char *const bad[] = { "stats=2", "stats=JSON", "stats=", "stats_file=", "stats_signal=SIGFOO",
                                       "stats_signal=9", "stats_signal=65", "stats_signal=" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = parse(bad[i]);
        CHECKF(strstr(out, "bad value for stats") && lists_all_keys(out) && count_char(out, '\n') == 1,
               "%s: printed \"%s\"", bad[i], out);
        CHECKF(tidei_opt.stats == 0 && tidei_opt.stats_file[0] == 0 && tidei_opt.stats_signal == 0,
               "%s changed an option", bad[i]);
    }
    char conf[400];
    memset(conf, 0, sizeof conf);
    strcpy(conf, "stats_file=");
    memset(conf + 11, 'p', 300);
    out = parse(conf);
    CHECKF(strstr(out, "bad value for stats_file") && tidei_opt.stats_file[0] == 0, "a 300-byte path: \"%s\"", out);
    tidei_opt = defaults;
}

/* An unknown key: one line naming it and listing the valid keys; the
 * settings around it still apply.  A prefix or extension of a key is not
 * that key. */
static void unknown_key(void)
{
    const char *out = parse("chunk_cache=3,bogus=1,huge_cache_mb=9");
    CHECKF(strstr(out, "unknown option 'bogus'"), "printed \"%s\"", out);
    CHECKF(lists_all_keys(out), "the warning does not list every valid key: \"%s\"", out);
    CHECKF(count_char(out, '\n') == 1 && out[strlen(out) - 1] == '\n', "not one line: \"%s\"", out);
    CHECKF(strncmp(out, "tide: ", 6) == 0, "does not start with \"tide: \": \"%s\"", out);
    CHECK(tidei_opt.chunk_cache == 3 && tidei_opt.huge_cache_mb == 9);
    static const char *const near[] = { "chunk=1", "chunk_cache_x=1", "Chunk_cache=1", " chunk_cache=1", "=5" };
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        out = parse(near[i]);
        CHECKF(strstr(out, "unknown option") && lists_all_keys(out), "%s: printed \"%s\"", near[i], out);
        CHECKF(tidei_opt.chunk_cache == defaults.chunk_cache, "%s set chunk_cache to %ld", near[i],
               tidei_opt.chunk_cache);
    }
    /* A very long key is cut in the message, not overflowed. */
    char conf[400];
    memset(conf, 'k', 300);
    strcpy(conf + 300, "=1");
    out = parse(conf);
    CHECKF(strstr(out, "unknown option 'kkkk") && count_char(out, '\n') == 1, "printed \"%.200s\"", out);
}

/* A bad value (not a decimal integer, out of range, missing): one line that
 * names the key and the accepted range and lists the keys; the option keeps
 * its value and the rest of the string applies. */
static void bad_values(void)
{
    static const char *const bad[] = {
        "chunk_cache=abc", "chunk_cache=", "chunk_cache", "chunk_cache=-1", "chunk_cache=1x", "chunk_cache=0x10",
        "chunk_cache=1.5", "chunk_cache= 3", "chunk_cache=99999999999999999999999", "chunk_cache=-",
        "chunk_cache=1048577",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char conf[200];
        snprintf(conf, sizeof conf, "huge_cache_mb=11,%s,os_fail_at=4", bad[i]);
        const char *out = parse(conf);
        CHECKF(strstr(out, "bad value for chunk_cache") && strstr(out, "0..1048576"), "%s: printed \"%s\"", bad[i],
               out);
        CHECKF(lists_all_keys(out) && count_char(out, '\n') == 1, "%s: printed \"%s\"", bad[i], out);
        CHECKF(tidei_opt.chunk_cache == defaults.chunk_cache, "%s: chunk_cache became %ld", bad[i],
               tidei_opt.chunk_cache);
        CHECKF(tidei_opt.huge_cache_mb == 11 && tidei_opt.os_fail_at == 4, "%s: the other settings were lost", bad[i]);
    }
    const char *out = parse("verbose=2");
    CHECKF(strstr(out, "bad value for verbose") && tidei_opt.verbose == 0, "verbose=2: printed \"%s\"", out);
}

/* help lists every option of the table with its current value and its
 * one-line description; verbose=1 prints the options in force. */
static void help_and_verbose(void)
{
    const char *out = parse("chunk_cache=7,help");
    CHECKF(strstr(out, "tide options"), "help printed \"%s\"", out);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char want[128];
        if (option_table[i].kind == OPT_PATH)
            snprintf(want, sizeof want, "%s=%s", option_table[i].name, option_table[i].path);
        else if (option_table[i].kind == OPT_WORD)
            snprintf(want, sizeof want, "%s=%s", option_table[i].name, option_table[i].words[*option_table[i].value]);
        else
            snprintf(want, sizeof want, "%s=%ld", option_table[i].name, *option_table[i].value);
        CHECKF(strstr(out, want), "help does not show \"%s\": \"%s\"", want, out);
        CHECKF(strstr(out, option_table[i].help), "help does not describe %s", option_table[i].name);
    }
    CHECKF(count_char(out, '\n') == (int)N_OPTIONS + 2, "help printed %d lines, want %d", count_char(out, '\n'),
           (int)N_OPTIONS + 2);
    out = parse("verbose=1,chunk_cache=4");
    CHECKF(strstr(out, "chunk_cache=4") && strstr(out, "verbose=1") && count_char(out, '\n') == 1,
           "verbose=1 printed \"%s\"", out);
    tidei_opt = defaults;
}

int main(void)
{
    setup();
    RUN(empty);
    RUN(values);
    RUN(other_kinds);
    RUN(unknown_key);
    RUN(bad_values);
    RUN(help_and_verbose);
    return th_summary();
}
