/* glibc.c — glibc's allocation symbols resolve to tide.
 *
 * With tide preloaded (or linked into the program), every symbol search that
 * starts in the process's global scope finds tide's malloc and free before
 * libc's.  Some searches start elsewhere and end in libc.so.6:
 *   - an object loaded with dlopen(RTLD_DEEPBIND) searches itself and its
 *     own dependencies first, libc among them (PHP loads its extensions so);
 *   - dlsym on libc's handle searches libc (Python's
 *     ctypes.CDLL("libc.so.6").free);
 *   - dlsym(RTLD_NEXT, "free") from an object after tide in the search order.
 * They get glibc's allocator, and blocks cross between the two: glibc's free
 * given a block of tide's corrupts glibc's heap or crashes inside glibc.
 *
 * The mechanism: once, at start-up, when tide's malloc is the process's (the
 * first definition of malloc in load order is tide's own), tide rewrites the
 * value of each entry of libc.so.6's dynamic symbol table that names a
 * function tide defines (tidei_override_entries: malloc, free, ..., __libc_malloc;
 * every version of each), so that what the loader computes for it, load
 * address + st_value, is tide's function.  From then on any search that ends
 * at one of those entries yields tide's function: the relocation of an object
 * loaded with RTLD_DEEPBIND (at load or lazily at its first call), dlsym on
 * any handle.  Nothing else changes: no other symbol of libc or of any other
 * object, no code (the table lies in libc's read-only data segment, made
 * writable for the stores and read-only again; the pages written, 15 with
 * Debian 12's libc, become private to the process), no search order, no
 * dlopen semantics (tide does not interpose dlopen): an object that defines its own malloc, or depends on a library
 * that does, still gets that one.  Bindings made before are not revisited;
 * none of them found libc's allocator, since tide precedes libc in the
 * global scope and this runs at the first malloc of the process.  Only the
 * libc of the main link-map namespace is rewritten: a dlmopen namespace has
 * its own copy of libc and of glibc's heap, as without tide.
 *
 * With libc_alloc=glibc the entries keep glibc's functions, except that
 * free, realloc, reallocarray and malloc_usable_size (and their aliases) go
 * through a check first: given a block of tide's, they report it in one line
 * naming the caller instead of handing it to glibc.
 *
 * Nothing happens with libc_alloc=off, when tide is not the process's
 * allocator (libtide.so loaded with dlopen, or another allocator earlier in
 * the search order), or when libc's table cannot be found or written;
 * TIDE_CONF=verbose=1 says which. */
#include <elf.h>
#include <link.h>
#include <sys/mman.h>

#include "tide_internal.h"

#define GLIBC_SONAME "libc.so.6"

/* An object's dynamic symbol table, found through its PT_DYNAMIC. */
typedef struct dyn_table {
    uintptr_t bias;              /* load bias (dlpi_addr) */
    const ElfW(Phdr) *phdr;      /* program headers */
    size_t phnum;                /* entries in phdr */
    ElfW(Sym) *syms;             /* DT_SYMTAB */
    const char *strs;            /* DT_STRTAB */
    size_t strs_bytes;           /* DT_STRSZ */
    const uint32_t *gnu_hash;    /* DT_GNU_HASH, or NULL */
    const uint32_t *sysv_hash;   /* DT_HASH, or NULL */
    const char *soname;          /* DT_SONAME, or NULL */
    const char *name;            /* the loader's name for it ("" = main program) */
} dyn_table_t;

/* One rewritten entry. */
typedef struct patch {
    ElfW(Sym) *sym;              /* the entry in libc's table */
    uintptr_t value;             /* its new st_value */
    void **glibc;                /* libc_alloc=glibc: where glibc's function goes, or NULL */
} patch_t;

/* The address a dynamic-section pointer stands for: the loader has made
 * some absolute (in a writable dynamic section), others are still
 * relative to the load bias. */
static uintptr_t dyn_addr(const dyn_table_t *t, ElfW(Addr) p)
{
    return p < t->bias ? p + t->bias : p;
}

/* Fills t from the object info describes; false if it has no dynamic
 * symbol table with a hash table. */
