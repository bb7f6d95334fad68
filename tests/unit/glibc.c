/* unit/glibc.c — the symbol lookup glibc.c does in a loaded object's
 * dynamic symbol table, checked against the loader's own (dlvsym) on this
 * process's libc.so.6, through its GNU hash table and through its SysV one
 * (libc has both): every version of a name is found, an IFUNC entry is seen
 * as one, an absent name gives nothing.  And the walk over the loaded
 * objects finds libc and, since tide is not the process's malloc here
 * (unit tests leave override.c out), leaves it alone. */
#include "unit.h"

#include <gnu/lib-names.h>

static int find_libc(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    dyn_table_t t;
    if (!dyn_parse(info, &t) || !t.soname || strcmp(t.soname, LIBC_SO) != 0)
        return 0;
    *(dyn_table_t *)arg = t;
    return 1;
}

static dyn_table_t libc_table;
static void *libc_handle;

static void parses_libc(void)
{
    libc_handle = dlopen(LIBC_SO, RTLD_NOW | RTLD_NOLOAD);
    CHECK(libc_handle != NULL);
    CHECK(dl_iterate_phdr(find_libc, &libc_table) == 1);
    CHECK(libc_table.gnu_hash != NULL);
    CHECK(libc_table.sysv_hash != NULL);
    CHECK(strcmp(GLIBC_SONAME, LIBC_SO) == 0);
}

/* The address each entry stands for. */
static bool has_address(ElfW(Sym) **s, size_t n, void *addr)
{
    for (size_t i = 0; i < n; i++)
        if ((void *)(libc_table.bias + s[i]->st_value) == addr)
            return true;
    return false;
}

static void lookups(bool gnu)
{
    if (!libc_handle) { th_skip("no libc"); return; }
    dyn_table_t t = libc_table;
    if (!gnu)
        t.gnu_hash = NULL;   /* dyn_lookup falls back to DT_HASH */
    ElfW(Sym) *s[8];
    size_t n = dyn_lookup(&t, "malloc", s, 8);
    CHECKF(n == 1 && has_address(s, n, dlsym(libc_handle, "malloc")), "malloc: %zu entries", n);
    CHECKF(n == 1 && ELF64_ST_TYPE(s[0]->st_info) == STT_FUNC, "malloc is not a plain function");
    n = dyn_lookup(&t, "free", s, 8);
    CHECKF(n == 1 && has_address(s, n, dlsym(libc_handle, "free")), "free: %zu entries", n);
    /* two versions, both found */
    n = dyn_lookup(&t, "realpath", s, 8);
    CHECKF(n == 2, "realpath: %zu entries, not 2", n);
    CHECK(has_address(s, n, dlvsym(libc_handle, "realpath", "GLIBC_2.3")));
    CHECK(has_address(s, n, dlvsym(libc_handle, "realpath", "GLIBC_2.2.5")));
    /* an IFUNC entry among them: glibc.c refuses to rewrite such a name */
    n = dyn_lookup(&t, "memcpy", s, 8);
    bool ifunc = false;
    for (size_t i = 0; i < n; i++)
        ifunc |= ELF64_ST_TYPE(s[i]->st_info) == STT_GNU_IFUNC;
    CHECKF(n >= 1 && ifunc, "memcpy: %zu entries, IFUNC %d", n, ifunc);
    /* the out array's limit holds */
    CHECK(dyn_lookup(&t, "realpath", s, 1) == 1);
    CHECK(dyn_lookup(&t, "tide_no_such_name", s, 8) == 0);
    CHECK(dyn_lookup(&t, "", s, 8) == 0);
}

static void lookups_gnu_hash(void) { lookups(true); }
static void lookups_sysv_hash(void) { lookups(false); }

/* Here glibc's malloc is the process's: the walk finds libc and stops
 * there, and rewrite_libc() refuses to touch it. */
static void not_the_process_malloc(void)
{
    bind_scan_t sc;
    memset(&sc, 0, sizeof sc);
    dl_iterate_phdr(bind_scan_object, &sc);
    CHECK(sc.found_libc);
    CHECKF(sc.first_malloc == (uintptr_t)dlsym(RTLD_DEFAULT, "malloc"), "first malloc %p in %s",
           (void *)sc.first_malloc, sc.first_malloc_in);
    size_t n = 0;
    const char *why = rewrite_libc(true, &n);
    CHECKF(why && strstr(why, "not the process's"), "rewrite_libc: %s", why ? why : "(rewrote libc)");
    CHECK(dlsym(libc_handle, "malloc") == dlsym(RTLD_DEFAULT, "malloc"));
}

int main(void)
{
    RUN(parses_libc);
    RUN(lookups_gnu_hash);
    RUN(lookups_sysv_hash);
    RUN(not_the_process_malloc);
    return th_summary();
}