static bool dyn_parse(const struct dl_phdr_info *info, dyn_table_t *t)
{
    memset(t, 0, sizeof *t);
    t->bias = info->dlpi_addr;
    t->phdr = info->dlpi_phdr;
    t->phnum = info->dlpi_phnum;
    t->name = info->dlpi_name ? info->dlpi_name : "";
    const ElfW(Dyn) *dyn = NULL;
    for (size_t i = 0; i < t->phnum; i++)
        if (t->phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(t->bias + t->phdr[i].p_vaddr);
    if (!dyn)
        return false;
    size_t soname = SIZE_MAX;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        switch (dyn->d_tag) {
        case DT_SYMTAB: t->syms = (ElfW(Sym) *)dyn_addr(t, dyn->d_un.d_ptr); break;
        case DT_STRTAB: t->strs = (const char *)dyn_addr(t, dyn->d_un.d_ptr); break;
        case DT_STRSZ: t->strs_bytes = dyn->d_un.d_val; break;
        case DT_GNU_HASH: t->gnu_hash = (const uint32_t *)dyn_addr(t, dyn->d_un.d_ptr); break;
        case DT_HASH: t->sysv_hash = (const uint32_t *)dyn_addr(t, dyn->d_un.d_ptr); break;
        case DT_SONAME: soname = dyn->d_un.d_val; break;
        default: break;
        }
    }
    if (!t->syms || !t->strs || (!t->gnu_hash && !t->sysv_hash))
        return false;
    t->soname = soname < t->strs_bytes ? t->strs + soname : NULL;
    return true;
}

/* Entry i of t if the object defines it under name, else NULL. */
static ElfW(Sym) *dyn_defined(const dyn_table_t *t, uint32_t i, const char *name)
{
    ElfW(Sym) *s = &t->syms[i];
    if (s->st_shndx == SHN_UNDEF || s->st_name >= t->strs_bytes)
        return NULL;
    return strcmp(t->strs + s->st_name, name) == 0 ? s : NULL;
}

/* Puts in out (up to max) the entries of t that define name, every version
 * of it; returns how many.  The lookup the loader does, minus the version
 * match. */
static size_t dyn_lookup(const dyn_table_t *t, const char *name, ElfW(Sym) **out, size_t max)
{
    size_t n = 0;
    if (t->gnu_hash) {
        const uint32_t *h = t->gnu_hash;
        uint32_t n_buckets = h[0], sym_offset = h[1], bloom_words = h[2];
        if (n_buckets == 0)
            return 0;
        const uint32_t *buckets = h + 4 + bloom_words * (sizeof(ElfW(Addr)) / 4);
        const uint32_t *chain = buckets + n_buckets;
        uint32_t hash = 5381;
        for (const unsigned char *c = (const unsigned char *)name; *c; c++)
            hash = hash * 33 + *c;
        uint32_t i = buckets[hash % n_buckets];
        if (i < sym_offset)
            return 0;
        for (;; i++) {
            uint32_t c = chain[i - sym_offset];
            ElfW(Sym) *s;
            if ((c | 1) == (hash | 1) && (s = dyn_defined(t, i, name)) && n < max)
                out[n++] = s;
            if (c & 1)
                break;
        }
        return n;
    }
    const uint32_t *h = t->sysv_hash;
    uint32_t n_buckets = h[0], n_chain = h[1];
    if (n_buckets == 0)
        return 0;
    uint32_t hash = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        hash = (hash << 4) + *c;
        hash ^= (hash >> 24) & 0xf0;
    }
    hash &= 0x0fffffff;
    for (uint32_t i = h[2 + hash % n_buckets]; i != STN_UNDEF && i < n_chain; i = h[2 + n_buckets + i]) {
        ElfW(Sym) *s = dyn_defined(t, i, name);
        if (s && n < max)
            out[n++] = s;
    }
    return n;
}

/* What the walk over the loaded objects found. */
typedef struct bind_scan {
    uintptr_t first_malloc;      /* the first definition of malloc in load order (0: none yet) */
    const char *first_malloc_in; /* the object that holds it */
    bool found_libc;             /* libc is in `libc` */
    dyn_table_t libc;            /* the main namespace's libc.so.6 */
} bind_scan_t;

/* dl_iterate_phdr callback: objects in load order (the main program, the
 * preloaded libraries, then the others), the main namespace first; stops at
 * libc, which every earlier object's malloc takes precedence over. */
static int bind_scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    bind_scan_t *sc = arg;
    (void)size;
    dyn_table_t t;
    if (!dyn_parse(info, &t))
        return 0;
    ElfW(Sym) *m;
    if (!sc->first_malloc && dyn_lookup(&t, "malloc", &m, 1) == 1) {
        sc->first_malloc = t.bias + m->st_value;
        sc->first_malloc_in = t.name;
    }
    if (t.soname && strcmp(t.soname, GLIBC_SONAME) == 0) {
        sc->libc = t;
        sc->found_libc = true;
        return 1;
    }
    return 0;
}

/* ---- a function of another loaded object, for unwind.c ---- */

/* What find_loaded_function looks for, and what it found. */
typedef struct find_loaded {
    const char *soname;          /* the object's DT_SONAME */
    const char *name;            /* the function's name, or NULL */
    bool loaded;                 /* the object was found */
    void *fn;                    /* the function's address (NULL: not found) */
} find_loaded_t;

/* dl_iterate_phdr callback: stops at the first object named f->soname. */
static int find_loaded_function(struct dl_phdr_info *info, size_t size, void *arg)
{
    find_loaded_t *f = arg;
    (void)size;
    dyn_table_t t;
    if (!dyn_parse(info, &t) || !t.soname || strcmp(t.soname, f->soname) != 0)
        return 0;
    f->loaded = true;
    ElfW(Sym) *s[2];
    /* one definition: no version to choose between (libgcc's unwinder
     * has one of each of its names) */
    if (f->name && dyn_lookup(&t, f->name, s, 2) == 1 && ELF64_ST_TYPE(s[0]->st_info) == STT_FUNC)
        f->fn = (void *)(t.bias + s[0]->st_value);
    return 1;
}

void *tidei_glibc_loaded_function(const char *soname, const char *name)
{
    find_loaded_t f = { soname, name, false, NULL };
    dl_iterate_phdr(find_loaded_function, &f);
    return f.fn;
}

bool tidei_glibc_loaded(const char *soname)
{
    find_loaded_t f = { soname, NULL, false, NULL };
    dl_iterate_phdr(find_loaded_function, &f);
    return f.loaded;
}

/* ---- libc_alloc=glibc: glibc's functions behind a check ---- */

static void (*glibc_free)(void *);
static void *(*glibc_realloc)(void *, size_t);
static void *(*glibc_reallocarray)(void *, size_t, size_t);
static size_t (*glibc_usable_size)(void *);

/* op of p, a block of tide's, was called through libc's entry from caller. */
static tide_noinline void report_tide_block(const char *op, const void *p, const void *caller)
{
    char where[600];
    tidei_symbolize((uintptr_t)caller, where, sizeof where);
    tidei_misuse(op, p, "block of tide's given to glibc's %s by %s (libc_alloc=glibc)", op, where);
}

/* Whether p lies in a span of tide's (a live block or a freed one not yet
 * merged into a free run). */
static bool is_tide_block(const void *p)
{
    return p && tidei_pagemap_lookup(p);
}

static void checked_free(void *p)
{
    if (is_tide_block(p))
        report_tide_block("free", p, __builtin_return_address(0));
    glibc_free(p);
}

static void *checked_realloc(void *p, size_t n)
{
    if (is_tide_block(p))
        report_tide_block("realloc", p, __builtin_return_address(0));
    return glibc_realloc(p, n);
}

static void *checked_reallocarray(void *p, size_t count, size_t n)
{
    if (is_tide_block(p))
        report_tide_block("reallocarray", p, __builtin_return_address(0));
    return glibc_reallocarray(p, count, n);
}

static size_t checked_usable_size(void *p)
{
    if (is_tide_block(p))
        report_tide_block("malloc_usable_size", p, __builtin_return_address(0));
    return glibc_usable_size(p);
}

/* The names libc_alloc=glibc puts behind a check, and where glibc's
 * function goes. */
static const struct {
    const char *name;            /* libc's name */
    void *check;                 /* the checking function */
    void **glibc;                /* the variable that receives glibc's function */
} checked[] = {
    { "free", (void *)checked_free, (void **)&glibc_free },
    { "cfree", (void *)checked_free, (void **)&glibc_free },
    { "__libc_free", (void *)checked_free, (void **)&glibc_free },
    { "realloc", (void *)checked_realloc, (void **)&glibc_realloc },
    { "__libc_realloc", (void *)checked_realloc, (void **)&glibc_realloc },
    { "reallocarray", (void *)checked_reallocarray, (void **)&glibc_reallocarray },
    { "malloc_usable_size", (void *)checked_usable_size, (void **)&glibc_usable_size },
};

/* ---- the rewrite ---- */

/* Adds to ps the rewrite of every entry of libc named name to fn; false if
 * there are too many or one is not a plain function (an IFUNC entry would
 * make the loader call fn as a resolver). */
static bool add_patches(const dyn_table_t *libc, const char *name, void *fn, void **glibc, patch_t *ps,
                        size_t *n)
{
    ElfW(Sym) *found[8];
    size_t k = dyn_lookup(libc, name, found, 8);
    for (size_t i = 0; i < k; i++) {
        if (ELF64_ST_TYPE(found[i]->st_info) != STT_FUNC || *n == TIDE_GLIBC_MAX_PATCHES)
            return false;
        ps[*n].sym = found[i];
        ps[*n].value = (uintptr_t)fn - libc->bias;  /* modulo 2^64: the loader adds the bias back */
        ps[*n].glibc = glibc;
        (*n)++;
    }
    return true;
}

/* The protection of the segment of t that holds [lo, hi), or -1 if no one
 * segment does. */
static int segment_prot(const dyn_table_t *t, uintptr_t lo, uintptr_t hi)
{
    for (size_t i = 0; i < t->phnum; i++) {
        const ElfW(Phdr) *ph = &t->phdr[i];
        uintptr_t start = t->bias + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || lo < start || hi > start + ph->p_memsz)
            continue;
        return (ph->p_flags & PF_R ? PROT_READ : 0) | (ph->p_flags & PF_W ? PROT_WRITE : 0) |
               (ph->p_flags & PF_X ? PROT_EXEC : 0);
    }
    return -1;
}

/* Writes the patches into libc's table: every one, or none. */
static const char *apply_patches(const dyn_table_t *libc, const patch_t *ps, size_t n)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)&ps[i].sym->st_value;
        lo = a < lo ? a : lo;
        hi = a + sizeof ps[i].sym->st_value > hi ? a + sizeof ps[i].sym->st_value : hi;
    }
    int prot = segment_prot(libc, lo, hi);
    if (prot < 0)
        return "its symbol table is not in one segment";
    uintptr_t page_lo = lo & ~(uintptr_t)(TIDE_PAGE_SIZE - 1);
    size_t bytes = ((hi + TIDE_PAGE_SIZE - 1) & ~(uintptr_t)(TIDE_PAGE_SIZE - 1)) - page_lo;
    if (!(prot & PROT_WRITE) && !tidei_os_mprotect((void *)page_lo, bytes, prot | PROT_WRITE))
        return "its symbol table cannot be made writable";
    for (size_t i = 0; i < n; i++) {
        if (ps[i].glibc)  /* before the entry changes: a search may find it at once */
            __atomic_store_n(ps[i].glibc, (void *)(libc->bias + ps[i].sym->st_value), __ATOMIC_RELEASE);
        __atomic_store_n(&ps[i].sym->st_value, ps[i].value, __ATOMIC_RELEASE);
    }
    if (!(prot & PROT_WRITE))
        tidei_os_mprotect((void *)page_lo, bytes, prot);
    return NULL;
}

/* Why the entries were left alone, or NULL once they are rewritten. */
static const char *rewrite_libc(bool to_tide, size_t *n_out)
{
    bind_scan_t sc;
    memset(&sc, 0, sizeof sc);
    dl_iterate_phdr(bind_scan_object, &sc);
    if (!sc.found_libc)
        return "no " GLIBC_SONAME " with a symbol hash table is loaded";
    if (sc.first_malloc != (uintptr_t)tidei_override_entry("malloc"))
        return "tide's malloc is not the process's";
    patch_t ps[TIDE_GLIBC_MAX_PATCHES];
    size_t n = 0;
    if (to_tide) {
        for (size_t i = 0; i < tidei_override_n_entries; i++)
            if (!add_patches(&sc.libc, tidei_override_entries[i].name, tidei_override_entries[i].fn, NULL, ps, &n))
                return "an entry is not a plain function";
    } else {
        for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++)
            if (!add_patches(&sc.libc, checked[i].name, checked[i].check, checked[i].glibc, ps, &n))
                return "an entry is not a plain function";
    }
    *n_out = n;
    if (n == 0)
        return "it defines none of tide's names";
    return apply_patches(&sc.libc, ps, n);
}

void tidei_glibc_bind(void)
{
    bool to_tide = tidei_opt.libc_alloc == 0;
    size_t n = 0;
    const char *why_not = tidei_opt.libc_alloc == 2 ? "libc_alloc=off" : rewrite_libc(to_tide, &n);
    if (!tidei_opt.verbose)
        return;
    if (why_not)
        tidei_warn("tide: " GLIBC_SONAME "'s allocation symbols left alone: %s\n", why_not);
    else if (to_tide)
        tidei_warn("tide: " GLIBC_SONAME "'s allocation symbols (%zu entries) resolve to tide\n", n);
    else
        tidei_warn("tide: " GLIBC_SONAME "'s free, realloc and malloc_usable_size (%zu entries) check for "
                   "tide's blocks (libc_alloc=glibc)\n", n);
}
